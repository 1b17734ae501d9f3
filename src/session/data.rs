//! DATA: the command (qpsmtpd's `data`) and what the message reader finds (its
//! `data_respond`). Bad-input policy:
//!
//! | Input | Result |
//! |---|---|
//! | `CRLF.CRLF` | end of message (the only terminator) |
//! | a line starting with `.` | the dot is removed (RFC 5321 §4.5.2) |
//! | bare LF or bare CR, network connection | `421 4.5.0` and close, nothing queued (SMTP smuggling: `\n.\r\n`, `\n.\n` and `\r.\r` can never end a message) |
//! | bare LF, piped debug session | accepted as a line end (a bare CR is kept as it is) |
//! | a NUL byte, anywhere | read to the end, then `554 5.6.0`, nothing queued (RFC 5322 §2.3; an MTA downstream that drops NULs would read `\0.\r\n` as the end) |
//! | over `databytes` | read to the end, then `552 5.3.4`, nothing queued |
//! | header block over `max_header_size` | read to the end, then `552 5.3.4` |
//! | spool write fails (disk full) | read to the end, then `451 4.3.0` |
//! | end of input, or a line not complete within `timeout` | `451`/`421`, nothing queued, spool file removed |
//! | message not complete `data_deadline` seconds after `354` | `421 4.4.2`, nothing queued, spool file removed |

#[doc(hidden)]
pub mod fuzzing;
mod receiver;
#[cfg(test)]
mod tests;

use std::time::Instant;

use super::fixed::{
    BARE_NEWLINE, GO_AHEAD, MAIL_FIRST, MESSAGE_TOO_BIG, NUL_IN_MESSAGE, RCPT_FIRST, SPOOL_FAILED,
};
use super::refusals::{DATA, DATA_HEADERS_END};
use super::summary::Ending;
use super::{Session, State};
use crate::log::Level;
use crate::plugin::{Args, Hook};
use crate::transaction::Spool;

pub(super) use receiver::DataReceiver;
use receiver::Event;

impl Session {
    /// DATA: the `data` hook runs before the sequence checks, as in qpsmtpd, after the
    /// wait for an early talker if a plugin asks for one.
    pub(super) fn data(&mut self) {
        if !self.quiet_first(Hook::Data, self.offers.data_wait) {
            self.data_hooks();
        }
    }

    /// The `data` hooks, then `354` or the refusal.
    pub(super) fn data_hooks(&mut self) {
        let out = self.run(Hook::Data, Args::None);
        if self.respond(&DATA, out, "").is_some() {
            self.start_data();
        }
    }

    fn start_data(&mut self) {
        if self.txn.sender.is_none() {
            return self.reply(MAIL_FIRST.reply());
        }
        if self.txn.recipients.is_empty() {
            return self.reply(RCPT_FIRST.reply());
        }
        let spool = Spool::new(&self.settings.spool_dir, self.settings.size_threshold);
        let receiver = DataReceiver::new(
            self.conn.network,
            self.settings.databytes,
            self.settings.max_header_size,
            spool,
        );
        self.enter(State::Data(Box::new(receiver)));
        self.reply(GO_AHEAD.reply());
    }

    /// When the message being received must be complete: `data_deadline` after `354`
    /// (per-read timeouts alone would let a client that trickles a line at a time hold
    /// the message open for ever). The driver reads the clock against it only when it has
    /// to wait for input, not for every line already read ahead.
    pub(super) fn data_deadline(&self) -> Option<Instant> {
        let State::Data(receiver) = &self.state else {
            return None;
        };
        receiver.started.checked_add(self.settings.data_deadline)
    }

    /// Has the message being received run past `data_deadline`?
    pub(super) fn data_deadline_passed(&self) -> bool {
        matches!(&self.state, State::Data(r) if r.started.elapsed() >= self.settings.data_deadline)
    }

    /// Handles one segment of message data; `read_ahead`: more input is already read.
    pub(super) fn data_segment(&mut self, seg: &[u8], read_ahead: bool) {
        let State::Data(receiver) = &mut self.state else {
            return;
        };
        match receiver.segment(seg) {
            Event::More => {}
            Event::HeaderEnded => self.headers_ended(),
            Event::Complete => self.data_complete(read_ahead),
            Event::BareNewline => {
                self.log.log(
                    Level::Warn,
                    format_args!("bare LF or CR in message data; closing"),
                );
                self.summary.end(Ending::BareNewline);
                self.reply(BARE_NEWLINE.reply());
                self.disconnect();
            }
        }
    }

    /// The header block is complete: it becomes the transaction's header and
    /// `data_headers_end` runs (only its `*_DISCONNECT` verdicts act).
    fn headers_ended(&mut self) {
        let State::Data(receiver) = &mut self.state else {
            return;
        };
        self.txn.header = std::mem::take(&mut receiver.header);
        if receiver.refused() {
            return;
        }
        let out = self.run(Hook::DataHeadersEnd, Args::None);
        self.respond(&DATA_HEADERS_END, out, "");
    }

    /// The terminator arrived: check the limits, then hand over to the queue phase.
    fn data_complete(&mut self, read_ahead: bool) {
        if let State::Data(r) = &self.state
            && r.in_header
        {
            self.headers_ended();
        }
        // data_headers_end may have closed the connection.
        if !matches!(self.state, State::Data(_)) {
            return;
        }
        let State::Data(receiver) = self.enter(State::Commands) else {
            return;
        };
        let mut receiver = *receiver;
        self.summary.messages += 1;
        self.summary.bytes += receiver.size;
        if let Some((reply, ending)) = self.message_refused(&mut receiver) {
            self.summary.end(ending);
            self.reply(reply);
            return self.reset_transaction();
        }
        self.txn.data_size = receiver.size;
        self.txn.body = Some(receiver.body);
        self.message_received(read_ahead);
    }

    /// Why a complete message is refused whatever the plugins say: too big, a NUL, a
    /// spool file that could not be written.
    fn message_refused(&self, receiver: &mut DataReceiver) -> Option<(crate::reply::Reply, Ending)> {
        if receiver.too_big() || receiver.header_too_big {
            return Some((MESSAGE_TOO_BIG.reply(), Ending::TooBig));
        }
        if receiver.nul {
            self.log
                .log(Level::Warn, format_args!("NUL in message data; message refused"));
            return Some((NUL_IN_MESSAGE.reply(), Ending::Nul));
        }
        let e = receiver
            .write_error
            .take()
            .or_else(|| receiver.body.flush().err())?;
        self.log
            .log(Level::Error, format_args!("cannot spool message: {e}"));
        Some((SPOOL_FAILED.reply(), Ending::SpoolFailed))
    }
}
