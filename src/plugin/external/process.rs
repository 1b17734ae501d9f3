//! A plugin program as a child process: spawned with pipes on fds 0, 1 and 2 (never the
//! client's connection, never a stderr that may be the client's socket), in a process
//! group of its own so that a timeout kills whatever it started, and always reaped.
//!
//! One `poll` loop writes the request, reads the answer and drains stderr at the same
//! time, against one deadline, so a program that answers before reading its input, that
//! stops reading, that floods either output or that never answers cannot block us.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::io::TERMINATE;

/// Most bytes of answer accepted per call; more is a failure (the program is killed).
pub const MAX_ANSWER: usize = 64 * 1024;

/// Most bytes of stderr logged per call; the rest is read and dropped.
pub const MAX_STDERR: usize = 16 * 1024;

/// Longest stderr line logged (longer ones are cut).
const MAX_STDERR_LINE: usize = 1000;

/// Why a call produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The budget ran out.
    Timeout,
    /// More than [`MAX_ANSWER`] bytes of output.
    TooMuchOutput,
    /// Output ended before an answer was complete.
    Closed,
    /// A co-process closed its stdin before taking the whole request.
    StdinClosed,
    /// A termination signal arrived while waiting.
    Interrupted,
    /// The program could not be started or an I/O call failed.
    Io(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Timeout => write!(f, "did not finish within its time budget"),
            Failure::TooMuchOutput => write!(f, "wrote more than {MAX_ANSWER} bytes of answer"),
            Failure::Closed => write!(f, "closed its output without a complete answer"),
            Failure::StdinClosed => write!(f, "closed its stdin; it cannot take requests"),
            Failure::Interrupted => write!(f, "interrupted by a termination signal"),
            Failure::Io(e) => write!(f, "{e}"),
        }
    }
}

/// When the answer is complete.
#[derive(Clone, Copy)]
pub enum Until<'a> {
    /// At end of output (a program run once).
    Eof,
    /// After the first line for which this is true (a co-process's verdict line).
    Line(&'a dyn Fn(&str) -> bool),
}

/// A running plugin program.
pub struct Proc {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    /// Output read but not yet part of an answer (a co-process's next answer).
    out: Vec<u8>,
    /// A stderr line still missing its end.
    err: Vec<u8>,
    reaped: bool,
}

/// Stderr bookkeeping for one call.
struct ErrSink<'a> {
    emit: &'a mut dyn FnMut(&str),
    logged: usize,
    capped: bool,
}

impl Proc {
    /// Starts `cmd` with pipes for stdin (or `/dev/null`), stdout and stderr.
    pub fn spawn(mut cmd: Command, stdin: bool) -> io::Result<Proc> {
        cmd.stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let proc = Proc {
            child,
            stdin,
            stdout,
            stderr,
            out: Vec::new(),
            err: Vec::new(),
            reaped: false,
        };
        for fd in [
            proc.stdin.as_ref().map(|f| f.as_fd()),
            proc.stdout.as_ref().map(|f| f.as_fd()),
            proc.stderr.as_ref().map(|f| f.as_fd()),
        ]
        .into_iter()
        .flatten()
        {
            let flags = OFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFL)?);
            fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        }
        Ok(proc)
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Is the program's stdin still open for requests?
    pub fn can_write(&self) -> bool {
        self.stdin.is_some()
    }

    /// Writes `request` (then closes stdin if `close`), reads output until `until` is
    /// met, and hands each stderr line to `on_stderr`. The program closing its stdin
    /// early is not an error: its answer still counts.
    pub fn exchange(
        &mut self,
        request: &[u8],
        close: bool,
        until: Until<'_>,
        deadline: Instant,
        on_stderr: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, Failure> {
        let mut sink = ErrSink {
            emit: on_stderr,
            logged: 0,
            capped: false,
        };
        let mut pending = request;
        let mut lines = Vec::new();
        let mut answer_bytes = 0;
        if let Some(done) = self.take_lines(&mut lines, &mut answer_bytes, until)? {
            return Ok(done);
        }
        loop {
            if pending.is_empty() && close {
                self.stdin = None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Timeout);
            }
            let ready = self.wait_ready(!pending.is_empty(), left)?;
            if ready.stdin {
                self.write_some(&mut pending);
                // A program run once may answer without reading; a co-process that
                // cannot take its request will never answer it.
                if self.stdin.is_none() && !close {
                    return Err(Failure::StdinClosed);
                }
            }
            if ready.stderr {
                self.read_stderr(&mut sink);
            }
            if ready.stdout {
                let eof = self.read_stdout()?;
                if let Some(done) = self.take_lines(&mut lines, &mut answer_bytes, until)? {
                    return Ok(done);
                }
                if eof {
                    return self.at_eof(lines, until, &mut sink);
                }
            }
        }
    }

    /// Moves complete lines from the output buffer into `lines`; `Some` when the answer
    /// is complete.
    fn take_lines(
        &mut self,
        lines: &mut Vec<String>,
        bytes: &mut usize,
        until: Until<'_>,
    ) -> Result<Option<Vec<String>>, Failure> {
        while let Some(pos) = self.out.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = self.out.drain(..=pos).collect();
            *bytes += raw.len();
            let line = line_text(&raw[..raw.len() - 1]);
            let last = matches!(until, Until::Line(is_last) if is_last(&line));
            lines.push(line);
            if last {
                return Ok(Some(std::mem::take(lines)));
            }
        }
        if *bytes + self.out.len() > MAX_ANSWER {
            return Err(Failure::TooMuchOutput);
        }
        Ok(None)
    }

    /// Output ended: for a program run once that is the end of the answer (a last line
    /// without its newline counts); for a co-process it means the answer never came.
    fn at_eof(
        &mut self,
        mut lines: Vec<String>,
        until: Until<'_>,
        sink: &mut ErrSink<'_>,
    ) -> Result<Vec<String>, Failure> {
        self.stdout = None;
        if !self.out.is_empty() {
            lines.push(line_text(&std::mem::take(&mut self.out)));
        }
        self.drain_stderr(sink);
        match until {
            Until::Eof => Ok(lines),
            Until::Line(_) => Err(Failure::Closed),
        }
    }

    fn wait_ready(&self, want_write: bool, left: Duration) -> Result<Ready, Failure> {
        let stdin = self.stdin.as_ref().filter(|_| want_write).map(|f| f.as_fd());
        let stdout = self.stdout.as_ref().map(|f| f.as_fd());
        let stderr = self.stderr.as_ref().map(|f| f.as_fd());
        let mut fds = Vec::with_capacity(3);
        let mut slots = [None; 3];
        for (slot, (fd, flags)) in [
            (stdin, PollFlags::POLLOUT),
            (stdout, PollFlags::POLLIN),
            (stderr, PollFlags::POLLIN),
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(fd) = fd {
                slots[slot] = Some(fds.len());
                fds.push(PollFd::new(fd, flags));
            }
        }
        if fds.is_empty() {
            return Err(Failure::Closed);
        }
        let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
        match poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)) {
            Ok(_) => {}
            Err(Errno::EINTR) if TERMINATE.load(Ordering::SeqCst) => return Err(Failure::Interrupted),
            Err(Errno::EINTR) => return Ok(Ready::default()),
            Err(e) => return Err(Failure::Io(format!("poll: {e}"))),
        }
        let fired = |slot: Option<usize>| slot.and_then(|i| fds[i].revents()).is_some_and(|r| !r.is_empty());
        Ok(Ready {
            stdin: fired(slots[0]),
            stdout: fired(slots[1]),
            stderr: fired(slots[2]),
        })
    }

    /// Writes what the pipe takes; a closed pipe (the program stopped reading) ends the
    /// request there.
    fn write_some(&mut self, pending: &mut &[u8]) {
        let Some(stdin) = self.stdin.as_mut() else {
            *pending = &[];
            return;
        };
        match stdin.write(pending) {
            Ok(n) => *pending = &pending[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                self.stdin = None;
                *pending = &[];
            }
        }
    }

    /// Reads what is there; `Ok(true)` at end of output.
    fn read_stdout(&mut self) -> Result<bool, Failure> {
        let Some(stdout) = self.stdout.as_mut() else {
            return Ok(true);
        };
        let mut buf = [0u8; 16 * 1024];
        match stdout.read(&mut buf) {
            Ok(0) => Ok(true),
            Ok(n) => {
                self.out.extend_from_slice(&buf[..n]);
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                Ok(false)
            }
            Err(e) => Err(Failure::Io(format!("reading its output: {e}"))),
        }
    }

    fn read_stderr(&mut self, sink: &mut ErrSink<'_>) -> bool {
        let Some(stderr) = self.stderr.as_mut() else {
            return false;
        };
        let mut buf = [0u8; 8 * 1024];
        match stderr.read(&mut buf) {
            Ok(0) => {
                self.stderr = None;
                if !self.err.is_empty() {
                    let rest = std::mem::take(&mut self.err);
                    sink.line(&rest);
                }
                false
            }
            Ok(n) => {
                self.err.extend_from_slice(&buf[..n]);
                while let Some(pos) = self.err.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = self.err.drain(..=pos).collect();
                    sink.line(&line[..line.len() - 1]);
                }
                if self.err.len() > MAX_STDERR_LINE {
                    let line = std::mem::take(&mut self.err);
                    sink.line(&line);
                }
                true
            }
            Err(_) => false,
        }
    }

    /// Reads whatever stderr already holds without waiting.
    fn drain_stderr(&mut self, sink: &mut ErrSink<'_>) {
        while self.read_stderr(sink) {}
    }

    /// Takes the output already waiting before a request is sent, without waiting: it
    /// was written after the last answer, so it cannot answer the next request. At most
    /// [`MAX_ANSWER`] bytes are kept; the rest is read and dropped.
    pub fn waiting_output(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        let mut buf = [0u8; 16 * 1024];
        while let Some(stdout) = self.stdout.as_mut() {
            match stdout.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let room = MAX_ANSWER.saturating_sub(out.len()).min(n);
                    out.extend_from_slice(&buf[..room]);
                }
                _ => break,
            }
        }
        out
    }

    /// Logs stderr lines written since the last call, without waiting (co-processes).
    pub fn flush_stderr(&mut self, on_stderr: &mut dyn FnMut(&str)) {
        let mut sink = ErrSink {
            emit: on_stderr,
            logged: 0,
            capped: false,
        };
        self.drain_stderr(&mut sink);
    }

    /// Closes stdin (end of requests) so a co-process can finish.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the program to exit until `deadline`; past it the program is killed.
    pub fn wait(&mut self, deadline: Instant) -> Result<ExitStatus, Failure> {
        let mut pause = Duration::from_micros(20);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    self.reaped = true;
                    return Ok(status);
                }
                Ok(None) => {}
                Err(e) => {
                    self.kill();
                    return Err(Failure::Io(format!("waiting for it: {e}")));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.kill();
                return Err(Failure::Timeout);
            }
            if TERMINATE.load(Ordering::SeqCst) {
                self.kill();
                return Err(Failure::Interrupted);
            }
            std::thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }

    /// Kills the program and everything in its process group, then reaps it. The group
    /// is signalled before the reap, while its id cannot have been reused.
    pub fn kill(&mut self) {
        self.stdin = None;
        if self.reaped {
            return;
        }
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

impl ErrSink<'_> {
    fn line(&mut self, raw: &[u8]) {
        if self.capped {
            return;
        }
        let raw = &raw[..raw.len().min(MAX_STDERR_LINE)];
        self.logged += raw.len() + 1;
        if self.logged > MAX_STDERR {
            self.capped = true;
            (self.emit)("(more stderr output discarded)");
            return;
        }
        (self.emit)(&line_text(raw));
    }
}

#[derive(Default)]
struct Ready {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

/// A line of output as text: lossy UTF-8, a trailing CR removed.
fn line_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    String::from_utf8_lossy(raw).into_owned()
}

/// `exited with status 3`, `killed by signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => "ended abnormally".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Proc {
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c").arg(script);
        Proc::spawn(cmd, true).unwrap()
    }

    fn soon(secs: f64) -> Instant {
        Instant::now() + Duration::from_secs_f64(secs)
    }

    #[test]
    fn once_answer_and_stderr() {
        let mut p = sh("read -r a b; echo \"got $b\" >&2; echo \"OK $a\"");
        let mut err = Vec::new();
        let lines = p
            .exchange(b"hook rcpt\n\n", true, Until::Eof, soon(5.0), &mut |l| {
                err.push(l.to_string())
            })
            .unwrap();
        assert_eq!(lines, vec!["OK hook"]);
        assert!(p.wait(soon(5.0)).unwrap().success());
        assert_eq!(err, vec!["got rcpt"]);
    }

    #[test]
    fn a_program_that_never_reads_a_big_request_still_answers() {
        let mut p = sh("exec 0<&-; echo DECLINED");
        let big = vec![b'x'; 1 << 20];
        let lines = p
            .exchange(&big, true, Until::Eof, soon(5.0), &mut |_| {})
            .unwrap();
        assert_eq!(lines, vec!["DECLINED"]);
    }

    #[test]
    fn answering_before_reading_does_not_deadlock() {
        // Writes 40 KiB before reading a 1 MiB request: both pipes fill up unless the
        // two directions are served together.
        let mut p = sh("head -c 40000 /dev/zero | tr '\\0' x; echo; cat >/dev/null; echo OK");
        let big = vec![b'y'; 1 << 20];
        let lines = p
            .exchange(&big, true, Until::Eof, soon(10.0), &mut |_| {})
            .unwrap();
        assert_eq!(lines.last().map(String::as_str), Some("OK"));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let mut p = sh("sleep 30 & sleep 30; echo late");
        let t = Instant::now();
        let r = p.exchange(b"\n", true, Until::Eof, soon(0.3), &mut |_| {});
        assert!(matches!(r, Err(Failure::Timeout)));
        p.kill();
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn flood_is_cut_off() {
        let mut p = sh("yes garbage");
        let r = p.exchange(b"\n", true, Until::Eof, soon(5.0), &mut |_| {});
        assert_eq!(r, Err(Failure::TooMuchOutput));
    }

    #[test]
    fn coprocess_answers_per_request_and_keeps_the_rest() {
        let mut p =
            sh("while read -r k v; do [ -z \"$k\" ] && { echo note x 1; echo DECLINED; echo extra; }; done");
        let last = |l: &str| l == "DECLINED";
        for _ in 0..3 {
            let lines = p
                .exchange(b"hook a\n\n", false, Until::Line(&last), soon(5.0), &mut |_| {})
                .unwrap();
            assert_eq!(lines.last().map(String::as_str), Some("DECLINED"));
        }
        p.close_stdin();
        assert!(p.wait(soon(5.0)).unwrap().success());
    }

    #[test]
    fn exit_status_descriptions() {
        let mut p = sh("kill -SEGV $$");
        let _ = p.exchange(b"", true, Until::Eof, soon(5.0), &mut |_| {});
        assert_eq!(describe(p.wait(soon(5.0)).unwrap()), "killed by signal 11");
        let mut p = sh("exit 3");
        let _ = p.exchange(b"", true, Until::Eof, soon(5.0), &mut |_| {});
        assert_eq!(describe(p.wait(soon(5.0)).unwrap()), "exited with status 3");
    }
}
