//! Reading and writing the client connection with timeouts, and a bounded line reader.
//!
//! Every read waits with `poll` first (qmail's `timeoutread`), so the same code works on
//! sockets and on pipes; every write waits for `POLLOUT` and writes at most 4 KiB, which
//! a ready socket or pipe always accepts without blocking, so a client that stops reading
//! cannot hold the process past the timeout.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// Set by the SIGTERM/SIGHUP/SIGINT handler: finish the session cleanly.
pub static TERMINATE: AtomicBool = AtomicBool::new(false);

/// The client connection as the session driver sees it.
pub trait Transport {
    /// Waits up to `timeout` for input, then reads some bytes (`Ok(0)` = end of input).
    /// A timeout is `Err` with kind `TimedOut`; a termination signal is `Interrupted`.
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Writes everything or fails (`TimedOut` if the client stops reading).
    fn write_all(&mut self, buf: &[u8], timeout: Duration) -> io::Result<()>;

    /// Is the client still connected? Asked before a message is queued; `true` when the
    /// transport cannot tell.
    fn client_alive(&mut self) -> bool {
        true
    }

    /// Ends the connection after the last reply (see [`linger`]); nothing by default.
    fn hang_up(&mut self) {}
}

/// fd 0 for reading and fd 1 for writing, as every super-server passes the connection.
#[derive(Debug, Default)]
pub struct Stdio {
    /// fd 0 is a socket, whose state says whether the client is still there (a pipe's
    /// says nothing useful: a writer that finished also shows as a hang-up).
    pub socket: bool,
}

impl Transport for Stdio {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let stdin = io::stdin();
        read_fd(stdin.as_fd(), buf, timeout)
    }

    fn write_all(&mut self, buf: &[u8], timeout: Duration) -> io::Result<()> {
        let stdout = io::stdout();
        write_fd(stdout.as_fd(), buf, timeout)
    }

    fn client_alive(&mut self) -> bool {
        !self.socket || peer_alive(io::stdin().as_fd())
    }

    fn hang_up(&mut self) {
        linger(io::stdin().as_fd(), io::stdout().as_fd(), LINGER);
    }
}

/// How long, at most, the input left at the end is read and thrown away.
pub const LINGER: Duration = Duration::from_secs(2);

/// A pause in that input this long ends the wait early.
const LINGER_IDLE: Duration = Duration::from_millis(500);

/// Ends a socket connection without a TCP reset. Closing a socket with unread input makes
/// the kernel send a reset, and a reset can destroy our last reply on its way (the `221`,
/// or a `421`). So when input is waiting, our sending side is shut first (the client sees
/// the end after the reply), then input is read and thrown away until the client closes,
/// pauses for [`LINGER_IDLE`] or `time` is up. With nothing waiting the close is clean as
/// it is, and a client that waits for our close is not kept waiting. On a pipe the
/// shutdown fails and nothing else happens.
pub fn linger(input: BorrowedFd<'_>, output: BorrowedFd<'_>, time: Duration) {
    use nix::sys::socket::{Shutdown, shutdown};
    use std::os::fd::AsRawFd;
    if !matches!(wait(input, PollFlags::POLLIN, Duration::ZERO), Ok(ev) if !ev.is_empty()) {
        return;
    }
    if shutdown(output.as_raw_fd(), Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + time;
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(LINGER_IDLE);
        if left.is_zero() || !matches!(read_fd(input, &mut buf, left), Ok(n) if n > 0) {
            return;
        }
    }
}

/// Waits for `flags` on `fd` for at most `timeout`, restarting after signals unless a
/// termination was requested.
fn wait(fd: BorrowedFd<'_>, flags: PollFlags, timeout: Duration) -> io::Result<PollFlags> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        let mut fds = [PollFd::new(fd, flags)];
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::TimedOut)),
            Ok(_) => return Ok(fds[0].revents().unwrap_or(PollFlags::empty())),
            Err(Errno::EINTR) if TERMINATE.load(Ordering::SeqCst) => {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `poll` then `read` on a file descriptor.
pub fn read_fd(fd: BorrowedFd<'_>, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
    // A signal that arrived while we were not waiting (for example during a long plugin
    // call) interrupted no `poll`; notice it before waiting for the client.
    if TERMINATE.load(Ordering::SeqCst) {
        return Err(io::Error::from(io::ErrorKind::Interrupted));
    }
    loop {
        wait(fd, PollFlags::POLLIN, timeout)?;
        match nix::unistd::read(fd, buf) {
            Ok(n) => return Ok(n),
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// `poll` then `write` in pieces of at most 4 KiB.
pub fn write_fd(fd: BorrowedFd<'_>, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
    let deadline = Instant::now() + timeout;
    while !buf.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        wait(fd, PollFlags::POLLOUT, left)?;
        let n = buf.len().min(4096);
        match nix::unistd::write(fd, &buf[..n]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(w) => buf = &buf[w..],
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Is the client on this socket still there? A client that reset the connection shows
/// `POLLERR`/`POLLHUP`; one that closed it shows as readable with nothing to read (end of
/// input). Pending input (a pipelined QUIT before the close) counts as still there. Only
/// meaningful on sockets: a pipe whose writer finished also reports a hang-up.
pub fn peer_alive(fd: BorrowedFd<'_>) -> bool {
    // Only flags nix knows are asked for: with POLLRDHUP in the answer nix's `revents()`
    // cannot represent it and reports nothing at all, so a closed client looked alive.
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => true,
        Ok(_) => {
            let ev = fds[0].revents().unwrap_or(PollFlags::POLLHUP);
            !ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL) && input_waiting(fd)
        }
        Err(_) => true,
    }
}

/// Is there a byte to read on this readable socket (rather than its end)?
fn input_waiting(fd: BorrowedFd<'_>) -> bool {
    use nix::sys::socket::{MsgFlags, recv};
    use std::os::fd::AsRawFd;
    let mut byte = [0u8; 1];
    match recv(
        fd.as_raw_fd(),
        &mut byte,
        MsgFlags::MSG_PEEK | MsgFlags::MSG_DONTWAIT,
    ) {
        Ok(n) => n > 0,
        Err(Errno::EAGAIN) | Err(Errno::EINTR) => true,
        Err(_) => false,
    }
}

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

/// A transport over in-memory chunks, for tests and in-process transcripts: each chunk
/// is delivered by one `read`, and what was written before each read is recorded.
#[derive(Debug, Default)]
pub struct Scripted {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// Everything written, in order.
    pub written: Vec<u8>,
    /// The number of `write_all` calls (one per flush).
    pub writes: usize,
    /// The client is gone by the time a message would be queued.
    pub gone: bool,
}

impl Scripted {
    /// A script of input chunks.
    pub fn new(chunks: Vec<Vec<u8>>) -> Scripted {
        Scripted {
            chunks: chunks.into(),
            ..Scripted::default()
        }
    }
}

impl Transport for Scripted {
    fn read(&mut self, buf: &mut [u8], _timeout: Duration) -> io::Result<usize> {
        let Some(mut chunk) = self.chunks.pop_front() else {
            return Ok(0);
        };
        if chunk.is_empty() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        let n = chunk.len().min(buf.len());
        buf[..n].copy_from_slice(&chunk[..n]);
        if n < chunk.len() {
            chunk.drain(..n);
            self.chunks.push_front(chunk);
        }
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8], _timeout: Duration) -> io::Result<()> {
        self.writes += 1;
        self.written.extend_from_slice(buf);
        Ok(())
    }

    fn client_alive(&mut self) -> bool {
        !self.gone
    }
}

#[cfg(test)]
mod tests;
