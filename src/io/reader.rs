//! The bounded line reader: command lines and pieces of message data out of whatever the
//! transport delivers, with read-ahead kept for pipelined commands.

use std::io;
use std::time::{Duration, Instant};

use super::Transport;
use crate::bytes::find_byte;

/// Why a read produced no line.
#[derive(Debug)]
pub enum ReadError {
    /// Nothing arrived within the timeout.
    Timeout,
    /// The client closed the connection.
    Eof,
    /// A termination signal arrived.
    Terminated,
    /// The read failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> ReadError {
        match e.kind() {
            io::ErrorKind::TimedOut => ReadError::Timeout,
            io::ErrorKind::Interrupted => ReadError::Terminated,
            _ => ReadError::Io(e),
        }
    }
}

/// A command line, or the news that it was too long (and has been skipped).
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// The line without its line end (`\r\n` or `\n`).
    Text(&'a [u8]),
    /// The line was longer than the limit; it has been read and discarded.
    TooLong,
}

/// Largest size of the input buffer, and of the longest piece of message data handed on
/// at once.
pub const BUFFER: usize = 64 * 1024;

/// Size the input buffer starts at: a whole ordinary session fits. It grows (to at most
/// [`BUFFER`]) when a read fills it, so a message streamed in fast is read in large
/// reads, while a session of short commands never zeroes, and so never touches, the 16
/// pages of a full-size buffer (a cost paid per connection).
const INITIAL_BUFFER: usize = 4 * 1024;

/// Buffered input with bounded lines. Bytes read ahead (pipelined commands) stay here
/// until asked for, so nothing is lost or answered out of order.
#[derive(Debug)]
pub struct LineReader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl Default for LineReader {
    fn default() -> LineReader {
        LineReader::new()
    }
}

impl LineReader {
    /// An empty reader.
    pub fn new() -> LineReader {
        LineReader {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            eof: false,
        }
    }

    fn pending(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Is a whole line (or a full buffer) waiting, so the next read will not block?
    pub fn has_line(&self) -> bool {
        let p = self.pending();
        find_byte(b'\n', p).is_some() || p.len() >= BUFFER || (self.eof && !p.is_empty())
    }

    /// Bytes read ahead and not yet used.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Throws away everything read ahead (STARTTLS: CVE-2011-0411).
    pub fn discard(&mut self) -> usize {
        let n = self.buffered();
        self.start = 0;
        self.end = 0;
        n
    }

    /// Reads more; `Ok(false)` at end of input.
    fn fill(&mut self, t: &mut dyn Transport, timeout: Duration) -> Result<bool, ReadError> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= BUFFER {
                return Ok(true);
            }
            self.grow();
        }
        let n = t.read(&mut self.buf[self.end..], timeout)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        // A read that filled the buffer: more is probably waiting (a message streamed
        // in), so the next read may take more at once.
        if self.end == self.buf.len() && self.buf.len() < BUFFER {
            self.grow();
        }
        Ok(true)
    }

    /// Makes the buffer four times larger, up to [`BUFFER`].
    fn grow(&mut self) {
        let size = (self.buf.len() * 4).clamp(INITIAL_BUFFER, BUFFER);
        self.buf.resize(size, 0);
    }

    /// The next command line of at most `max` bytes. A longer line is read to its end
    /// and reported as `TooLong`. A last line without a line end counts as a line.
    ///
    /// `timeout` bounds the whole line, not each read: a client that trickles a byte now
    /// and then cannot hold a line open past it. Perl qpsmtpd's alarm covered the whole
    /// line too (README Differences 1); qmail-smtpd's `timeoutsmtpd` applies per read.
    pub fn read_line(
        &mut self,
        t: &mut dyn Transport,
        max: usize,
        timeout: Duration,
    ) -> Result<Line<'_>, ReadError> {
        let deadline = Instant::now() + timeout;
        let mut skipping = false;
        loop {
            if let Some(pos) = find_byte(b'\n', self.pending()) {
                let line_start = self.start;
                self.start += pos + 1;
                if skipping || pos > max {
                    return Ok(Line::TooLong);
                }
                let mut line = &self.buf[line_start..line_start + pos];
                if let Some(stripped) = line.strip_suffix(b"\r") {
                    line = stripped;
                }
                return Ok(Line::Text(line));
            }
            if self.buffered() > max {
                skipping = true;
                self.start = self.end;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            if !self.fill(t, left)? {
                if skipping {
                    return Ok(Line::TooLong);
                }
                if self.buffered() > 0 {
                    let line_start = self.start;
                    self.start = self.end;
                    let line = &self.buf[line_start..self.end];
                    return Ok(Line::Text(line.strip_suffix(b"\r").unwrap_or(line)));
                }
                return Err(ReadError::Eof);
            }
        }
    }

    /// The next piece of message data: up to and including the next LF, or a full
    /// buffer's worth of a longer line, or what is left at end of input. The flag says
    /// whether more input was already read ahead (e.g. a QUIT pipelined after the dot).
    ///
    /// `timeout` bounds the whole piece, not each read (qpsmtpd's alarm per DATA line): a
    /// client that sends a byte at a time cannot keep one line open for ever; `until`, if
    /// given, bounds it too (the message's deadline). With no time left, a piece already
    /// read ahead is still handed over, but nothing more is read. The clock is read only
    /// when a read is needed: a message streamed in fast is mostly lines read ahead, and
    /// a clock read per line was a quarter of the CPU time of a large message on a VM.
    pub fn read_data(
        &mut self,
        t: &mut dyn Transport,
        timeout: Duration,
        until: Option<Instant>,
    ) -> Result<(&[u8], bool), ReadError> {
        let mut deadline = None;
        loop {
            let p = self.pending();
            let cut = match find_byte(b'\n', p) {
                Some(pos) => Some(pos + 1),
                None if p.len() >= BUFFER => Some(BUFFER),
                None => None,
            };
            if let Some(n) = cut {
                let s = self.start;
                self.start += n;
                return Ok((&self.buf[s..s + n], self.end > self.start));
            }
            let now = Instant::now();
            let d = *deadline.get_or_insert_with(|| {
                let piece = now.checked_add(timeout);
                match (piece, until) {
                    (Some(p), Some(u)) => Some(p.min(u)),
                    (p, u) => p.or(u),
                }
            });
            let left = d.map_or(timeout, |d| d.saturating_duration_since(now));
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            if !self.fill(t, left)? {
                if self.buffered() > 0 {
                    let s = self.start;
                    self.start = self.end;
                    return Ok((&self.buf[s..self.end], false));
                }
                return Err(ReadError::Eof);
            }
        }
    }
}
