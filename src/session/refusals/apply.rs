//! The cells of the reply table and how the session applies one to a hook's outcome.

use crate::plugin::{Hook, Outcome, Verdict};
use crate::reply::{Fixed, Reply, fill};
use crate::session::Session;
use crate::session::summary::Ending;

/// What one verdict of one hook does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// The command goes on; the session's own reply follows (this code), or, for 0, its
    /// next step (reading the message, the queue hooks).
    Go(u16),
    /// Send this reply, then do what [`Then`] says.
    Say {
        /// The reply code.
        code: u16,
        /// The enhanced status code, unless the plugin's text carries one.
        status: Inline<9>,
        /// Where the text comes from.
        text: Text,
        /// What follows the reply.
        then: Then,
    },
    /// Send nothing: the plugin has answered the client itself (`DONE`).
    Quiet,
}

/// Where the text of a reply comes from. A `<placeholder>` in it is filled in with the
/// command's subject (the HELO host, the sender, our name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    /// The plugin's message, else this text.
    Plugin(Inline<TEXT_MAX>),
    /// This text, whatever the plugin said.
    Fixed(Inline<TEXT_MAX>),
}

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        match self {
            Text::Plugin(text) | Text::Fixed(text) => text.as_str(),
        }
    }
}

/// The longest text a cell holds (HELP's three lines are the longest).
const TEXT_MAX: usize = 144;

/// A short text kept in the table itself rather than pointed to: each pointer in a table
/// is one more relocation for the dynamic loader at every start of the process, and the
/// table would hold some two hundred.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Inline<const N: usize> {
    bytes: [u8; N],
    len: u8,
}

impl<const N: usize> Inline<N> {
    /// The text; longer than `N` bytes (or 255) fails at compile time.
    pub const fn new(text: &str) -> Inline<N> {
        let from = text.as_bytes();
        assert!(
            from.len() <= N && from.len() <= u8::MAX as usize,
            "text too long for the table"
        );
        let mut bytes = [0; N];
        let mut i = 0;
        while i < from.len() {
            bytes[i] = from[i];
            i += 1;
        }
        Inline {
            bytes,
            len: from.len() as u8,
        }
    }

    /// The text (whole UTF-8, as it came from a `&str`).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl<const N: usize> std::fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// What follows a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Then {
    /// The next command.
    Stay,
    /// The transaction is forgotten (qpsmtpd's `reset_transaction`).
    Reset,
    /// The connection is closed (`disconnect` hooks run).
    Close,
    /// The connection is closed, and the summary says why.
    CloseAs(Ending),
    /// The message is refused: the summary says so, the transaction is forgotten.
    Refuse,
    /// [`Then::Refuse`], then the connection is closed.
    RefuseAndClose,
    /// A failed AUTH attempt: counted, and at `max_auth_failures` the reply is `421` and
    /// the connection is closed instead.
    Fail,
    /// [`Then::Fail`], then the connection is closed.
    FailAndClose,
}

/// One hook's answers, one cell per verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The hook.
    pub hook: Hook,
    /// `OK`.
    pub ok: Act,
    /// `DECLINED` from every plugin (or no plugin on the hook).
    pub declined: Act,
    /// `DENY`.
    pub deny: Act,
    /// `DENYSOFT`.
    pub denysoft: Act,
    /// `DENY_DISCONNECT`.
    pub deny_disconnect: Act,
    /// `DENYSOFT_DISCONNECT`.
    pub denysoft_disconnect: Act,
    /// `DONE`.
    pub done: Act,
}

impl Row {
    /// The cell for a verdict.
    pub fn act(&self, verdict: Verdict) -> &Act {
        match verdict {
            Verdict::Ok => &self.ok,
            Verdict::Declined => &self.declined,
            Verdict::Deny => &self.deny,
            Verdict::DenySoft => &self.denysoft,
            Verdict::DenyDisconnect => &self.deny_disconnect,
            Verdict::DenySoftDisconnect => &self.denysoft_disconnect,
            Verdict::Done => &self.done,
        }
    }
}

/// The reply `code` with the plugin's text, else `default`.
pub(super) const fn plugin(code: u16, status: &'static str, default: &'static str) -> Act {
    plugin_then(code, status, default, Then::Stay)
}

/// [`plugin`], followed by `then`.
pub(super) const fn plugin_then(code: u16, status: &'static str, default: &'static str, then: Then) -> Act {
    Act::Say {
        code,
        status: Inline::new(status),
        text: Text::Plugin(Inline::new(default)),
        then,
    }
}

/// The reply `code` with this text, whatever the plugin said.
pub(super) const fn fixed(code: u16, status: &'static str, text: &'static str) -> Act {
    Act::Say {
        code,
        status: Inline::new(status),
        text: Text::Fixed(Inline::new(text)),
        then: Then::Stay,
    }
}

/// A named fixed reply, followed by `then`.
pub(super) const fn named(reply: Fixed, then: Then) -> Act {
    let status = match reply.status {
        Some(status) => status,
        None => "",
    };
    Act::Say {
        code: reply.code,
        status: Inline::new(status),
        text: Text::Fixed(Inline::new(reply.text)),
        then,
    }
}

/// What a hook's outcome comes to.
#[derive(Debug)]
pub enum Answer {
    /// The command goes on, with the plugin's outcome at hand.
    Go(Outcome),
    /// This reply, then that.
    Reply(Reply, Then),
    /// Nothing.
    Quiet,
}

/// Applies a row to an outcome; `subject` fills the text's placeholder.
pub fn answer(row: &Row, out: Outcome, subject: &str) -> Answer {
    match row.act(out.verdict) {
        Act::Go(_) => Answer::Go(out),
        Act::Quiet => Answer::Quiet,
        Act::Say {
            code,
            status,
            text,
            then,
        } => {
            let status = status.as_str();
            let reply = match text {
                Text::Plugin(default) => {
                    Reply::from_plugin(*code, status, &out.msg, &fill(default.as_str(), &[subject]))
                }
                Text::Fixed(text) => Reply::new(*code, status, fill(text.as_str(), &[subject])),
            };
            Answer::Reply(reply, then.clone())
        }
    }
}

impl Session {
    /// Answers a hook's outcome as its row says. `Some(outcome)` when the command goes on:
    /// the caller does its part and sends its own reply.
    pub(in crate::session) fn respond(&mut self, row: &Row, out: Outcome, subject: &str) -> Option<Outcome> {
        match answer(row, out, subject) {
            Answer::Go(out) => Some(out),
            Answer::Quiet => None,
            Answer::Reply(reply, then) => {
                self.reply_then(reply, then);
                None
            }
        }
    }

    /// Sends a reply and does what follows it.
    pub(in crate::session) fn reply_then(&mut self, reply: Reply, then: Then) {
        match then {
            Then::Stay => self.reply(reply),
            Then::Reset => {
                self.reply(reply);
                self.reset_transaction();
            }
            Then::Close => {
                self.reply(reply);
                self.disconnect();
            }
            Then::CloseAs(ending) => {
                self.summary.end(ending);
                self.reply(reply);
                self.disconnect();
            }
            Then::Refuse | Then::RefuseAndClose => {
                self.summary.end(Ending::MessageRefused(reply.code));
                self.reply(reply);
                self.reset_transaction();
                if then == Then::RefuseAndClose {
                    self.disconnect();
                }
            }
            Then::Fail | Then::FailAndClose => {
                self.auth_count_failure(reply);
                if then == Then::FailAndClose {
                    self.disconnect();
                }
            }
        }
    }
}
