//! logging/file: log lines appended to a file (strftime-named) or piped to a command.
//! See README.md beside this file.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::process::Command;
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::child::{Fd, Process, Spawn};
use crate::config::Config;
use crate::log::{Level, LogSink, Record};
use crate::plugin::{LogAdjust, PluginError, PluginSpec};

/// The sink; the file or command is opened on the first line logged.
pub struct FileLog {
    level: Level,
    tsformat: String,
    target: Target,
    out: RefCell<Option<Out>>,
    failed: std::cell::Cell<bool>,
}

enum Target {
    /// A path; may contain strftime escapes and `%i` (the connection id).
    Path(String),
    /// `|command`: each line goes to the command's stdin; the command is run as written.
    Pipe(String),
}

/// Mode of a log file we create (before the umask): log lines name clients and senders,
/// so other users get no read access.
const FILE_MODE: u32 = 0o640;

/// How long one line may wait for a log pipe or FIFO whose reader is slow; after that
/// the destination is given up for this connection, so logging never holds a session.
const PIPE_WAIT: Duration = Duration::from_secs(2);

/// How long the log command gets at the end of the connection to finish (it then runs on
/// by itself; it is not killed, so the last lines are not lost).
const PIPE_EXIT_WAIT: Duration = Duration::from_secs(2);

/// The descriptor the log command reads its lines from.
const COMMAND_INPUT: i32 = 0;

enum Out {
    File(File),
    /// A named pipe, written without blocking.
    Fifo(File),
    /// The log command, started through the one child runner ([`crate::child`]).
    Pipe(Process<'static>),
}

/// `logging/file [loglevel L] [nosplit] [reopen] [tsformat FMT] PATH|'|command'`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn LogSink>, PluginError> {
    // `loglevel L` was taken out of the arguments with the other plugins' (see chain.rs).
    let mut level = match spec.log_adjust {
        Some(LogAdjust::Fixed(l)) => l,
        _ => crate::log::configured_level(config)?,
    };
    let mut tsformat = "%a %b %d %T %Y".to_string();
    let mut args = spec.args.iter().peekable();
    while let Some(word) = args.peek() {
        match word.to_ascii_lowercase().as_str() {
            "loglevel" => {
                args.next();
                let l = args.next().ok_or("loglevel needs a value")?;
                level = Level::parse(l).ok_or_else(|| format!("unknown log level {l:?}"))?;
            }
            // One process is one connection, so a file is always opened once per session.
            "nosplit" | "reopen" => {
                args.next();
            }
            "tsformat" => {
                args.next();
                tsformat = args.next().ok_or("tsformat needs a value")?.clone();
            }
            _ => break,
        }
    }
    let rest: Vec<&str> = args.map(String::as_str).collect();
    if rest.is_empty() {
        return Err(PluginError::Args(
            "no log file given (logging/file [options] PATH)".into(),
        ));
    }
    let output = rest.join(" ");
    let target = match output.trim_start().strip_prefix('|') {
        Some(cmd) => Target::Pipe(cmd.trim().to_string()),
        None => Target::Path(output),
    };
    Ok(Box::new(FileLog {
        level,
        tsformat,
        target,
        out: RefCell::new(None),
        failed: std::cell::Cell::new(false),
    }))
}

fn strftime(fmt: &str) -> String {
    let now = crate::localtime::now();
    let mut out = String::new();
    if std::fmt::Write::write_fmt(&mut out, format_args!("{}", now.strftime(fmt))).is_err() {
        return fmt.to_string();
    }
    out
}

impl FileLog {
    fn open(&self, id: &str) -> Option<Out> {
        match &self.target {
            Target::Path(p) => open_file(&strftime(&p.replace("%i", id))),
            // Run as written: a `%` in a shell command (`date +%s`) stays what it is. Its
            // standard error is ours unless ours is the client's connection.
            Target::Pipe(cmd) => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c").arg(cmd);
                let started = Spawn::new(sh)
                    .fd(COMMAND_INPUT, Fd::Requests)
                    .fd(2, Fd::OurStderr)
                    .start();
                started.ok().map(Out::Pipe)
            }
        }
    }
}

/// Opens (creating with [`FILE_MODE`]) for appending, without waiting: a FIFO with no
/// reader fails at once instead of blocking the session, and anything that is not a
/// regular file or a FIFO is refused.
fn open_file(path: &str) -> Option<Out> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(FILE_MODE)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let kind = file.metadata().ok()?.file_type();
    if kind.is_file() {
        blocking(file.as_fd());
        return Some(Out::File(file));
    }
    // A FIFO stays non-blocking: a reader that stops reading must not hold us.
    kind.is_fifo().then_some(Out::Fifo(file))
}

fn blocking(fd: std::os::fd::BorrowedFd<'_>) {
    if let Ok(flags) = fcntl(fd, FcntlArg::F_GETFL) {
        let _ = fcntl(
            fd,
            FcntlArg::F_SETFL(OFlag::from_bits_retain(flags) & !OFlag::O_NONBLOCK),
        );
    }
}

/// Hands a whole line to the log command, waiting at most [`PIPE_WAIT`] for it to take it
/// (a termination signal ends the wait too); `false` when it could not, or has exited.
fn send_line(command: &mut Process<'_>, line: &[u8]) -> bool {
    command.send(COMMAND_INPUT, line);
    let deadline = Instant::now() + PIPE_WAIT;
    while !command.sent(COMMAND_INPUT) {
        if !command.writable(COMMAND_INPUT) || command.step(deadline).is_err() {
            return false;
        }
    }
    true
}

/// Writes a whole line to a non-blocking FIFO, waiting at most [`PIPE_WAIT`] for room (a
/// termination signal ends the wait too); `false` when it could not.
fn write_line(w: &mut (impl Write + AsFd), mut line: &[u8]) -> bool {
    let deadline = Instant::now() + PIPE_WAIT;
    while !line.is_empty() {
        match w.write(line) {
            Ok(0) => return false,
            Ok(n) => line = &line[n..],
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::Interrupted =>
            {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || crate::io::TERMINATE.load(std::sync::atomic::Ordering::SeqCst) {
                    return false;
                }
                let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
                let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX));
            }
            Err(_) => return false,
        }
    }
    true
}

impl LogSink for FileLog {
    fn level(&self) -> Level {
        self.level
    }

    fn write(&self, record: &Record<'_>) {
        if self.failed.get() {
            return;
        }
        let mut out = self.out.borrow_mut();
        if out.is_none() {
            *out = self.open(record.id);
            if out.is_none() {
                self.failed.set(true);
                if crate::log::stderr_is_safe() {
                    crate::log::write_stderr_line(
                        "qpsmtpd-rs: logging/file: cannot open the log file or command",
                    );
                }
                return;
            }
        }
        let line = format!(
            "{} {}[{}]: {}\n",
            strftime(&self.tsformat),
            crate::host::hostname(),
            std::process::id(),
            record.line()
        );
        // One write per line, so lines from concurrent sessions never interleave (a
        // FIFO or pipe takes up to PIPE_BUF bytes in one piece).
        let ok = match out.as_mut() {
            Some(Out::File(f)) => f.write_all(line.as_bytes()).is_ok(),
            Some(Out::Fifo(f)) => write_line(f, line.as_bytes()),
            Some(Out::Pipe(command)) => send_line(command, line.as_bytes()),
            None => false,
        };
        if !ok {
            self.failed.set(true);
        }
    }
}

impl Drop for FileLog {
    /// The log command gets end of input and a moment to finish; one that does not exit
    /// in time (or when a termination signal arrives) is left to run on by itself, and to
    /// be reaped by init, rather than holding the session or losing its last lines.
    fn drop(&mut self) {
        if let Some(Out::Pipe(mut command)) = self.out.borrow_mut().take() {
            command.close(COMMAND_INPUT);
            let deadline = Instant::now() + PIPE_EXIT_WAIT;
            while command.exit().is_none() {
                if command.step(deadline).is_err() {
                    return command.detach();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sink(args: &[&str]) -> Box<dyn LogSink> {
        let spec = PluginSpec {
            name: "logging/file".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
            file: std::rc::Rc::from(std::path::Path::new("logging")),
            line: 1,
            log_adjust: None,
        };
        new(&spec, &Config::empty()).unwrap()
    }

    fn line(s: &dyn LogSink, msg: &str) {
        s.write(&Record {
            level: Level::Error,
            id: "6b000000.1",
            plugin: None,
            hook: None,
            msg,
        });
    }

    #[test]
    fn a_new_log_file_is_not_world_readable() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("smtp.log");
        let s = sink(&[path.to_str().unwrap()]);
        line(&*s, "hello");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        // 0640 less whatever the umask takes away: never readable by others.
        assert_eq!(mode & 0o007, 0, "{mode:o}");
        assert_eq!(mode & 0o600, 0o600, "{mode:o}");
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("6b000000.1 hello")
        );
    }

    #[test]
    fn the_command_is_run_as_written() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        // `%s` and `%i` reach the shell untouched (the README says no expansion).
        let cmd = format!("|printf '%s %%i\\n' x > {}; cat >/dev/null", out.display());
        let s = sink(&[&cmd]);
        line(&*s, "hello");
        drop(s);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "x %i\n");
    }

    #[test]
    fn a_slow_command_finishes_its_last_lines_after_the_session() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        // It reads everything, then takes longer than PIPE_EXIT_WAIT to write it out.
        let cmd = format!("|cat > {0}.tmp; sleep 3; mv {0}.tmp {0}", out.display());
        let s = sink(&[&cmd]);
        line(&*s, "last words");
        let started = Instant::now();
        drop(s);
        let waited = started.elapsed();
        assert!(waited >= PIPE_EXIT_WAIT && waited < PIPE_EXIT_WAIT + Duration::from_secs(1));
        assert!(
            !out.exists(),
            "the command was still at work when the session ended"
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        while !out.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let text = std::fs::read_to_string(&out).expect("the command was not killed");
        assert!(text.ends_with("6b000000.1 last words\n"), "{text}");
    }

    #[test]
    fn a_reader_that_never_reads_does_not_hold_the_session() {
        let d = tempfile::tempdir().unwrap();
        // A FIFO with no reader: the open fails at once instead of blocking.
        let fifo = d.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let started = Instant::now();
        let s = sink(&[fifo.to_str().unwrap()]);
        line(&*s, "nobody reads this");
        assert!(started.elapsed() < Duration::from_secs(1));
        // A command that never reads: once the pipe is full each line waits at most
        // PIPE_WAIT, then the destination is given up; the end does not wait for it.
        let s = sink(&["|sleep 4"]);
        let long = "x".repeat(16 * 1024);
        let started = Instant::now();
        for _ in 0..20 {
            line(&*s, &long);
        }
        drop(s);
        assert!(started.elapsed() < PIPE_WAIT + PIPE_EXIT_WAIT + Duration::from_secs(2));
    }
}
