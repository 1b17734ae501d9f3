//! A next hop's reply, and what a command that did not get the one it wanted ends in.

use super::super::clean_text;
use super::super::wire::Broken;

/// A server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line (after `NNN-` / `NNN `).
    pub lines: Vec<String>,
}

impl Reply {
    /// The text, lines joined with a space, cleaned for use in our own replies.
    pub fn text(&self) -> String {
        clean_text(&self.lines.join(" "))
    }

    /// `code text`, for logs.
    pub fn describe(&self) -> String {
        format!("{} {}", self.code, self.text())
    }

    /// A 4xx or 5xx reply?
    pub fn is_refusal(&self) -> bool {
        (400..600).contains(&self.code)
    }
}

/// Why a command did not get the answer it wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A 4xx or 5xx reply: the next hop refused (after a `421` it also closes).
    Refused(Reply),
    /// No usable answer; the connection is unusable.
    Broken(Broken),
}

impl Error {
    /// What happened, for the log.
    pub fn describe(&self) -> String {
        match self {
            Error::Refused(r) => r.describe(),
            Error::Broken(b) => b.detail.clone(),
        }
    }
}

impl From<Broken> for Error {
    fn from(b: Broken) -> Error {
        Error::Broken(b)
    }
}

/// `NNN-text` or `NNN text` (or a bare `NNN`).
pub(super) fn parse_line(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&code.as_bytes()[0]) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, ' ', "")),
        Some(b' ') => Some((code, ' ', &line[4..])),
        Some(b'-') => Some((code, '-', &line[4..])),
        Some(_) => None,
    }
}
