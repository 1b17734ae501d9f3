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
//! [`child`] runs programs (qmail-queue, sendmail, exim) with explicit descriptors and a
//! deadline; [`smtp`] is a blocking SMTP/LMTP client with timeouts and STARTTLS over the
//! byte stream of [`wire`]; [`relay`] forwards at RCPT time with it; [`dot`] writes a
//! message in SMTP's dot-stuffed form.

pub mod child;
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
use crate::plugin::{Context, Outcome, Verdict};
use crate::transaction::Transaction;

/// The default per-hand-off timeout in seconds (each whole reply and each write to a next
/// hop, or the whole run of a program). RFC 5321 §4.5.3.2 lets a client wait 10 minutes for the reply to the
/// final dot; two minutes keeps our own client well inside that.
pub const DEFAULT_TIMEOUT: u64 = 120;

/// How a hand-off ended when it did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The backend refused for now (4xx, a temporary exit code): `DENYSOFT`.
    Temporary(String),
    /// The backend refused for good (5xx, a permanent exit code): `DENY`.
    Permanent(String),
    /// Nothing definite: could not connect or spawn, died, hung, unreadable answer.
    /// `DECLINED`, so a later queue plugin may still take the message; if none does,
    /// the client gets `451`.
    Broken(String),
}

impl Failure {
    /// The queue hook's answer for this failure.
    pub fn outcome(self) -> Outcome {
        match self {
            Failure::Temporary(m) => Outcome::with(Verdict::DenySoft, m),
            Failure::Permanent(m) => Outcome::with(Verdict::Deny, m),
            Failure::Broken(m) => Outcome::with(Verdict::Declined, format!("Unable to queue message ({m})")),
        }
    }

    /// The text, for logs.
    pub fn text(&self) -> &str {
        match self {
            Failure::Temporary(m) | Failure::Permanent(m) | Failure::Broken(m) => m,
        }
    }
}

/// Parses a `timeout` argument: whole seconds, at least 1.
pub fn parse_timeout(v: &str) -> Result<Duration, String> {
    match v.parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "timeout must be a whole number of seconds above 0, not {v:?}"
        )),
    }
}

/// Keeps log and reply texts printable and short: a backend's answer goes into our reply,
/// so it must not carry line breaks or control characters.
pub fn clean_text(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(400)
        .collect();
    out.truncate(out.trim_end().len());
    out
}

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
            Failure::Temporary("x".into()).outcome().verdict,
            Verdict::DenySoft
        );
        assert_eq!(Failure::Permanent("x".into()).outcome().verdict, Verdict::Deny);
        let b = Failure::Broken("connect: refused".into()).outcome();
        assert_eq!(b.verdict, Verdict::Declined);
        assert_eq!(
            b.msg,
            vec!["Unable to queue message (connect: refused)".to_string()]
        );
    }

    #[test]
    fn timeouts_and_texts() {
        assert_eq!(parse_timeout("5"), Ok(Duration::from_secs(5)));
        assert!(parse_timeout("0").is_err() && parse_timeout("x").is_err());
        assert_eq!(clean_text("a\r\nb\x07 "), "a  b");
    }
}
