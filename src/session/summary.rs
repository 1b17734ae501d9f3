//! The summary line logged at the end of every connection, and how the connection ended.

use std::fmt;

use super::Session;
use crate::log::Level;

/// How a connection ended, as the summary line's `outcome` says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// QUIT (also what a summary says when nothing else happened).
    Quit,
    /// A `connect` plugin refused the client.
    RefusedAtConnect,
    /// A `connect` plugin deferred the client.
    DeferredAtConnect,
    /// Nothing arrived within `timeout` (`true`: while reading message data).
    Timeout {
        /// The wait was for message data, not for a command.
        data: bool,
    },
    /// The message was not complete `data_deadline` seconds after `354`.
    DataDeadline,
    /// A termination signal arrived.
    Terminated,
    /// The input ended in the middle of a message.
    GoneDuringData,
    /// The input ended without QUIT.
    ClosedWithoutQuit,
    /// A write to the client failed.
    Gone,
    /// The client was gone when the message would have been queued.
    GoneBeforeQueueing,
    /// The connection was closed after this failure reply (code and text).
    ClosedAfter(u16, String),
    /// `unrecognized_command` closed the connection.
    TooManyUnrecognized,
    /// A bare LF or CR in message data.
    BareNewline,
    /// The message was over `databytes` or `max_header_size`.
    TooBig,
    /// The message held a NUL byte.
    Nul,
    /// The message could not be spooled.
    SpoolFailed,
    /// `data_post` or `queue_pre` refused the message with this code.
    MessageRefused(u16),
    /// The message was queued.
    Queued,
    /// The queue answered this code instead of `250`.
    NotQueued(u16),
    /// `max_auth_failures` was reached.
    TooManyAuthFailures,
    /// The TLS handshake failed.
    TlsFailed,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Quit => f.write_str("quit"),
            Ending::RefusedAtConnect => f.write_str("refused at connect"),
            Ending::DeferredAtConnect => f.write_str("deferred at connect"),
            Ending::Timeout { data: true } => f.write_str("timeout waiting for data"),
            Ending::Timeout { data: false } => f.write_str("timeout waiting for command"),
            Ending::DataDeadline => f.write_str("data_deadline passed"),
            Ending::Terminated => f.write_str("terminated by signal"),
            Ending::GoneDuringData => f.write_str("client gone during DATA"),
            Ending::ClosedWithoutQuit => f.write_str("client closed without QUIT"),
            Ending::Gone => f.write_str("client gone"),
            Ending::GoneBeforeQueueing => f.write_str("client gone before queueing"),
            Ending::ClosedAfter(code, text) => write!(f, "closed after {code} {text}"),
            Ending::TooManyUnrecognized => f.write_str("too many unrecognized commands"),
            Ending::BareNewline => f.write_str("bare LF/CR in DATA"),
            Ending::TooBig => f.write_str("552 message too big"),
            Ending::Nul => f.write_str("554 NUL in message"),
            Ending::SpoolFailed => f.write_str("451 spool write failed"),
            Ending::MessageRefused(code) => write!(f, "{code} message refused"),
            Ending::Queued => f.write_str("queued"),
            Ending::NotQueued(code) => write!(f, "{code} not queued"),
            Ending::TooManyAuthFailures => f.write_str("too many AUTH failures"),
            Ending::TlsFailed => f.write_str("TLS failed"),
        }
    }
}

/// What the summary line reports.
#[derive(Debug, Clone, Default)]
pub(super) struct Summary {
    pub(super) messages: u32,
    pub(super) queued: u32,
    pub(super) last_sender: Option<String>,
    pub(super) last_recipients: Vec<String>,
    pub(super) bytes: u64,
    /// The last thing that happened that says how the connection ends; `None` reads as
    /// [`Ending::Quit`].
    ending: Option<Ending>,
}

impl Summary {
    /// Records how the connection ends (a later event may still say otherwise).
    pub(super) fn end(&mut self, ending: Ending) {
        self.ending = Some(ending);
    }

    /// Records how the connection ends unless something already did.
    pub(super) fn end_unless_known(&mut self, ending: Ending) {
        self.ending.get_or_insert(ending);
    }

    /// Has anything said how the connection ends?
    pub(super) fn known(&self) -> bool {
        self.ending.is_some()
    }
}

impl Session {
    pub(super) fn log_summary(&self) {
        let s = &self.summary;
        let helo = match self.conn.hello_host() {
            "" => "-",
            host => host,
        };
        let rcpt = if s.last_recipients.is_empty() {
            "-".to_string()
        } else {
            s.last_recipients.join(",")
        };
        self.log.log(
            Level::Notice,
            format_args!(
                "summary remote={} helo={helo} from={} rcpt={rcpt} messages={} queued={} bytes={} outcome=\"{}\" duration={:.3}s",
                self.conn.remote_ip,
                s.last_sender.as_deref().unwrap_or("-"),
                s.messages,
                s.queued,
                s.bytes,
                s.ending.as_ref().unwrap_or(&Ending::Quit),
                self.conn.started.elapsed().as_secs_f64(),
            ),
        );
    }
}
