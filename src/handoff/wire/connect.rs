//! Connecting to a next hop by hand, so that a termination signal interrupts the wait
//! (std's `connect_timeout` restarts after a signal).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{
    AddressFamily, SockFlag, SockType, SockaddrLike, connect, getsockopt, socket, sockopt,
};

use super::{Broken, MIN_WAIT, Trouble};
use crate::io::TERMINATE;

/// A connect that a termination signal can interrupt, within `timeout`; the socket is
/// blocking once connected (reads and writes wait with socket timeouts).
pub(super) fn connect_fd(
    family: AddressFamily,
    addr: &dyn SockaddrLike,
    timeout: Duration,
    name: &str,
) -> Result<OwnedFd, Broken> {
    let fail = |e: Errno| Broken::new(Trouble::Unreachable, format!("{name}: connect: {}", e.desc()));
    let fd = socket(
        family,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(fail)?;
    let until = Until {
        deadline: Instant::now() + timeout,
        name,
    };
    loop {
        match connect(fd.as_raw_fd(), addr) {
            Ok(()) | Err(Errno::EISCONN) => break,
            // A Unix socket whose backlog is full: nothing is in progress, try again.
            Err(Errno::EAGAIN) => {
                until.check("the server's queue stayed full")?;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(Errno::EINPROGRESS | Errno::EINTR | Errno::EALREADY) => {
                until.writable(&fd, fail)?;
                match getsockopt(&fd, sockopt::SocketError) {
                    Ok(0) => break,
                    Ok(err) => return Err(fail(Errno::from_raw(err))),
                    Err(e) => return Err(fail(e)),
                }
            }
            Err(e) => return Err(fail(e)),
        }
    }
    let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(fail)?;
    fcntl(
        &fd,
        FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) & !OFlag::O_NONBLOCK),
    )
    .map_err(fail)?;
    Ok(fd)
}

/// The deadline of one connect.
struct Until<'a> {
    deadline: Instant,
    name: &'a str,
}

impl Until<'_> {
    /// Stops at a termination signal or past the deadline (then saying `what`).
    fn check(&self, what: &str) -> Result<(), Broken> {
        if TERMINATE.load(Ordering::SeqCst) {
            return Err(Broken::new(
                Trouble::Terminated,
                format!("{}: connect: interrupted by a termination signal", self.name),
            ));
        }
        if Instant::now() >= self.deadline {
            return Err(Broken::new(
                Trouble::Unreachable,
                format!("{}: connect: {what}", self.name),
            ));
        }
        Ok(())
    }

    /// Waits until a connect in progress has finished (the socket is writable).
    fn writable(&self, fd: &OwnedFd, fail: impl Fn(Errno) -> Broken) -> Result<(), Broken> {
        loop {
            self.check("timed out")?;
            let left = self.deadline.saturating_duration_since(Instant::now());
            let ms = i32::try_from(left.max(MIN_WAIT).as_millis()).unwrap_or(i32::MAX);
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
                Ok(0) | Err(Errno::EINTR) => continue,
                Ok(_) => return Ok(()),
                Err(e) => return Err(fail(e)),
            }
        }
    }
}
