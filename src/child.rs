//! Every program we start (queue programs, external plugins, checkpassword) runs through
//! here, so each of them gets the same guarantees:
//!
//! - Every descriptor the child gets is chosen: fds 0-2 are `/dev/null` unless a pipe (or
//!   our own standard error, when it is not the client's connection) is asked for, further
//!   numbers (qmail-queue's fd 6, checkpassword's fd 3) only when named. The client's
//!   connection (our fds 0 and 1, and fd 2 under xinetd or systemd) is never passed on;
//!   every other descriptor we hold is close-on-exec. The signal
//!   dispositions a child starts with are the defaults: the binary catches (never ignores)
//!   the signals it handles, and exec resets a caught signal.
//! - The child leads its own process group. At the deadline, or when a termination signal
//!   arrives, the whole group gets SIGKILL and the child is reaped, so nothing it started
//!   keeps running or keeps our pipes open. A child is reaped on every path (`Drop` too),
//!   except one let go on purpose with [`Process::detach`] (a log command finishing
//!   its last lines after the session).
//! - Feeding, reading and waiting for the exit are one `poll` loop against one deadline:
//!   a child that writes a lot while we feed it, that stops reading, or that floods an
//!   output cannot block us, and every output keeps at most the bytes asked for (the rest
//!   is read and dropped). The exit is seen through a pidfd where the kernel has them,
//!   else by checking every few milliseconds.
//! - What a child did not read of a stream we fed it is noticed, also when it all fitted
//!   into the pipe: a queue program that exits 0 without reading the whole message has
//!   not taken it.

mod outcome;
mod pipe;

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use nix::poll::{PollFd, PollFlags};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use outcome::exit_of;
pub use outcome::{ChildError, Exit, Finished};
use pipe::{Drain, Feed, interruptible_poll};

/// How long the outputs of a child that has exited are still read: what it wrote just
/// before exiting, or what something it left behind writes.
const EXIT_GRACE: Duration = Duration::from_millis(200);

/// Without a pidfd, the longest wait before looking whether the child has exited.
const EXIT_CHECK: Duration = Duration::from_millis(16);

/// What the child gets on one of its descriptors.
pub enum Fd<'a> {
    /// A pipe we write this stream into, then close (the message, an envelope, the
    /// credentials). Whether the child read all of it is in [`Finished::input_complete`].
    Feed(Box<dyn Read + 'a>),
    /// A pipe we write into piece by piece with [`Process::send`] until
    /// [`Process::close`] (an external plugin's requests).
    Requests,
    /// A pipe we read, keeping at most this many bytes not yet taken; the rest is read
    /// and dropped, so the child never blocks on it.
    Read(usize),
    /// Our own standard error, where the child's complaints are worth seeing (a log
    /// command's); `/dev/null` when our fd 2 is the client's connection (xinetd,
    /// systemd: [`crate::log::stderr_is_safe`]).
    OurStderr,
}

/// A program and the descriptors it gets.
pub struct Spawn<'a> {
    cmd: Command,
    fds: Vec<(i32, Fd<'a>)>,
}

/// A running child.
pub struct Process<'a> {
    child: std::process::Child,
    /// Readable once the child has exited; `None` where the kernel has no pidfds.
    pidfd: Option<OwnedFd>,
    exit: Option<Exit>,
    reaped: bool,
    /// Let go with [`Process::detach`]: never killed or waited for.
    detached: bool,
    feeds: Vec<Feed<'a>>,
    drains: Vec<Drain>,
    /// What [`Process::output`] lends for a descriptor that is not an output.
    none: Vec<u8>,
}

impl<'a> Spawn<'a> {
    /// `cmd` with `/dev/null` on fds 0-2; arguments, environment and working directory as
    /// the caller set them.
    pub fn new(cmd: Command) -> Spawn<'a> {
        Spawn { cmd, fds: Vec::new() }
    }

    /// Gives the child `what` on descriptor `n` (a later call for the same `n` wins).
    pub fn fd(mut self, n: i32, what: Fd<'a>) -> Spawn<'a> {
        self.fds.retain(|(m, _)| *m != n);
        self.fds.push((n, what));
        self
    }

    /// Starts the program in a process group of its own.
    pub fn start(self) -> Result<Process<'a>, ChildError> {
        let Spawn { mut cmd, fds } = self;
        let spawn_err = ChildError::Spawn;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let (mut feeds, mut drains, mut mappings) = (Vec::new(), Vec::new(), Vec::new());
        for (n, what) in fds {
            let theirs = match what {
                Fd::Feed(source) => Feed::stream(n, source, &mut feeds),
                Fd::Requests => Feed::requests(n, &mut feeds),
                Fd::Read(keep) => Drain::open(n, keep, &mut drains),
                Fd::OurStderr if crate::log::stderr_is_safe() => io::stderr().as_fd().try_clone_to_owned(),
                Fd::OurStderr => continue,
            }
            .map_err(spawn_err)?;
            match n {
                0 => drop(cmd.stdin(theirs)),
                1 => drop(cmd.stdout(theirs)),
                2 => drop(cmd.stderr(theirs)),
                _ => mappings.push(FdMapping {
                    parent_fd: theirs,
                    child_fd: n,
                }),
            }
        }
        if !mappings.is_empty() {
            cmd.fd_mappings(mappings)
                .map_err(|e| ChildError::Spawn(io::Error::other(e.to_string())))?;
        }
        cmd.process_group(0);
        let spawned = cmd.spawn();
        // Our copies of the child's ends go with the command, so that we see end of file
        // when the child (and whatever it started) is done with them.
        drop(cmd);
        let child = spawned.map_err(ChildError::Spawn)?;
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_child(&child),
            rustix::process::PidfdFlags::empty(),
        )
        .ok();
        Ok(Process {
            child,
            pidfd,
            exit: None,
            reaped: false,
            detached: false,
            feeds,
            drains,
            none: Vec::new(),
        })
    }

    /// Starts the program and runs it to its end or the deadline ([`Process::finish`]).
    pub fn run(self, deadline: Instant) -> Result<Finished, ChildError> {
        self.start()?.finish(deadline)
    }
}

impl<'a> Process<'a> {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Queues bytes for a [`Fd::Requests`] pipe; they are written while we wait.
    pub fn send(&mut self, n: i32, bytes: &[u8]) {
        if let Some(f) = self.feed(n) {
            f.queue(bytes);
        }
    }

    /// Closes a pipe we write once what is queued is written (end of input).
    pub fn close(&mut self, n: i32) {
        if let Some(f) = self.feed(n) {
            f.close();
        }
    }

    /// Is a pipe we write still open (not closed, and the child has not closed its end)?
    pub fn writable(&self, n: i32) -> bool {
        self.feeds.iter().any(|f| f.n == n && f.is_open())
    }

    /// Has everything queued for this pipe been written?
    pub fn sent(&self, n: i32) -> bool {
        self.feeds.iter().all(|f| f.n != n || !f.has_pending())
    }

    /// The bytes read from the child's descriptor `n` and not yet taken (none for a
    /// descriptor that is not an [`Fd::Read`]).
    pub fn output(&mut self, n: i32) -> &mut Vec<u8> {
        self.none.clear();
        match self.drains.iter_mut().find(|d| d.n == n) {
            Some(d) => &mut d.buf,
            None => &mut self.none,
        }
    }

    /// Has output `n` reached its end?
    pub fn output_ended(&self, n: i32) -> bool {
        self.drains.iter().all(|d| d.n != n || d.ended())
    }

    /// All bytes output `n` ever delivered (kept or dropped).
    pub fn output_total(&self, n: i32) -> u64 {
        self.drains.iter().find(|d| d.n == n).map_or(0, |d| d.total)
    }

    /// The exit, once seen.
    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    /// Waits once, until the deadline at most: writes what the pipes take, reads what
    /// the outputs hold, notices the exit. `Err(TimedOut)` once the deadline has passed.
    pub fn step(&mut self, deadline: Instant) -> Result<(), ChildError> {
        if Instant::now() >= deadline {
            return Err(ChildError::TimedOut);
        }
        self.round(deadline)
    }

    /// Reads what the outputs already hold, without waiting, at most `budget` bytes from
    /// each: a child that writes without pause cannot keep us here.
    pub fn read_waiting(&mut self, budget: usize) {
        for d in &mut self.drains {
            d.read_waiting(budget);
        }
    }

    /// Feeds and reads until the child has exited and its outputs ended (or a short grace
    /// after the exit has passed), or until the deadline; then the group is killed.
    pub fn finish(mut self, deadline: Instant) -> Result<Finished, ChildError> {
        match self.finish_by(deadline) {
            Ok(exit) => Ok(self.finished(exit)),
            Err(e) => {
                self.kill();
                Err(e)
            }
        }
    }

    /// Waits for the exit until the deadline, reading the outputs meanwhile; past it, or
    /// on a termination signal, the group is killed.
    pub fn wait(&mut self, deadline: Instant) -> Result<Exit, ChildError> {
        loop {
            if let Some(exit) = self.exit {
                return Ok(exit);
            }
            if let Err(e) = self.step(deadline) {
                self.kill();
                return Err(e);
            }
        }
    }

    /// Kills the child and everything in its process group, then reaps it. The group is
    /// signalled before the reap, while its id cannot have been reused.
    pub fn kill(&mut self) {
        for f in &mut self.feeds {
            f.abandon();
        }
        if self.reaped || self.detached {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        if let Ok(status) = self.child.wait() {
            self.exit.get_or_insert(exit_of(status));
        }
        self.reaped = true;
    }

    /// Lets the child run on by itself: our pipes to it are closed (what was not written
    /// stays unwritten) and it is neither killed nor waited for; once we exit, init reaps
    /// it. Only for a program that must be allowed to finish its work after the session,
    /// as a log command writing its last lines; everything else is killed at its deadline.
    pub fn detach(mut self) {
        for f in &mut self.feeds {
            f.abandon();
        }
        self.detached = true;
    }

    fn finish_by(&mut self, deadline: Instant) -> Result<Exit, ChildError> {
        let mut grace = None;
        loop {
            let Some(exit) = self.exit else {
                self.step(deadline)?;
                continue;
            };
            // What it did not read stays unread; its outputs may still come.
            for f in &mut self.feeds {
                f.abandon();
            }
            let until = *grace.get_or_insert_with(|| Instant::now() + EXIT_GRACE);
            let until = until.min(deadline);
            if self.drains.iter().all(Drain::ended) || Instant::now() >= until {
                return Ok(exit);
            }
            self.round(until)?;
        }
    }

    fn finished(mut self, exit: Exit) -> Finished {
        let input_complete = self.feeds.iter().all(Feed::complete);
        let outputs = self
            .drains
            .iter_mut()
            .map(|d| (d.n, std::mem::take(&mut d.buf)))
            .collect();
        Finished {
            pid: self.child.id(),
            exit,
            input_complete,
            outputs,
        }
    }

    fn feed(&mut self, n: i32) -> Option<&mut Feed<'a>> {
        self.feeds.iter_mut().find(|f| f.n == n)
    }

    /// One wait of at most `until`, then the writes, reads and exit check it allows.
    fn round(&mut self, until: Instant) -> Result<(), ChildError> {
        for f in &mut self.feeds {
            f.refill().map_err(ChildError::Io)?;
        }
        let ready = self.wait_ready(until)?;
        let (feeds, drains) = ready.split_at(self.feeds.len());
        for (f, ready) in self.feeds.iter_mut().zip(feeds) {
            if *ready {
                f.write();
            }
        }
        for (d, ready) in self.drains.iter_mut().zip(drains) {
            if *ready {
                d.read();
            }
        }
        self.check_exit()
    }

    /// `poll` on the pipes with work and the pidfd; which pipes are ready, feeds first.
    fn wait_ready(&self, until: Instant) -> Result<Vec<bool>, ChildError> {
        let mut fds = Vec::with_capacity(self.feeds.len() + self.drains.len() + 1);
        let mut slots = Vec::with_capacity(fds.capacity());
        for f in &self.feeds {
            slots.push(f.wants_write().map(|fd| push(&mut fds, fd, PollFlags::POLLOUT)));
        }
        for d in &self.drains {
            slots.push(d.fd().map(|fd| push(&mut fds, fd, PollFlags::POLLIN)));
        }
        let watch_exit = self.exit.is_none() && self.pidfd.is_some();
        if let Some(pidfd) = self.pidfd.as_ref().filter(|_| watch_exit) {
            push(&mut fds, pidfd.as_fd(), PollFlags::POLLIN);
        }
        let mut wait = until.saturating_duration_since(Instant::now());
        if self.exit.is_none() && self.pidfd.is_none() {
            wait = wait.min(EXIT_CHECK);
        }
        interruptible_poll(&mut fds, wait)?;
        let fired = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        Ok(slots.iter().map(|s| s.is_some_and(fired)).collect())
    }

    fn check_exit(&mut self) -> Result<(), ChildError> {
        if self.exit.is_none()
            && let Some(status) = self.child.try_wait().map_err(ChildError::Io)?
        {
            self.exit = Some(exit_of(status));
            self.reaped = true;
        }
        Ok(())
    }
}

impl Drop for Process<'_> {
    fn drop(&mut self) {
        self.kill();
    }
}

fn push<'f>(fds: &mut Vec<PollFd<'f>>, fd: std::os::fd::BorrowedFd<'f>, flags: PollFlags) -> usize {
    fds.push(PollFd::new(fd, flags));
    fds.len() - 1
}

#[cfg(test)]
mod tests;
