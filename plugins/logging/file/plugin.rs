//! logging/file: log lines appended to a file (strftime-named) or piped to a command.
//! See README.md beside this file.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::process::{Child, Command, Stdio};

use crate::config::Config;
use crate::log::{Level, LogSink, Record};
use crate::plugin::{LogAdjust, PluginSpec};

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
    /// `|command`: each line goes to the command's stdin.
    Pipe(String),
}

enum Out {
    File(File),
    Pipe(Child),
}

/// `logging/file [loglevel L] [nosplit] [reopen] [tsformat FMT] PATH|'|command'`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn LogSink>, String> {
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
        return Err("no log file given (logging/file [options] PATH)".into());
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
            Target::Path(p) => {
                let path = strftime(&p.replace("%i", id));
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .ok()
                    .map(Out::File)
            }
            Target::Pipe(cmd) => Command::new("/bin/sh")
                .arg("-c")
                .arg(strftime(&cmd.replace("%i", id)))
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .ok()
                .map(Out::Pipe),
        }
    }
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
            crate::session::hostname(),
            std::process::id(),
            record.line()
        );
        // One write per line, so lines from concurrent sessions never interleave.
        let ok = match out.as_mut() {
            Some(Out::File(f)) => f.write_all(line.as_bytes()).is_ok(),
            Some(Out::Pipe(child)) => child
                .stdin
                .as_mut()
                .is_some_and(|s| s.write_all(line.as_bytes()).is_ok()),
            None => false,
        };
        if !ok {
            self.failed.set(true);
        }
    }
}

impl Drop for FileLog {
    fn drop(&mut self) {
        if let Some(Out::Pipe(mut child)) = self.out.borrow_mut().take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}
