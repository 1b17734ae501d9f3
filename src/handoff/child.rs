//! Runs a queue program (qmail-queue, sendmail, exim) with a deadline.
//!
//! - Every descriptor the child gets is chosen here: fd 0 is the message pipe (or
//!   `/dev/null`), fd 1 the envelope pipe or a pipe we read, fd 2 a pipe we read. The
//!   client's connection (our fds 0 and 1, and fd 2 under xinetd or systemd) is never
//!   passed on; every other descriptor the process holds is close-on-exec.
//! - The child leads its own process group; when the deadline passes the whole group is
//!   killed with SIGKILL and the child reaped, so nothing it started keeps running or
//!   keeps our pipes open.
//! - Writing and reading are multiplexed with `poll`, so a child that writes a lot to
//!   stderr while we feed it the message cannot deadlock us, and a child that stops
//!   reading cannot hold us past the deadline. A termination signal ends the wait too
//!   (the group is killed).

use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::io::TERMINATE;
use std::sync::atomic::Ordering;

/// Output kept per stream; the rest is read and dropped.
const OUTPUT_LIMIT: usize = 64 * 1024;

/// One program run.
pub struct Program<'a> {
    /// The command (program and arguments; environment as the caller set it).
    pub cmd: Command,
    /// Written to the child's fd 0, then fd 0 is closed. `None`: `/dev/null`.
    pub stdin: Option<Box<dyn Read + 'a>>,
    /// Written to the child's fd 1 instead of reading its output (qmail-queue's envelope).
    pub fd1_input: Option<Vec<u8>>,
    /// A further descriptor number the child may write to (qmail-queue's custom error
    /// message on fd 6); what it writes is returned in [`Finished::extra`].
    pub extra_fd: Option<i32>,
    /// How long the whole run may take.
    pub timeout: Duration,
}

/// How the program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Finished {
    /// The child's process id.
    pub pid: u32,
    /// Exit status.
    pub exit: Exit,
    /// Did the child read everything we had for it (fd 0 and the fd 1 input)?
    pub input_complete: bool,
    /// Its fd 1 output (empty when fd 1 was an input).
    pub stdout: Vec<u8>,
    /// Its fd 2 output.
    pub stderr: Vec<u8>,
    /// What it wrote to `extra_fd`.
    pub extra: Vec<u8>,
}

/// Why a run has no exit status.
#[derive(Debug)]
pub enum RunError {
    /// The program could not be started.
    Spawn(io::Error),
    /// The deadline passed; the process group was killed and reaped.
    TimedOut,
    /// A termination signal arrived; the process group was killed and reaped (the client
    /// is told 4xx: a program killed before it exited 0 has not taken the message).
    Interrupted,
    /// Reading the message or talking to the pipes failed.
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Spawn(e) => write!(f, "cannot start: {e}"),
            RunError::TimedOut => write!(f, "timed out; killed"),
            RunError::Interrupted => write!(f, "interrupted by a termination signal; killed"),
            RunError::Io(e) => write!(f, "{e}"),
        }
    }
}

/// A pipe we feed.
struct Feed<'a> {
    fd: Option<OwnedFd>,
    /// Our copy of the pipe's reading end, to see what the program left in it.
    unread: OwnedFd,
    source: Box<dyn Read + 'a>,
    buf: Vec<u8>,
    pos: usize,
    broken: bool,
}

/// A pipe we drain.
struct Drain {
    fd: Option<OwnedFd>,
    out: Vec<u8>,
}

/// Runs the program to completion or until the deadline.
pub fn run(program: Program<'_>) -> Result<Finished, RunError> {
    let Program {
        mut cmd,
        stdin,
        fd1_input,
        extra_fd,
        timeout,
    } = program;
    let deadline = Instant::now() + timeout;
    // The pipes we feed are made here, and a copy of each one's reading end is kept: what
    // is still in a pipe when the program has exited, it never read (a message small
    // enough for the pipe is written in full whether the program reads it or not).
    let mut stdin_pipe = None;
    if stdin.is_some() {
        let (reader, writer) = io::pipe().map_err(RunError::Spawn)?;
        let unread = reader.try_clone().map_err(RunError::Spawn)?;
        cmd.stdin(Stdio::from(reader));
        stdin_pipe = Some((OwnedFd::from(writer), OwnedFd::from(unread)));
    } else {
        cmd.stdin(Stdio::null());
    }
    let mut fd1_pipe = None;
    if fd1_input.is_some() {
        let (reader, writer) = io::pipe().map_err(RunError::Spawn)?;
        let unread = reader.try_clone().map_err(RunError::Spawn)?;
        cmd.stdout(Stdio::from(reader));
        fd1_pipe = Some((OwnedFd::from(writer), OwnedFd::from(unread)));
    } else {
        cmd.stdout(Stdio::piped());
    }
    cmd.stderr(Stdio::piped());
    let mut extra_reader = None;
    if let Some(child_fd) = extra_fd {
        let (reader, writer) = io::pipe().map_err(RunError::Spawn)?;
        cmd.fd_mappings(vec![FdMapping {
            parent_fd: OwnedFd::from(writer),
            child_fd,
        }])
        .map_err(|e| RunError::Spawn(io::Error::other(e.to_string())))?;
        extra_reader = Some(OwnedFd::from(reader));
    }
    cmd.process_group(0);
    let spawned = cmd.spawn();
    // Dropping the command closes our copies of the child's ends of the pipes, so we see
    // end-of-file when the child (and anything it started) is done with them.
    drop(cmd);
    let mut child = spawned.map_err(RunError::Spawn)?;
    let mut feeds = Vec::new();
    if let (Some(source), Some((fd, unread))) = (stdin, stdin_pipe) {
        feeds.push(Feed::new(fd, unread, source));
    }
    if let (Some(data), Some((fd, unread))) = (fd1_input, fd1_pipe) {
        feeds.push(Feed::new(fd, unread, Box::new(io::Cursor::new(data))));
    }
    let mut drains: Vec<Drain> = Vec::new();
    let stdout = child.stdout.take().map(OwnedFd::from);
    let stderr = child.stderr.take().map(OwnedFd::from);
    for fd in [stdout, stderr, extra_reader] {
        drains.push(Drain { fd, out: Vec::new() });
    }
    match pump(&mut child, &mut feeds, &mut drains, deadline) {
        Ok(status) => {
            let input_complete = feeds.iter().all(|f| !f.broken && !f.left_unread());
            let mut outs = drains.into_iter().map(|d| d.out);
            Ok(Finished {
                pid: child.id(),
                exit: status,
                input_complete,
                stdout: outs.next().unwrap_or_default(),
                stderr: outs.next().unwrap_or_default(),
                extra: outs.next().unwrap_or_default(),
            })
        }
        Err(e) => {
            kill(&mut child);
            Err(e)
        }
    }
}

impl<'a> Feed<'a> {
    fn new(fd: OwnedFd, unread: OwnedFd, source: Box<dyn Read + 'a>) -> Feed<'a> {
        Feed {
            fd: Some(fd),
            unread,
            source,
            buf: Vec::new(),
            pos: 0,
            broken: false,
        }
    }

    /// Makes sure there is something to write; closes the pipe at the end of the source.
    fn refill(&mut self) -> Result<(), RunError> {
        if self.fd.is_none() || self.pos < self.buf.len() {
            return Ok(());
        }
        self.buf.resize(64 * 1024, 0);
        self.pos = 0;
        let n = loop {
            match self.source.read(&mut self.buf) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RunError::Io(e)),
            }
        };
        self.buf.truncate(n);
        if n == 0 {
            self.fd = None;
        }
        Ok(())
    }

    /// After the program exited: is anything we wrote still in the pipe?
    fn left_unread(&self) -> bool {
        let mut fds = [PollFd::new(self.unread.as_fd(), PollFlags::POLLIN)];
        matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
            && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
    }

    /// Writes one piece; a ready pipe takes up to 4 KiB without blocking.
    fn write(&mut self) {
        let Some(fd) = &self.fd else { return };
        let end = self.buf.len().min(self.pos + 4096);
        match nix::unistd::write(fd, &self.buf[self.pos..end]) {
            Ok(n) => self.pos += n,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(_) => {
                // EPIPE: the child closed its end before reading everything.
                self.broken = true;
                self.fd = None;
            }
        }
    }
}

impl Drain {
    fn read(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 8192];
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => self.fd = None,
            Ok(n) => {
                let room = OUTPUT_LIMIT.saturating_sub(self.out.len());
                self.out.extend_from_slice(&buf[..n.min(room)]);
            }
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(_) => self.fd = None,
        }
    }
}

/// Feeds and drains until the child has exited (and its output is read) or the deadline.
fn pump(
    child: &mut Child,
    feeds: &mut [Feed<'_>],
    drains: &mut [Drain],
    deadline: Instant,
) -> Result<Exit, RunError> {
    let mut exited: Option<Exit> = None;
    let mut grace_until: Option<Instant> = None;
    loop {
        for f in feeds.iter_mut() {
            f.refill()?;
        }
        if exited.is_none() {
            exited = child.try_wait().map_err(RunError::Io)?.map(exit_of);
        }
        if let Some(status) = exited {
            // The child is gone: what it did not read stays unread. Its output may still
            // be in the pipes (or held open by something it left behind): take what comes
            // within a short grace period.
            for f in feeds.iter_mut().filter(|f| f.fd.is_some()) {
                f.broken = true;
                f.fd = None;
            }
            let grace = *grace_until.get_or_insert_with(|| Instant::now() + Duration::from_millis(200));
            if drains.iter().all(|d| d.fd.is_none()) || Instant::now() >= grace {
                return Ok(status);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(RunError::TimedOut);
        }
        if TERMINATE.load(Ordering::SeqCst) {
            return Err(RunError::Interrupted);
        }
        let wait = deadline
            .saturating_duration_since(now)
            .min(Duration::from_millis(20));
        let mut fds = Vec::new();
        for f in feeds.iter().filter_map(|f| f.fd.as_ref()) {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLOUT));
        }
        for d in drains.iter().filter_map(|d| d.fd.as_ref()) {
            fds.push(PollFd::new(d.as_fd(), PollFlags::POLLIN));
        }
        let ms = PollTimeout::try_from(wait.as_millis().max(1) as i32).unwrap_or(PollTimeout::MAX);
        let ready: Vec<bool> = match poll(&mut fds, ms) {
            Ok(_) => fds
                .iter()
                .map(|p| p.revents().is_some_and(|r| !r.is_empty()))
                .collect(),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(RunError::Io(e.into())),
        };
        drop(fds);
        let mut i = 0;
        for f in feeds.iter_mut().filter(|f| f.fd.is_some()) {
            if ready[i] {
                f.write();
            }
            i += 1;
        }
        for d in drains.iter_mut().filter(|d| d.fd.is_some()) {
            if ready[i] {
                d.read();
            }
            i += 1;
        }
    }
}

fn exit_of(status: std::process::ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Signal(0),
    }
}

/// Kills the child's process group and reaps the child.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script);
        c
    }

    #[test]
    fn feeds_both_inputs_and_reads_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = format!(
            "cat > {0}.msg; cat <&1 > {0}.env; echo warn >&2; printf Zlater >&6; exit 71",
            out.display()
        );
        let message = vec![b'x'; 300_000];
        let done = run(Program {
            cmd: sh(&script),
            stdin: Some(Box::new(&message[..])),
            fd1_input: Some(b"Fa@b\0Tc@d\0\0".to_vec()),
            extra_fd: Some(6),
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        assert_eq!(done.exit, Exit::Code(71));
        assert!(done.input_complete);
        assert_eq!(done.stderr, b"warn\n");
        assert_eq!(done.extra, b"Zlater");
        assert_eq!(std::fs::read(out.with_extension("msg")).unwrap().len(), 300_000);
        assert_eq!(
            std::fs::read(out.with_extension("env")).unwrap(),
            b"Fa@b\0Tc@d\0\0"
        );
    }

    #[test]
    fn a_child_that_hangs_is_killed_with_its_group() {
        let started = Instant::now();
        let r = run(Program {
            cmd: sh("sleep 30 & sleep 30"),
            stdin: None,
            fd1_input: None,
            extra_fd: None,
            timeout: Duration::from_millis(300),
        });
        assert!(matches!(r, Err(RunError::TimedOut)));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_child_that_reads_nothing_is_noticed() {
        let message = vec![b'x'; 1_000_000];
        let done = run(Program {
            cmd: sh("exit 0"),
            stdin: Some(Box::new(&message[..])),
            fd1_input: None,
            extra_fd: None,
            timeout: Duration::from_secs(10),
        })
        .unwrap();
        assert_eq!(done.exit, Exit::Code(0));
        assert!(!done.input_complete);
    }

    #[test]
    fn a_small_input_left_in_the_pipe_is_noticed() {
        let run_small = |script: &str| {
            run(Program {
                cmd: sh(script),
                stdin: Some(Box::new(&b"a small message\n"[..])),
                fd1_input: Some(b"Fa@b\0Tc@d\0\0".to_vec()),
                extra_fd: None,
                timeout: Duration::from_secs(10),
            })
            .unwrap()
        };
        // Exits 0 at once: everything fits in the pipes, so no write failed.
        let done = run_small("sleep 0.2; exit 0");
        assert_eq!(done.exit, Exit::Code(0));
        assert!(!done.input_complete);
        // Reads the message but not the envelope.
        assert!(!run_small("cat > /dev/null").input_complete);
        assert!(run_small("cat > /dev/null; cat <&1 > /dev/null").input_complete);
    }

    #[test]
    fn a_missing_program_is_a_spawn_error() {
        let r = run(Program {
            cmd: Command::new("/nonexistent/qmail-queue"),
            stdin: None,
            fd1_input: None,
            extra_fd: None,
            timeout: Duration::from_secs(1),
        });
        assert!(matches!(r, Err(RunError::Spawn(_))));
    }
}
