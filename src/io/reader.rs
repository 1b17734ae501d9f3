//! The bounded line reader: command lines and pieces of message data out of whatever the
//! transport delivers, with read-ahead kept for pipelined commands.

use std::io;
use std::time::{Duration, Instant};

use super::Transport;

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

/// Size of the input buffer, and of the longest piece of message data handed on at once.
pub const BUFFER: usize = 64 * 1024;

/// Buffered input with bounded lines. Bytes read ahead (pipelined commands) stay here
/// until asked for, so nothing is lost or answered out of order.
#[derive(Debug)]
pub struct LineReader {
    buf: Box<[u8]>,
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
            buf: vec![0; BUFFER].into_boxed_slice(),
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
        memchr::memchr(b'\n', p).is_some() || p.len() == self.buf.len() || (self.eof && !p.is_empty())
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
            return Ok(true);
        }
        let n = t.read(&mut self.buf[self.end..], timeout)?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.end += n;
        Ok(true)
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
            if let Some(pos) = memchr::memchr(b'\n', self.pending()) {
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
    /// client that sends a byte at a time cannot keep one line open for ever. With no
    /// time left, a piece already read ahead is still handed over, but nothing more is read.
    pub fn read_data(
        &mut self,
        t: &mut dyn Transport,
        timeout: Duration,
    ) -> Result<(&[u8], bool), ReadError> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let p = self.pending();
            let cut = match memchr::memchr(b'\n', p) {
                Some(pos) => Some(pos + 1),
                None if p.len() == self.buf.len() => Some(p.len()),
                None => None,
            };
            if let Some(n) = cut {
                let s = self.start;
                self.start += n;
                return Ok((&self.buf[s..s + n], self.end > self.start));
            }
            let left = deadline.map_or(timeout, |d| d.saturating_duration_since(Instant::now()));
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
