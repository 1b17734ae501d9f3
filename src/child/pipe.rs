//! The two kinds of pipe between us and a child: one we write ([`Feed`]) and one we read
//! ([`Drain`]); and the wait on them. Our ends are non-blocking, so a write or read after
//! `poll` never waits.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::ChildError;
use crate::io::TERMINATE;

/// Bytes taken from a stream per refill.
const CHUNK: usize = 64 * 1024;

/// A pipe we write into.
pub(super) struct Feed<'a> {
    /// The child's descriptor number.
    pub n: i32,
    fd: Option<OwnedFd>,
    /// A stream's copy of the pipe's reading end, to see what the child left in it: a
    /// message small enough for the pipe is written in full whether it reads it or not.
    unread: Option<OwnedFd>,
    source: Option<Box<dyn Read + 'a>>,
    buf: Vec<u8>,
    pos: usize,
    /// Close once everything queued is written.
    closing: bool,
    /// The child closed its end, or exited, before taking everything.
    broken: bool,
}

/// A pipe we read from.
pub(super) struct Drain {
    /// The child's descriptor number.
    pub n: i32,
    fd: Option<OwnedFd>,
    /// Bytes read and not yet taken, at most `keep`.
    pub buf: Vec<u8>,
    keep: usize,
    /// Every byte read, kept or not.
    pub total: u64,
}

impl<'a> Feed<'a> {
    /// A pipe that carries `source` and then ends; the child's end is returned.
    pub fn stream(n: i32, source: Box<dyn Read + 'a>, feeds: &mut Vec<Feed<'a>>) -> io::Result<OwnedFd> {
        let (theirs, ours) = io::pipe()?;
        let unread = theirs.try_clone()?;
        feeds.push(Feed::new(n, ours.into(), Some(unread.into()), Some(source))?);
        Ok(theirs.into())
    }

    /// A pipe written piece by piece; the child's end is returned.
    pub fn requests(n: i32, feeds: &mut Vec<Feed<'a>>) -> io::Result<OwnedFd> {
        let (theirs, ours) = io::pipe()?;
        feeds.push(Feed::new(n, ours.into(), None, None)?);
        Ok(theirs.into())
    }

    fn new(
        n: i32,
        fd: OwnedFd,
        unread: Option<OwnedFd>,
        source: Option<Box<dyn Read + 'a>>,
    ) -> io::Result<Feed<'a>> {
        non_blocking(&fd)?;
        Ok(Feed {
            n,
            fd: Some(fd),
            unread,
            closing: source.is_some(),
            source,
            buf: Vec::new(),
            pos: 0,
            broken: false,
        })
    }

    /// Adds bytes to write.
    pub fn queue(&mut self, bytes: &[u8]) {
        if self.fd.is_none() {
            return;
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        self.buf.extend_from_slice(bytes);
    }

    /// Ends the input once what is queued is written.
    pub fn close(&mut self) {
        self.closing = true;
        self.close_if_done();
    }

    pub fn is_open(&self) -> bool {
        self.fd.is_some()
    }

    pub fn has_pending(&self) -> bool {
        self.fd.is_some() && self.pos < self.buf.len()
    }

    /// Our end, when there is something to write.
    pub fn wants_write(&self) -> Option<BorrowedFd<'_>> {
        self.fd
            .as_ref()
            .filter(|_| self.has_pending())
            .map(|fd| fd.as_fd())
    }

    /// Takes the next piece of a stream once the last one is written; closes the pipe at
    /// the stream's end.
    pub fn refill(&mut self) -> io::Result<()> {
        if self.has_pending() || self.fd.is_none() {
            return Ok(());
        }
        let Some(source) = self.source.as_mut() else {
            self.close_if_done();
            return Ok(());
        };
        self.buf.resize(CHUNK, 0);
        self.pos = 0;
        let n = loop {
            match source.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        self.buf.truncate(n);
        if n == 0 {
            self.source = None;
            self.close_if_done();
        }
        Ok(())
    }

    /// Writes what the pipe takes.
    pub fn write(&mut self) {
        let Some(fd) = &self.fd else { return };
        match nix::unistd::write(fd, &self.buf[self.pos..]) {
            Ok(n) => self.pos += n,
            Err(Errno::EINTR | Errno::EAGAIN) => {}
            // EPIPE: the child closed its end before taking everything.
            Err(_) => self.abandon(),
        }
        self.close_if_done();
    }

    /// The child is gone (or is being killed): what it has not taken stays untaken.
    pub fn abandon(&mut self) {
        if self.fd.take().is_some() {
            self.broken = true;
        }
        self.buf.clear();
        self.pos = 0;
    }

    /// Did the child take everything (nothing refused, nothing left in the pipe)?
    pub fn complete(&self) -> bool {
        !self.broken && !self.unread.as_ref().is_some_and(|u| readable(u.as_fd()))
    }

    fn close_if_done(&mut self) {
        if self.closing && self.source.is_none() && self.pos >= self.buf.len() {
            self.fd = None;
        }
    }
}

impl Drain {
    /// A pipe we read, keeping at most `keep` bytes not yet taken; the child's end is
    /// returned.
    pub fn open(n: i32, keep: usize, drains: &mut Vec<Drain>) -> io::Result<OwnedFd> {
        let (ours, theirs) = io::pipe()?;
        let ours = OwnedFd::from(ours);
        non_blocking(&ours)?;
        drains.push(Drain {
            n,
            fd: Some(ours),
            buf: Vec::new(),
            keep,
            total: 0,
        });
        Ok(theirs.into())
    }

    pub fn fd(&self) -> Option<BorrowedFd<'_>> {
        self.fd.as_ref().map(|fd| fd.as_fd())
    }

    /// Has the child's end closed (or the pipe failed)?
    pub fn ended(&self) -> bool {
        self.fd.is_none()
    }

    /// Reads once; the number of bytes read.
    pub fn read(&mut self) -> usize {
        let Some(fd) = &self.fd else { return 0 };
        let mut chunk = [0u8; 16 * 1024];
        match nix::unistd::read(fd, &mut chunk) {
            Ok(0) => {
                self.fd = None;
                0
            }
            Ok(n) => {
                self.total += n as u64;
                let room = self.keep.saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&chunk[..n.min(room)]);
                n
            }
            Err(Errno::EINTR | Errno::EAGAIN) => 0,
            Err(_) => {
                self.fd = None;
                0
            }
        }
    }

    /// Reads what is there without waiting, at most `budget` bytes.
    pub fn read_waiting(&mut self, budget: usize) {
        let mut left = budget;
        while left > 0 && self.fd.is_some() {
            match self.read() {
                0 => break,
                n => left = left.saturating_sub(n),
            }
        }
    }
}

fn non_blocking(fd: &OwnedFd) -> io::Result<()> {
    let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Is something waiting to be read (without waiting for it)?
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
        && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// The longest single wait: a termination signal that lands between the look at
/// [`TERMINATE`] and the start of `poll` interrupts nothing, and is noticed at the latest
/// when this has passed. (Closing that gap with `ppoll` and a signal mask would import two
/// more libc symbols, which every connection pays for when the binary is loaded.)
const LONGEST_WAIT: Duration = Duration::from_millis(100);

/// `poll` for at most `wait` (and [`LONGEST_WAIT`]), ended early by a termination signal.
pub(super) fn interruptible_poll(fds: &mut [PollFd<'_>], wait: Duration) -> Result<(), ChildError> {
    if TERMINATE.load(Ordering::SeqCst) {
        return Err(ChildError::Interrupted);
    }
    let ms = wait.min(LONGEST_WAIT).as_millis().max(1);
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    match poll(fds, timeout) {
        Ok(_) => Ok(()),
        Err(Errno::EINTR) if TERMINATE.load(Ordering::SeqCst) => Err(ChildError::Interrupted),
        Err(Errno::EINTR) => Ok(()),
        Err(e) => Err(ChildError::Io(e.into())),
    }
}
