//! DATA: the command (reference §3.5) and the message reader (§4).
//!
//! The reader works on segments the driver cuts at each LF (or at 64 KiB when a line is
//! longer), so memory stays bounded whatever the client sends. Bad-input policy:
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

use std::io;
use std::time::{Duration, Instant};

use super::{Session, State};
use crate::header::{Header, HeaderEnd};
use crate::log::Level;
use crate::plugin::{Args, Hook, Verdict};
use crate::reply::Reply;
use crate::transaction::Spool;

/// What one segment of message data led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Event {
    /// Keep reading.
    More,
    /// The header block just ended (run `data_headers_end`).
    HeaderEnded,
    /// The terminating `.` line arrived.
    Complete,
    /// A bare LF or CR on a network connection.
    BareNewline,
}

/// The message reader after `354`.
#[derive(Debug)]
pub struct DataReceiver {
    strict_crlf: bool,
    line_start: bool,
    pending_cr: bool,
    in_header: bool,
    header_line: Vec<u8>,
    header: Header,
    header_size: usize,
    max_header: usize,
    body: Spool,
    size: u64,
    max_size: u64,
    header_too_big: bool,
    /// A NUL byte arrived: nothing more is stored, and the message is refused at its end.
    nul: bool,
    write_error: Option<io::Error>,
    line: Vec<u8>,
    /// When `354` was sent: the whole message must arrive within `data_deadline` of it.
    started: Instant,
}

impl DataReceiver {
    /// A reader; `strict_crlf` on network connections, `max_size` 0 = unlimited.
    pub fn new(strict_crlf: bool, max_size: u64, max_header: usize, body: Spool) -> DataReceiver {
        DataReceiver {
            strict_crlf,
            line_start: true,
            pending_cr: false,
            in_header: true,
            header_line: Vec::new(),
            header: Header::new(),
            header_size: 0,
            max_header,
            body,
            size: 0,
            max_size,
            header_too_big: false,
            nul: false,
            write_error: None,
            line: Vec::with_capacity(1024),
            started: Instant::now(),
        }
    }

    /// Over the size limit?
    fn too_big(&self) -> bool {
        self.max_size > 0 && self.size > self.max_size
    }

    /// Will the message be refused whatever follows (too big, or a NUL)? Then nothing
    /// more is stored or counted.
    fn refused(&self) -> bool {
        self.too_big() || self.nul
    }

    /// Takes one segment: a line with its LF, or a piece of a longer line.
    fn segment(&mut self, seg: &[u8]) -> Event {
        let ends_line = seg.last() == Some(&b'\n');
        let at_start = self.line_start && !self.pending_cr;
        if at_start && (seg == b".\r\n" || (!self.strict_crlf && seg == b".\n")) {
            return Event::Complete;
        }
        if memchr::memchr(0, seg).is_some() {
            self.nul = true;
        }
        let mut content = if ends_line { &seg[..seg.len() - 1] } else { seg };
        // A CR held back from the end of the last piece is half of CRLF only if this
        // piece is that LF alone; before anything else it was a bare CR.
        let held_cr = std::mem::take(&mut self.pending_cr);
        let lone_held_cr = held_cr && seg != b"\n";
        let mut crlf = held_cr && !lone_held_cr;
        if ends_line {
            if let Some(stripped) = content.strip_suffix(b"\r") {
                content = stripped;
                crlf = true;
            }
        } else if let Some(stripped) = content.strip_suffix(b"\r") {
            // A CR at the end of a piece: whether it starts CRLF shows in the next piece.
            content = stripped;
            self.pending_cr = true;
        }
        let bare_cr = lone_held_cr || memchr::memchr(b'\r', content).is_some();
        if self.strict_crlf && ((ends_line && !crlf) || bare_cr) {
            return Event::BareNewline;
        }
        let unstuff = at_start && content.first() == Some(&b'.');
        if ends_line && !held_cr && !unstuff && !self.in_header {
            // The common body line needs no rewriting: stored as it came, LF for CRLF,
            // without a copy.
            self.line_start = true;
            self.store(content, false);
            return self.store(b"\n", true);
        }
        self.line.clear();
        if lone_held_cr {
            self.line.push(b'\r');
        }
        self.line
            .extend_from_slice(if unstuff { &content[1..] } else { content });
        if ends_line {
            self.line.push(b'\n');
        }
        self.line_start = ends_line;
        let line = std::mem::take(&mut self.line);
        let event = self.store(&line, ends_line);
        self.line = line;
        event
    }

    /// Counts and stores a normalised piece (qpsmtpd: once over the limit, nothing more
    /// is stored or counted).
    fn store(&mut self, piece: &[u8], ends_line: bool) -> Event {
        if self.refused() {
            return Event::More;
        }
        self.size += piece.len() as u64;
        if !self.in_header {
            self.write_body(piece);
            return Event::More;
        }
        // The blank line that ends the block is not part of it: a block of exactly
        // `max_header_size` bytes is accepted with a body as without one.
        let blank_line = self.header_line.is_empty() && piece == b"\n";
        self.header_size += if blank_line { 0 } else { piece.len() };
        if self.header_size > self.max_header {
            self.header_too_big = true;
            self.in_header = false;
            return Event::More;
        }
        self.header_line.extend_from_slice(piece);
        if !ends_line {
            return Event::More;
        }
        let mut line = std::mem::take(&mut self.header_line);
        let event = if line == b"\n" {
            self.in_header = false;
            self.write_body(b"\n");
            Event::HeaderEnded
        } else {
            match self.header.push_line(&line) {
                HeaderEnd::More => Event::More,
                HeaderEnd::NotAField => {
                    // Quirk 6 fixed: the line is kept as the first body line, after the
                    // blank line the header block lacked.
                    self.in_header = false;
                    self.write_body(b"\n");
                    self.write_body(&line);
                    Event::HeaderEnded
                }
            }
        };
        // The line buffer is used again for the next line (no allocation per field),
        // unless one very long line made it big.
        if line.capacity() <= 4096 {
            line.clear();
            self.header_line = line;
        }
        event
    }

    fn write_body(&mut self, data: &[u8]) {
        if self.write_error.is_none()
            && !self.header_too_big
            && let Err(e) = self.body.write(data)
        {
            self.write_error = Some(e);
        }
    }
}

impl Session {
    /// DATA: the `data` hook runs before the sequence checks (reference §3.5).
    pub(super) fn data(&mut self) {
        let out = self.run(Hook::Data, Args::None);
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => {
                self.reply(Reply::from_plugin(554, "5.7.1", &out.msg, "Message denied"));
                self.reset_transaction();
            }
            Verdict::DenySoft => {
                self.reply(Reply::from_plugin(
                    451,
                    "4.7.1",
                    &out.msg,
                    "Message denied temporarily",
                ));
                self.reset_transaction();
            }
            Verdict::DenyDisconnect => {
                self.reply(Reply::from_plugin(554, "5.7.1", &out.msg, "Message denied"));
                self.disconnect();
            }
            Verdict::DenySoftDisconnect => {
                // 421 as qpsmtpd 0.94 answered: the code that announces a close.
                self.reply(Reply::from_plugin(
                    421,
                    "4.7.1",
                    &out.msg,
                    "Message denied temporarily",
                ));
                self.disconnect();
            }
            Verdict::Ok | Verdict::Declined => self.start_data(),
        }
    }

    fn start_data(&mut self) {
        if self.txn.sender.is_none() {
            return self.reply(Reply::new(503, "5.5.1", "MAIL first"));
        }
        if self.txn.recipients.is_empty() {
            return self.reply(Reply::new(503, "5.5.1", "RCPT first"));
        }
        let spool = Spool::new(&self.settings.spool_dir, self.settings.size_threshold);
        let receiver = DataReceiver::new(
            self.conn.network,
            self.settings.databytes,
            self.settings.max_header_size,
            spool,
        );
        self.state = State::Data(Box::new(receiver));
        self.reply(Reply::plain(354, "go ahead; end with <CRLF>.<CRLF>"));
    }

    /// How long the next read of message data may wait: `timeout`, but never past the
    /// message's deadline, `data_deadline` after `354` (per-read timeouts alone would let
    /// a client that trickles a line at a time hold the message open for ever).
    pub(super) fn data_read_timeout(&self) -> Duration {
        let State::Data(receiver) = &self.state else {
            return self.settings.data_timeout;
        };
        let Some(deadline) = receiver.started.checked_add(self.settings.data_deadline) else {
            return self.settings.data_timeout;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        self.settings.data_timeout.min(left)
    }

    /// Has the message being received run past `data_deadline`?
    pub(super) fn data_deadline_passed(&self) -> bool {
        matches!(&self.state, State::Data(r) if r.started.elapsed() >= self.settings.data_deadline)
    }

    /// Handles one segment of message data.
    pub fn data_segment(&mut self, seg: &[u8]) {
        let State::Data(receiver) = &mut self.state else {
            return;
        };
        match receiver.segment(seg) {
            Event::More => {}
            Event::HeaderEnded => self.headers_ended(),
            Event::Complete => self.data_complete(),
            Event::BareNewline => {
                self.log.log(
                    Level::Warn,
                    format_args!("bare LF or CR in message data; closing"),
                );
                self.summary.outcome = "bare LF/CR in DATA".into();
                self.reply(Reply::new(
                    421,
                    "4.5.0",
                    "Lines must end with CRLF; bare LF or CR is not allowed (RFC 5321 2.3.8)",
                ));
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
        match out.verdict {
            Verdict::DenyDisconnect => {
                self.reply(Reply::from_plugin(554, "5.7.1", &out.msg, "Message denied"));
                self.disconnect();
            }
            Verdict::DenySoftDisconnect => {
                self.reply(Reply::from_plugin(
                    421,
                    "4.7.1",
                    &out.msg,
                    "Message denied temporarily",
                ));
                self.disconnect();
            }
            _ => {}
        }
    }

    /// The terminator arrived: check the limits, then hand over to the queue phase.
    fn data_complete(&mut self) {
        if let State::Data(r) = &self.state
            && r.in_header
        {
            self.headers_ended();
        }
        // data_headers_end may have closed the connection.
        if !matches!(self.state, State::Data(_)) {
            return;
        }
        let State::Data(receiver) = std::mem::replace(&mut self.state, State::Commands) else {
            return;
        };
        let mut receiver = *receiver;
        self.summary.messages += 1;
        self.summary.bytes += receiver.size;
        if receiver.too_big() || receiver.header_too_big {
            self.summary.outcome = "552 message too big".into();
            self.reply(Reply::new(552, "5.3.4", "Message too big!"));
            return self.reset_transaction();
        }
        if receiver.nul {
            self.log
                .log(Level::Warn, format_args!("NUL in message data; message refused"));
            self.summary.outcome = "554 NUL in message".into();
            self.reply(Reply::new(
                554,
                "5.6.0",
                "Message contains a NUL character; not accepted (RFC 5322 2.3)",
            ));
            return self.reset_transaction();
        }
        if let Some(e) = receiver
            .write_error
            .take()
            .or_else(|| receiver.body.flush().err())
        {
            self.log
                .log(Level::Error, format_args!("cannot spool message: {e}"));
            self.summary.outcome = "451 spool write failed".into();
            self.reply(Reply::new(
                451,
                "4.3.0",
                "Temporary failure writing the message; try again later",
            ));
            return self.reset_transaction();
        }
        self.txn.data_size = receiver.size;
        self.txn.body = Some(receiver.body);
        self.message_received();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn receiver(strict: bool, max: u64) -> (tempfile::TempDir, DataReceiver) {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::new(dir.path(), 16);
        (dir, DataReceiver::new(strict, max, 1 << 20, spool))
    }

    /// Feeds bytes cut at each LF (as the driver does) and returns the last event.
    fn feed(r: &mut DataReceiver, input: &[u8]) -> Event {
        let mut last = Event::More;
        for seg in input.split_inclusive(|b| *b == b'\n') {
            last = r.segment(seg);
            if last == Event::Complete || last == Event::BareNewline {
                break;
            }
        }
        last
    }

    fn body(r: &mut DataReceiver) -> Vec<u8> {
        let mut v = Vec::new();
        r.body.reader().unwrap().read_to_end(&mut v).unwrap();
        v
    }

    #[test]
    fn crlf_dot_crlf_ends_and_dots_are_unstuffed() {
        let (_d, mut r) = receiver(true, 0);
        let ev = feed(&mut r, b"Subject: x\r\n\r\n..dotted\r\nline\r\n.\r\n");
        assert_eq!(ev, Event::Complete);
        assert_eq!(r.header.to_bytes(), b"Subject: x\n");
        assert_eq!(body(&mut r), b"\n.dotted\nline\n");
        assert_eq!(r.size, 11 + 1 + 8 + 5);
    }

    #[test]
    fn smuggling_sequences_never_end_a_message() {
        for input in [&b"a\r\n\n.\r\n"[..], b"a\r\n\n.\n", b"a\r\n\r.\r\n", b"a\n.\r\n"] {
            let (_d, mut r) = receiver(true, 0);
            assert_eq!(feed(&mut r, input), Event::BareNewline, "{input:?}");
        }
        let (_d, mut r) = receiver(true, 0);
        assert_eq!(r.segment(b"x\ry\r\n"), Event::BareNewline);
    }

    #[test]
    fn lf_lines_are_fine_on_a_pipe() {
        let (_d, mut r) = receiver(false, 0);
        assert_eq!(feed(&mut r, b"Subject: x\n\nbody\n.\n"), Event::Complete);
        assert_eq!(body(&mut r), b"\nbody\n");
    }

    #[test]
    fn cr_split_across_pieces_is_crlf() {
        let (_d, mut r) = receiver(true, 0);
        r.in_header = false;
        assert_eq!(r.segment(b"abc\r"), Event::More);
        assert_eq!(r.segment(b"\n"), Event::More);
        assert_eq!(r.segment(b".\r\n"), Event::Complete);
        assert_eq!(body(&mut r), b"abc\n");
    }

    #[test]
    fn cr_held_at_a_piece_end_before_anything_but_lf_is_bare() {
        for next in [&b"X\r\n"[..], b"\r\n", b"X", b"\r"] {
            let (_d, mut r) = receiver(true, 0);
            r.in_header = false;
            assert_eq!(r.segment(b"abc\r"), Event::More);
            assert_eq!(r.segment(next), Event::BareNewline, "CR then {next:?}");
        }
        // On a pipe the bare CR is kept as it came.
        let (_d, mut r) = receiver(false, 0);
        r.in_header = false;
        r.segment(b"abc\r");
        r.segment(b"X\r\n");
        assert_eq!(r.segment(b".\r\n"), Event::Complete);
        assert_eq!(body(&mut r), b"abc\rX\n");
    }

    #[test]
    fn nul_refuses_the_message_and_stops_storing() {
        let (_d, mut r) = receiver(true, 0);
        let ev = feed(&mut r, b"Subject: x\r\n\r\nbefore\r\nzero\0\r\nafter\r\n.\r\n");
        assert_eq!(ev, Event::Complete);
        assert!(r.nul && r.refused());
        assert_eq!(body(&mut r), b"\nbefore\n");
        // "\0.\r\n" is not a terminator: the message goes on to the real one.
        let (_d, mut r) = receiver(true, 0);
        assert_eq!(r.segment(b"\r\n"), Event::HeaderEnded);
        assert_eq!(r.segment(b"\0.\r\n"), Event::More);
        assert_eq!(r.segment(b"MAIL FROM:<x@y>\r\n"), Event::More);
        assert_eq!(r.segment(b".\r\n"), Event::Complete);
        assert!(r.nul);
    }

    #[test]
    fn long_line_pieces_are_not_unstuffed_or_terminators() {
        let (_d, mut r) = receiver(true, 0);
        r.in_header = false;
        r.segment(b"xxxx");
        assert_eq!(r.segment(b".\r\n"), Event::More);
        assert_eq!(body(&mut r), b"xxxx.\n");
    }

    #[test]
    fn size_limit_counts_lf_normalised_bytes() {
        let (_d, mut r) = receiver(true, 10);
        assert_eq!(feed(&mut r, b"\r\n12345678\r\n.\r\n"), Event::Complete);
        assert!(!r.too_big());
        let (_d, mut r) = receiver(true, 10);
        assert_eq!(feed(&mut r, b"\r\n1234567890\r\nmore\r\n.\r\n"), Event::Complete);
        assert!(r.too_big());
    }

    #[test]
    fn a_line_that_is_not_a_header_starts_the_body() {
        let (_d, mut r) = receiver(true, 0);
        assert_eq!(
            feed(&mut r, b"From: a\r\nnot a header\r\nmore\r\n.\r\n"),
            Event::Complete
        );
        assert_eq!(r.header.to_bytes(), b"From: a\n");
        assert_eq!(body(&mut r), b"\nnot a header\nmore\n");
    }
}
