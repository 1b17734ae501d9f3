//! Which of our reply codes a next hop's refusal becomes (README, "What the client hears
//! from a next hop").

use super::super::smtp::Reply;
use crate::plugin::{Context, Outcome, Verdict};

/// Our reply code at RCPT for the next hop's refusal of MAIL or RCPT: the codes RFC 5321
/// §4.3.2 allows there are kept, any other permanent one is `550`, any other temporary
/// one (`421` included) `450`. (README, "What the client hears from a next hop".)
pub fn rcpt_code(code: u16) -> u16 {
    match code {
        450..=452 | 550..=553 => code,
        500..=599 => 550,
        _ => 450,
    }
}

/// Our reply code after the final dot for the next hop's refusal of DATA or of the
/// message: `450`-`452`, `550`, `552` and `554` are kept, any other permanent one is
/// `554`, any other temporary one (`421` included) `451`.
pub fn dot_code(code: u16) -> u16 {
    match code {
        450..=452 | 550 | 552 | 554 => code,
        500..=599 => 554,
        _ => 451,
    }
}

/// Sends the next hop's refusal as our reply with `code`, its text and enhanced status
/// kept; `DONE`, so the session sends it as it is.
pub fn refusal(cx: &mut Context<'_>, code: u16, reply: &Reply) -> Outcome {
    let status = if code >= 500 { "5.0.0" } else { "4.0.0" };
    cx.respond(crate::reply::Reply::from_plugin(
        code,
        status,
        &[reply.text()],
        "Refused by the next hop",
    ));
    Outcome::new(Verdict::Done)
}
