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

mod reader;

pub use reader::{BUFFER, Line, LineReader, ReadError};

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

    /// Waits up to `timeout` for input without reading it (qpsmtpd's `select` on fd 0
    /// in its earlytalker plugin): `true` as soon as there is some (or the end of input),
    /// `false` after a quiet `timeout`. A transport that cannot tell answers `false` at
    /// once.
    fn readable(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(false)
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

    fn readable(&mut self, timeout: Duration) -> io::Result<bool> {
        readable_fd(io::stdin().as_fd(), timeout)
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

/// Waits up to `timeout` for `fd` to become readable (input or its end), reading nothing.
pub fn readable_fd(fd: BorrowedFd<'_>, timeout: Duration) -> io::Result<bool> {
    if TERMINATE.load(Ordering::SeqCst) {
        return Err(io::Error::from(io::ErrorKind::Interrupted));
    }
    match wait(fd, PollFlags::POLLIN, timeout) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(false),
        Err(e) => Err(e),
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

/// A transport over in-memory chunks, for tests and in-process transcripts: each chunk
/// is delivered by one `read`, and what was written before each read is recorded.
#[derive(Debug, Default)]
pub struct Scripted {
    chunks: std::collections::VecDeque<Vec<u8>>,
    /// How many of the first chunks the client sends without waiting for a reply (it
    /// talks before the greeting); the others it sends only after one, so
    /// [`Transport::readable`] finds nothing before them.
    early: usize,
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

    /// The first `n` chunks are sent before the server says anything.
    pub fn early(mut self, n: usize) -> Scripted {
        self.early = n;
        self
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
        } else {
            self.early = self.early.saturating_sub(1);
        }
        Ok(n)
    }

    fn readable(&mut self, _timeout: Duration) -> io::Result<bool> {
        Ok(self.chunks.is_empty() || self.early > 0)
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
