//! A plugin program as a child process ([`crate::child`]): its stdin a pipe for requests
//! (or `/dev/null`), its stdout and stderr pipes we read, never the client's connection;
//! in a process group of its own so that a timeout kills whatever it started; always
//! reaped.
//!
//! This file adds the plugin protocol's framing: a request written while the answer is
//! read and stderr is logged, all against one deadline, so a program that answers before
//! reading its input, that stops reading, that floods either output or that never answers
//! cannot block us; the answer is complete at end of output (a program run once) or at
//! its verdict line (a co-process).

use std::io;
use std::process::Command;
use std::time::Instant;

use crate::child::{ChildError, Exit, Fd, Process, Spawn};

/// Most bytes of answer accepted per call; more is a failure (the program is killed).
pub const MAX_ANSWER: usize = 64 * 1024;

/// Most bytes of stderr logged per call; the rest is read and dropped.
pub const MAX_STDERR: usize = 16 * 1024;

/// Longest stderr line logged (longer ones are cut).
const MAX_STDERR_LINE: usize = 1000;

/// Stdout kept unread: enough to see an answer grow past [`MAX_ANSWER`].
const STDOUT_KEEP: usize = 2 * MAX_ANSWER;

/// Stderr kept between two looks at it; more is dropped unlogged.
const STDERR_KEEP: usize = 64 * 1024;

/// Why a call to a plugin program produced no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
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

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Timeout => write!(f, "did not finish within its time budget"),
            CallFailure::TooMuchOutput => write!(f, "wrote more than {MAX_ANSWER} bytes of answer"),
            CallFailure::Closed => write!(f, "closed its output without a complete answer"),
            CallFailure::StdinClosed => write!(f, "closed its stdin; it cannot take requests"),
            CallFailure::Interrupted => write!(f, "interrupted by a termination signal"),
            CallFailure::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<ChildError> for CallFailure {
    fn from(e: ChildError) -> CallFailure {
        match e {
            ChildError::TimedOut => CallFailure::Timeout,
            ChildError::Interrupted => CallFailure::Interrupted,
            other => CallFailure::Io(other.to_string()),
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
    child: Process<'static>,
}

/// The answer lines of one call so far.
#[derive(Default)]
struct Answer {
    lines: Vec<String>,
    bytes: usize,
}

/// Stderr bookkeeping for one call.
struct ErrSink<'a> {
    emit: &'a mut dyn FnMut(&str),
    logged: usize,
    capped: bool,
}

impl Proc {
    /// Starts `cmd` with a request pipe on stdin (or `/dev/null`), stdout and stderr.
    pub fn spawn(cmd: Command, stdin: bool) -> io::Result<Proc> {
        let mut spawn = Spawn::new(cmd)
            .fd(1, Fd::Read(STDOUT_KEEP))
            .fd(2, Fd::Read(STDERR_KEEP));
        if stdin {
            spawn = spawn.fd(0, Fd::Requests);
        }
        match spawn.start() {
            Ok(child) => Ok(Proc { child }),
            Err(ChildError::Spawn(e) | ChildError::Io(e)) => Err(e),
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Is the program's stdin still open for requests?
    pub fn can_write(&self) -> bool {
        self.child.writable(0)
    }

    /// Writes `request` (then closes stdin if `close`), reads output until `until` is
    /// met, and hands each stderr line to `on_stderr`. The program closing its stdin
    /// early is not an error for a program run once: its answer still counts.
    pub fn exchange(
        &mut self,
        request: &[u8],
        close: bool,
        until: Until<'_>,
        deadline: Instant,
        on_stderr: &mut dyn FnMut(&str),
    ) -> Result<Vec<String>, CallFailure> {
        let mut sink = ErrSink::new(on_stderr);
        let mut answer = Answer::default();
        if self.take_lines(&mut answer, until)? {
            return Ok(answer.lines);
        }
        self.child.send(0, request);
        if close {
            self.child.close(0);
        }
        loop {
            self.child.step(deadline)?;
            // A co-process that cannot take its request will never answer it.
            if !close && !self.child.writable(0) {
                return Err(CallFailure::StdinClosed);
            }
            self.log_stderr(&mut sink);
            if self.take_lines(&mut answer, until)? {
                return Ok(answer.lines);
            }
            if self.child.output_ended(1) {
                return self.at_eof(answer.lines, until, &mut sink);
            }
        }
    }

    /// Moves complete lines from the output into `answer`; `true` when it is complete.
    fn take_lines(&mut self, answer: &mut Answer, until: Until<'_>) -> Result<bool, CallFailure> {
        let out = self.child.output(1);
        while let Some(pos) = out.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = out.drain(..=pos).collect();
            answer.bytes += raw.len();
            let line = line_text(&raw[..raw.len() - 1]);
            let last = matches!(until, Until::Line(is_last) if is_last(&line));
            answer.lines.push(line);
            if last {
                return Ok(true);
            }
        }
        if answer.bytes + out.len() > MAX_ANSWER {
            return Err(CallFailure::TooMuchOutput);
        }
        Ok(false)
    }

    /// Output ended: for a program run once that is the end of the answer (a last line
    /// without its newline counts); for a co-process it means the answer never came.
    fn at_eof(
        &mut self,
        mut lines: Vec<String>,
        until: Until<'_>,
        sink: &mut ErrSink<'_>,
    ) -> Result<Vec<String>, CallFailure> {
        let rest = std::mem::take(self.child.output(1));
        if !rest.is_empty() {
            lines.push(line_text(&rest));
        }
        self.child.read_waiting(MAX_STDERR);
        self.log_stderr(sink);
        match until {
            Until::Eof => Ok(lines),
            Until::Line(_) => Err(CallFailure::Closed),
        }
    }

    /// Hands the complete stderr lines read so far to the sink (and the last one, without
    /// its newline, once stderr has ended); a line longer than [`MAX_STDERR_LINE`] is
    /// cut into pieces.
    fn log_stderr(&mut self, sink: &mut ErrSink<'_>) {
        let ended = self.child.output_ended(2);
        let err = self.child.output(2);
        while let Some(pos) = err.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = err.drain(..=pos).collect();
            sink.line(&line[..line.len() - 1]);
        }
        if err.len() > MAX_STDERR_LINE || (ended && !err.is_empty()) {
            sink.line(&std::mem::take(err));
        }
    }

    /// Takes the output already waiting before a request is sent, without waiting: it
    /// was written after the last answer, so it cannot answer the next request. At most
    /// [`MAX_ANSWER`] bytes are read.
    pub fn waiting_output(&mut self) -> Vec<u8> {
        self.child.read_waiting(MAX_ANSWER);
        let mut out = std::mem::take(self.child.output(1));
        out.truncate(MAX_ANSWER);
        out
    }

    /// Logs stderr lines written since the last call, without waiting (co-processes); at
    /// most [`MAX_STDERR`] bytes are read, so a program that writes to stderr without
    /// pause cannot keep us here.
    pub fn flush_stderr(&mut self, on_stderr: &mut dyn FnMut(&str)) {
        self.child.read_waiting(MAX_STDERR);
        self.log_stderr(&mut ErrSink::new(on_stderr));
    }

    /// Closes stdin (end of requests) so a co-process can finish.
    pub fn close_stdin(&mut self) {
        self.child.close(0);
    }

    /// Waits for the program to exit until `deadline`; past it the program is killed.
    pub fn wait(&mut self, deadline: Instant) -> Result<Exit, CallFailure> {
        Ok(self.child.wait(deadline)?)
    }

    /// Kills the program and everything in its process group, then reaps it.
    pub fn kill(&mut self) {
        self.child.kill();
    }
}

impl<'a> ErrSink<'a> {
    fn new(emit: &'a mut dyn FnMut(&str)) -> ErrSink<'a> {
        ErrSink {
            emit,
            logged: 0,
            capped: false,
        }
    }

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

/// A line of output as text: lossy UTF-8, a trailing CR removed.
fn line_text(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
    String::from_utf8_lossy(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
        assert!(matches!(r, Err(CallFailure::Timeout)));
        p.kill();
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn flood_is_cut_off() {
        let mut p = sh("yes garbage");
        let r = p.exchange(b"\n", true, Until::Eof, soon(5.0), &mut |_| {});
        assert_eq!(r, Err(CallFailure::TooMuchOutput));
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
        assert_eq!(p.wait(soon(5.0)).unwrap().describe(), "killed by signal 11");
        let mut p = sh("exit 3");
        let _ = p.exchange(b"", true, Until::Eof, soon(5.0), &mut |_| {});
        assert_eq!(p.wait(soon(5.0)).unwrap().describe(), "exited with status 3");
    }

    #[test]
    fn output_that_never_stops_is_read_only_so_far() {
        // Both outputs flooded without pause: taking what is waiting must end anyway, and
        // only a bounded part of it is logged or kept.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut p = sh("yes err >&2 & yes out");
            std::thread::sleep(Duration::from_millis(100));
            let mut logged = 0;
            p.flush_stderr(&mut |l| logged += l.len() + 1);
            let waiting = p.waiting_output().len();
            let _ = tx.send((logged, waiting));
        });
        let (logged, waiting) = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reading a flood without waiting must end");
        assert!(logged <= MAX_STDERR + 100, "{logged} bytes of stderr logged");
        assert!(waiting <= MAX_ANSWER, "{waiting} bytes kept");
    }
}
