//! LMTP's answers after the final dot (RFC 2033 §4.2), one per recipient, folded into
//! the single reply our SMTP client gets.

use super::smtp::Reply;
use crate::log::Level;
use crate::plugin::{Context, Outcome, Verdict};

/// Our text when some recipients did not get the message.
const SOME_FAILED: &str = "4.2.0 Delivery failed for some recipients; try again later";

/// Folds LMTP's per-recipient replies (each a `250` or a refusal) into the one reply our
/// client gets.
///
/// - all delivered (`250`): `250`;
/// - none delivered, all refused permanently: the first refusal, its class kept
///   ([`super::relay::dot_code`]): the client bounces; nobody got it;
/// - none delivered, the first refusal temporary: that refusal (the client retries);
/// - none delivered otherwise, or some delivered and some not: `452`. Our client already
///   heard `250` for each recipient, and SMTP has no way to fail some of them now. `250`
///   would silently lose the mail for the failed ones (we cannot send bounces); a `4xx`
///   makes the client send it again to all, so the delivered ones get a second copy. A
///   duplicate is the lesser harm; it is logged at LOGWARN with the names.
pub fn verdict(cx: &mut Context<'_>, replies: &[(String, Reply)]) -> Outcome {
    let delivered: Vec<&str> = replies
        .iter()
        .filter(|(_, r)| r.code == 250)
        .map(|(a, _)| a.as_str())
        .collect();
    let failed: Vec<&(String, Reply)> = replies.iter().filter(|(_, r)| r.code != 250).collect();
    let Some((_, first)) = failed.first() else {
        let text = match replies {
            [(_, r)] => without_status(&r.text()).to_string(),
            _ => format!("Delivered to {} recipients", replies.len()),
        };
        return Outcome::ok_with(format!("Queued! {text}"));
    };
    for (rcpt, r) in &failed {
        cx.log(Level::Info, format_args!("LMTP: {rcpt}: {}", r.describe()));
    }
    if delivered.is_empty() {
        let all_permanent = failed.iter().all(|(_, r)| r.code >= 500);
        if all_permanent || first.code < 500 {
            return super::relay::refusal(cx, super::relay::dot_code(first.code), first);
        }
        return Outcome::with(Verdict::DenySoft, SOME_FAILED);
    }
    cx.log(
        Level::Warn,
        format_args!(
            "LMTP delivered to {} but not to {}; answering 4xx, so the retry will duplicate it for the delivered ones",
            delivered.join(","),
            failed.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(",")
        ),
    );
    Outcome::with(Verdict::DenySoft, SOME_FAILED)
}

/// A reply text without its leading enhanced status code (`2.0.0 `), for our own text.
fn without_status(text: &str) -> &str {
    match text.split_once(' ') {
        Some((code, rest))
            if code.split('.').count() == 3 && code.bytes().all(|b| b.is_ascii_digit() || b == b'.') =>
        {
            rest
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_are_taken_off_our_text() {
        assert_eq!(without_status("2.0.0 <a@b> xyz Saved"), "<a@b> xyz Saved");
        assert_eq!(without_status("Saved"), "Saved");
        assert_eq!(without_status("2.0 odd"), "2.0 odd");
    }
}
