//! Logging: qpsmtpd's levels, lines tagged with the connection id, and sinks chosen by
//! `config/logging` (the `logging/*` plugins).
//!
//! Without `config/logging`, lines go to stderr when the binary runs by hand (fd 0 is not
//! a socket) and to syslog (mail facility) under a super-server. Nothing is ever written
//! to stderr when fd 2 is the client's connection (xinetd, systemd `Accept=yes` without
//! `StandardError=journal`): that would put log text into the SMTP stream.

use std::fmt;
use std::io::Write;
use std::os::fd::AsFd;

/// qpsmtpd's log levels (syslog severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// LOGEMERG, 0
    Emerg = 0,
    /// LOGALERT, 1
    Alert = 1,
    /// LOGCRIT, 2
    Crit = 2,
    /// LOGERROR, 3
    Error = 3,
    /// LOGWARN, 4
    Warn = 4,
    /// LOGNOTICE, 5
    Notice = 5,
    /// LOGINFO, 6
    Info = 6,
    /// LOGDEBUG, 7
    Debug = 7,
}

impl Level {
    /// The level used when neither `loglevel` nor a logging plugin says otherwise.
    pub const DEFAULT: Level = Level::Notice;

    /// Parses `6`, `LOGINFO`, `info` or `LOG_INFO`.
    pub fn parse(s: &str) -> Option<Level> {
        if let Ok(n) = s.parse::<u8>() {
            return Level::from_number(n);
        }
        let upper = s.to_ascii_uppercase();
        let name = upper
            .strip_prefix("LOG_")
            .or_else(|| upper.strip_prefix("LOG"))
            .unwrap_or(&upper);
        Some(match name {
            "EMERG" | "RADAR" => Level::Emerg,
            "ALERT" => Level::Alert,
            "CRIT" => Level::Crit,
            "ERROR" | "ERR" => Level::Error,
            "WARN" | "WARNING" => Level::Warn,
            "NOTICE" => Level::Notice,
            "INFO" => Level::Info,
            "DEBUG" => Level::Debug,
            _ => return None,
        })
    }

    /// The level with this number (0–7).
    pub fn from_number(n: u8) -> Option<Level> {
        Some(match n {
            0 => Level::Emerg,
            1 => Level::Alert,
            2 => Level::Crit,
            3 => Level::Error,
            4 => Level::Warn,
            5 => Level::Notice,
            6 => Level::Info,
            7 => Level::Debug,
            _ => return None,
        })
    }
}

/// The level from the `loglevel` config file, else [`Level::DEFAULT`].
pub fn configured_level(config: &crate::config::Config) -> Result<Level, String> {
    match config.first("loglevel").map_err(|e| e.to_string())? {
        Some(l) => Level::parse(&l).ok_or_else(|| format!("loglevel: unknown log level {l:?}")),
        None => Ok(Level::DEFAULT),
    }
}

/// One log line before formatting.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Severity.
    pub level: Level,
    /// The connection id.
    pub id: &'a str,
    /// The plugin that logged, if any.
    pub plugin: Option<&'a str>,
    /// The hook it was running, if any.
    pub hook: Option<&'a str>,
    /// The message (control characters are escaped by [`Record::line`]).
    pub msg: &'a str,
}

impl Record<'_> {
    /// `<id> (<hook>) <plugin>: <msg>` as qpsmtpd's `logging/warn` writes it, with control
    /// characters escaped so client input cannot forge log lines.
    pub fn line(&self) -> String {
        let mut s = String::with_capacity(self.msg.len() + 40);
        s.push_str(self.id);
        match (self.hook, self.plugin) {
            (Some(h), Some(p)) => {
                s.push_str(" (");
                s.push_str(h);
                s.push_str(") ");
                s.push_str(p);
                s.push(':');
            }
            (None, Some(p)) => {
                s.push(' ');
                s.push_str(p);
                s.push(':');
            }
            _ => {}
        }
        s.push(' ');
        escape_into(&mut s, self.msg);
        cut_to(&mut s, MAX_LINE);
        s
    }
}

/// Cuts a line to at most `max` bytes at a character boundary, marking the cut.
fn cut_to(line: &mut String, max: usize) {
    const MARK: &str = "...[cut]";
    if line.len() <= max {
        return;
    }
    let mut end = max - MARK.len();
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    line.truncate(end);
    line.push_str(MARK);
}

/// The longest log line written, in bytes: a peer fact or a command line of many
/// kilobytes is cut (syslog daemons cut at 1 to 8 KiB anyway, some silently).
pub const MAX_LINE: usize = 4096;

/// Appends `msg` with control characters shown as `\r`, `\n`, `\xNN`, and the Unicode
/// line and paragraph separators, which viewers may break lines at, as `\u2028`, `\u2029`.
pub fn escape_into(out: &mut String, msg: &str) {
    // Most lines hold nothing to escape: no byte below 0x20, no DEL, and no 0xC2 or 0xE2,
    // which start the UTF-8 of the C1 controls and of U+2028/U+2029.
    if !msg
        .bytes()
        .any(|b| b < 0x20 || b == 0x7f || b == 0xc2 || b == 0xe2)
    {
        return out.push_str(msg);
    }
    for c in msg.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push(' '),
            c if c.is_control() => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\x{:02x}", c as u32));
            }
            '\u{2028}' | '\u{2029}' => {
                let _ = fmt::Write::write_fmt(out, format_args!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
}

/// Where log lines go: the `logging/*` plugins implement this.
pub trait LogSink {
    /// The most verbose level this sink wants.
    fn level(&self) -> Level;
    /// Writes one line (already filtered by level).
    fn write(&self, record: &Record<'_>);
}

/// The per-connection logger.
pub struct Logger {
    id: String,
    sinks: Vec<Box<dyn LogSink>>,
    max: Option<Level>,
}

impl Logger {
    /// A logger writing to these sinks.
    pub fn new(id: &str, sinks: Vec<Box<dyn LogSink>>) -> Logger {
        let max = sinks.iter().map(|s| s.level()).max();
        Logger {
            id: id.to_string(),
            sinks,
            max,
        }
    }

    /// A logger that drops everything.
    pub fn silent(id: &str) -> Logger {
        Logger::new(id, Vec::new())
    }

    /// The connection id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Would a line at this level be written anywhere? (Check before formatting.)
    pub fn enabled(&self, level: Level) -> bool {
        self.max.is_some_and(|m| level <= m)
    }

    /// Writes a line from a plugin or the core.
    pub fn write(&self, level: Level, plugin: Option<&str>, hook: Option<&str>, msg: &str) {
        let record = Record {
            level,
            id: &self.id,
            plugin,
            hook,
            msg,
        };
        for sink in &self.sinks {
            if level <= sink.level() {
                sink.write(&record);
            }
        }
    }

    /// Writes a core line; formatting happens only if some sink wants the level.
    pub fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        if let Some(text) = args.as_str() {
            return self.write(level, None, None, text);
        }
        // Sized once: `to_string` would grow the line a piece at a time.
        let mut line = String::with_capacity(256);
        let _ = fmt::Write::write_fmt(&mut line, args);
        self.write(level, None, None, &line);
    }
}

/// Is it safe to write to fd 2? Not when fd 2 is the client's connection (the same open
/// socket as fd 0, as xinetd and systemd's default `StandardError=inherit` arrange) or
/// when fd 2 is closed.
///
/// Asked once per process (the start, the log sinks, children's stderr): what fds 0 and 2
/// are does not change while a session runs.
pub fn stderr_is_safe() -> bool {
    static SAFE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SAFE.get_or_init(stderr_is_safe_now)
}

fn stderr_is_safe_now() -> bool {
    let stdin = std::io::stdin();
    let stderr = std::io::stderr();
    let Ok(err) = nix::sys::stat::fstat(stderr.as_fd()) else {
        return false;
    };
    match nix::sys::stat::fstat(stdin.as_fd()) {
        Ok(inp) => !(inp.st_dev == err.st_dev && inp.st_ino == err.st_ino && is_socket(&err)),
        Err(_) => true,
    }
}

fn is_socket(st: &nix::sys::stat::FileStat) -> bool {
    (st.st_mode & nix::libc::S_IFMT) == nix::libc::S_IFSOCK
}

/// Writes one line to stderr in a single `write` (lines from concurrent processes sharing
/// a log pipe stay whole).
pub fn write_stderr_line(line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = std::io::stderr().lock().write_all(&buf);
}

/// Sends one line to syslog (mail facility, error) without any configuration: used for
/// start-up errors found before the configured logging exists, when stderr may be the
/// client's socket. Failures are ignored: there is nowhere else to report them.
pub fn syslog_fallback(line: &str) {
    let formatter = syslog::Formatter3164 {
        facility: syslog::Facility::LOG_MAIL,
        hostname: None,
        process: "qpsmtpd-rs".into(),
        pid: std::process::id(),
    };
    for path in ["/dev/log", "/run/systemd/journal/syslog", "/var/run/syslog"] {
        if let Ok(mut logger) = syslog::unix_custom(formatter.clone(), path) {
            let _ = logger.err(line);
            return;
        }
    }
}

/// A sink writing to stderr (the default for runs by hand; `logging/warn` builds one too).
pub struct StderrSink {
    level: Level,
}

impl StderrSink {
    /// A stderr sink at `level`.
    pub fn new(level: Level) -> StderrSink {
        StderrSink { level }
    }
}

impl LogSink for StderrSink {
    fn level(&self) -> Level {
        self.level
    }
    fn write(&self, record: &Record<'_>) {
        write_stderr_line(&record.line());
    }
}

/// A sink that keeps lines in memory (tests).
#[derive(Default)]
pub struct MemorySink {
    /// The lines written so far.
    pub lines: std::rc::Rc<std::cell::RefCell<Vec<String>>>,
}

impl LogSink for MemorySink {
    fn level(&self) -> Level {
        Level::Debug
    }
    fn write(&self, record: &Record<'_>) {
        self.lines.borrow_mut().push(record.line());
    }
}

#[cfg(test)]
mod tests;
