//! LMTP's answers after the final dot (RFC 2033 §4.2), one per recipient, folded into
//! the single reply our SMTP client gets.

use super::Failure;
use super::smtp::Reply;
use crate::log::Level;
use crate::plugin::{Context, Outcome, Verdict};

/// Folds LMTP's per-recipient replies into the one reply our client gets.
///
/// - all delivered: `250`;
/// - none delivered, all refused permanently: `5xx` (the client bounces; nobody got it);
/// - none delivered otherwise: `4xx` (the client retries);
/// - some delivered, some not: `4xx`. Our client already heard `250` for each recipient,
///   and SMTP has no way to fail some of them now. `250` would silently lose the mail for
///   the failed ones (we cannot send bounces); a `4xx` makes the client send it again to
///   all, so the delivered ones get a second copy. A duplicate is the lesser harm; it is
///   logged at LOGWARN with the names.
pub fn verdict(cx: &Context<'_>, replies: &[(String, Reply)]) -> Outcome {
    let delivered: Vec<&str> = replies
        .iter()
        .filter(|(_, r)| r.code / 100 == 2)
        .map(|(a, _)| a.as_str())
        .collect();
    let failed: Vec<&(String, Reply)> = replies.iter().filter(|(_, r)| r.code / 100 != 2).collect();
    if failed.is_empty() {
        let text = match replies {
            [(_, r)] => without_status(&r.text()).to_string(),
            _ => format!("Delivered to {} recipients", replies.len()),
        };
        return Outcome::ok_with(format!("Queued! {text}"));
    }
    for (rcpt, r) in &failed {
        cx.log(Level::Info, format_args!("LMTP: {rcpt}: {}", r.describe()));
    }
    let first = &failed[0].1;
    if delivered.is_empty() {
        return match first.failure() {
            Some(Failure::Permanent(m)) if failed.iter().all(|(_, r)| r.code >= 500) => {
                Outcome::with(Verdict::Deny, m)
            }
            _ if first.code >= 500 => Outcome::with(
                Verdict::DenySoft,
                "4.2.0 Delivery failed for some recipients; try again later",
            ),
            Some(f) => Failure::Temporary(f.text().to_string()).outcome(),
            None => Failure::Broken(first.describe()).outcome(),
        };
    }
    cx.log(
        Level::Warn,
        format_args!(
            "LMTP delivered to {} but not to {}; answering 4xx, so the retry will duplicate it for the delivered ones",
            delivered.join(","),
            failed.iter().map(|(a, _)| a.as_str()).collect::<Vec<_>>().join(",")
        ),
    );
    Outcome::with(
        Verdict::DenySoft,
        "4.2.0 Delivery failed for some recipients; try again later",
    )
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
