//! Helpers for the queue plugins: the pieces every hand-off to a backend shares.
//!
//! The guarantee each queue plugin keeps (see README, "Queueing"):
//!
//! - `OK` (the client hears `250`) only after the backend confirmed it took the message:
//!   exit status 0, a `250` after the final dot, a synced file.
//! - `DENY` (`5xx`) only when the backend refused permanently (a 5xx reply, a documented
//!   permanent exit code).
//! - Everything else is temporary (`4xx`): a 4xx reply, a failure to connect or spawn, a
//!   backend that died or hung past the plugin's `timeout`, an answer that cannot be read.
//!
//! Programs (qmail-queue, sendmail, exim) run through [`crate::child`] with explicit
//! descriptors and a deadline; [`smtp`] is a blocking SMTP/LMTP client with timeouts and STARTTLS over the
//! byte stream of [`wire`]; [`relay`] forwards at RCPT time with it; [`dot`] writes a
//! message in SMTP's dot-stuffed form.

pub mod dot;
pub mod lmtp;
pub mod relay;
pub mod sendmail;
pub mod smtp;
pub mod tls;
pub mod wire;
pub mod xclient;

use std::io::{self, Read};
use std::path::PathBuf;
use std::time::Duration;

use crate::address::Address;
use crate::child::ChildError;
use crate::plugin::{Context, Outcome, PluginError, Verdict};
use crate::transaction::Transaction;

/// The default per-hand-off timeout in seconds (each whole reply and each write to a next
/// hop, or the whole run of a program). RFC 5321 §4.5.3.2 lets a client wait 10 minutes for the reply to the
/// final dot; two minutes keeps our own client well inside that.
pub const DEFAULT_TIMEOUT: u64 = 120;

/// How a hand-off ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandoffFailure {
    /// The backend refused for now (4xx, a temporary exit code): `DENYSOFT`.
    Temporary(String),
    /// The backend refused for good (5xx, a permanent exit code): `DENY`.
    Permanent(String),
    /// Nothing definite: could not spawn, died, unreadable answer. `DECLINED`, so a later
    /// queue plugin may still take the message; if none does, the client gets `451`. The
    /// text says what happened, for the log only: the client hears [`BROKEN_TEXT`].
    Broken(String),
    /// Like [`HandoffFailure::Broken`], because the program did not finish within its `timeout`
    /// (it was killed with its process group); the client hears [`TIMED_OUT_TEXT`].
    TimedOut(String),
    /// Like [`HandoffFailure::Broken`], because a termination signal stopped the hand-off; the
    /// client hears [`SHUTTING_DOWN_TEXT`].
    Interrupted(String),
}

/// Our client's text when a program hand-off broke (the details go to the log only).
pub const BROKEN_TEXT: &str = "4.3.0 Unable to queue message; try again later";
/// Our client's text when a queue program ran out of time.
pub const TIMED_OUT_TEXT: &str = "4.3.0 Mail system did not answer in time; try again later";
/// Our client's text when a termination signal stopped the hand-off.
pub const SHUTTING_DOWN_TEXT: &str = "4.3.2 Shutting down; try again later";

impl HandoffFailure {
    /// The queue hook's answer for this failure.
    pub fn outcome(self) -> Outcome {
        match self {
            HandoffFailure::Temporary(m) => Outcome::with(Verdict::DenySoft, m),
            HandoffFailure::Permanent(m) => Outcome::with(Verdict::Deny, m),
            HandoffFailure::Broken(_) => Outcome::with(Verdict::Declined, BROKEN_TEXT),
            HandoffFailure::TimedOut(_) => Outcome::with(Verdict::Declined, TIMED_OUT_TEXT),
            HandoffFailure::Interrupted(_) => Outcome::with(Verdict::Declined, SHUTTING_DOWN_TEXT),
        }
    }

    /// The text, for logs.
    pub fn text(&self) -> &str {
        match self {
            HandoffFailure::Temporary(m)
            | HandoffFailure::Permanent(m)
            | HandoffFailure::Broken(m)
            | HandoffFailure::TimedOut(m)
            | HandoffFailure::Interrupted(m) => m,
        }
    }

    /// A program run that gave no exit status; `program` names it in the log text.
    pub fn of_run(program: &str, e: ChildError, timeout: Duration) -> HandoffFailure {
        match e {
            ChildError::TimedOut => HandoffFailure::TimedOut(format!(
                "{program} timed out after {}s; killed",
                timeout.as_secs()
            )),
            ChildError::Interrupted => HandoffFailure::Interrupted(format!("{program}: {e}")),
            e => HandoffFailure::Broken(format!("{program}: {e}")),
        }
    }
}

/// The longest `timeout` a hand-off may have: an hour (RFC 5321 §4.5.3.2 asks a client
/// to wait 10 minutes for the reply to the final dot). Much larger values would overflow
/// the clock's arithmetic at the first wait.
pub const MAX_TIMEOUT: u64 = 3600;

/// Parses a `timeout` argument: whole seconds, 1 to [`MAX_TIMEOUT`].
pub fn parse_timeout(v: &str) -> Result<Duration, PluginError> {
    match v.parse::<u64>() {
        Ok(n) if (1..=MAX_TIMEOUT).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(PluginError::Args(format!(
            "timeout must be a whole number of seconds from 1 to {MAX_TIMEOUT}, not {v:?}"
        ))),
    }
}

/// Keeps log and reply texts printable and short: a backend's answer goes into our reply,
/// so it must not carry line breaks or control characters, and at most 400 bytes of it
/// keep our reply line within RFC 5321's 512 octets (§4.5.3.1.5), whatever the
/// characters.
pub fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(400));
    for c in s.chars().map(|c| if c.is_control() { ' ' } else { c }) {
        if out.len() + c.len_utf8() > 400 {
            break;
        }
        out.push(c);
    }
    out.truncate(out.trim_end().len());
    out
}

/// Output of a queue program kept per stream (fd 1, fd 2, qmail-queue's fd 6); the rest
/// is read and dropped.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// The message as it is handed off: header block, then body, LF line ends.
pub fn message_reader(txn: &mut Transaction) -> io::Result<Box<dyn Read + '_>> {
    let head = txn.header.to_bytes();
    Ok(Box::new(io::Cursor::new(head).chain(txn.body_reader()?)))
}

/// The sender's address (`""` for the null sender).
pub fn sender(txn: &Transaction) -> String {
    txn.sender.as_ref().map(Address::address).unwrap_or_default()
}

/// The first line of the Message-Id field, or `""`.
pub fn message_id(txn: &Transaction) -> String {
    txn.header
        .get("Message-Id")
        .map(|v| clean_text(v.lines().next().unwrap_or("").trim()))
        .unwrap_or_default()
}

/// `spool_dir`, for plugins that need a temporary file; the default as in the core.
pub fn spool_dir(cx: &Context<'_>) -> PathBuf {
    match cx.config_first("spool_dir") {
        Ok(Some(dir)) => PathBuf::from(dir),
        _ => std::env::temp_dir(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_map_to_verdicts() {
        assert_eq!(
            HandoffFailure::Temporary("x".into()).outcome().verdict,
            Verdict::DenySoft
        );
        assert_eq!(
            HandoffFailure::Permanent("x".into()).outcome().verdict,
            Verdict::Deny
        );
        // What broke is for the log; the client hears a plain text.
        let b = HandoffFailure::Broken("/usr/sbin/x: cannot start: No such file".into()).outcome();
        assert_eq!(b.verdict, Verdict::Declined);
        assert_eq!(b.msg, vec![BROKEN_TEXT.to_string()]);
        let t = HandoffFailure::of_run("x", ChildError::TimedOut, Duration::from_secs(2));
        assert_eq!(t.text(), "x timed out after 2s; killed");
        assert_eq!(t.outcome().msg, vec![TIMED_OUT_TEXT.to_string()]);
        let i = HandoffFailure::of_run("x", ChildError::Interrupted, Duration::from_secs(2));
        assert_eq!(i.outcome().msg, vec![SHUTTING_DOWN_TEXT.to_string()]);
    }

    #[test]
    fn timeouts_and_texts() {
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert!(parse_timeout("0").is_err() && parse_timeout("x").is_err());
        assert_eq!(parse_timeout("3600"), Ok(Duration::from_secs(3600)));
        assert!(parse_timeout("3601").is_err() && parse_timeout("18446744073709551615").is_err());
        assert_eq!(clean_text("a\r\nb\x07 "), "a  b");
        let long = clean_text(&"\u{e9}".repeat(1000));
        assert_eq!((long.len(), long.chars().count()), (400, 200));
    }
}
