//! The message reader after `354`: it works on segments the driver cuts at each LF (or
//! at 64 KiB when a line is longer), so memory stays bounded whatever the client sends,
//! and applies the bad-input policy in `data.rs`.

use std::io;
use std::time::Instant;

use crate::header::{Header, HeaderEnd};
use crate::transaction::Spool;

/// What one segment of message data led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
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
    pub(super) in_header: bool,
    header_line: Vec<u8>,
    pub(super) header: Header,
    header_size: usize,
    max_header: usize,
    pub(super) body: Spool,
    pub(super) size: u64,
    max_size: u64,
    pub(super) header_too_big: bool,
    /// A NUL byte arrived: nothing more is stored, and the message is refused at its end.
    pub(super) nul: bool,
    pub(super) write_error: Option<io::Error>,
    line: Vec<u8>,
    /// When `354` was sent: the whole message must arrive within `data_deadline` of it.
    pub(super) started: Instant,
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
    pub(super) fn too_big(&self) -> bool {
        self.max_size > 0 && self.size > self.max_size
    }

    /// Will the message be refused whatever follows (too big, or a NUL)? Then nothing
    /// more is stored or counted.
    pub(super) fn refused(&self) -> bool {
        self.too_big() || self.nul
    }

    /// Takes one segment: a line with its LF, or a piece of a longer line.
    pub(super) fn segment(&mut self, seg: &[u8]) -> Event {
        let ends_line = seg.last() == Some(&b'\n');
        let at_start = self.line_start && !self.pending_cr;
        if at_start && (seg == b".\r\n" || (!self.strict_crlf && seg == b".\n")) {
            return Event::Complete;
        }
        if crate::bytes::contains_byte(0, seg) {
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
        let bare_cr = lone_held_cr || crate::bytes::contains_byte(b'\r', content);
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
                    // The line is kept as the first body line, after the blank line the
                    // header block lacked (README Differences 17; Perl dropped it).
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
