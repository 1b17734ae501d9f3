//! logging/syslog: log lines to syslog, mail facility by default.
//! See README.md beside this file.

use std::cell::RefCell;

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};

use crate::config::Config;
use crate::log::{Level, LogSink, Record};
use crate::plugin::{LogAdjust, PluginError, PluginSpec, key_values};

/// The sink; the socket is opened on the first line logged.
pub struct Syslog {
    level: Level,
    priority: Option<Level>,
    formatter: Formatter3164,
    socket: Option<String>,
    conn: RefCell<Option<Logger<LoggerBackend, Formatter3164>>>,
    failed: std::cell::Cell<bool>,
}

/// Sockets tried in order when `logsock` does not name one.
const SOCKETS: &[&str] = &["/dev/log", "/run/systemd/journal/syslog", "/var/run/syslog"];

/// `logging/syslog [loglevel L] [priority P] [ident NAME] [facility F] [logsock PATH]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn LogSink>, PluginError> {
    // `loglevel L` was taken out of the arguments with the other plugins' (see chain.rs).
    let mut level = match spec.log_adjust {
        Some(LogAdjust::Fixed(l)) => l,
        _ => crate::log::configured_level(config)?,
    };
    let mut priority = None;
    let mut ident = "qpsmtpd-rs".to_string();
    let mut facility = Facility::LOG_MAIL;
    let mut socket = None;
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "loglevel" => level = Level::parse(&v).ok_or_else(|| format!("unknown log level {v:?}"))?,
            "priority" => priority = Some(Level::parse(&v).ok_or_else(|| format!("unknown priority {v:?}"))?),
            "ident" => {
                if !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                    return Err(PluginError::Args(format!("invalid ident {v:?}")));
                }
                ident = v;
            }
            "facility" => facility = parse_facility(&v).ok_or_else(|| format!("unknown facility {v:?}"))?,
            // qpsmtpd passed this to Sys::Syslog's setlogsock; here it is a socket path
            // (the `unix` type word is accepted and means the default sockets).
            "logsock" => socket = v.split(',').find(|p| p.starts_with('/')).map(str::to_string),
            other => return Err(PluginError::Args(format!("unknown argument {other:?}"))),
        }
    }
    Ok(Box::new(Syslog {
        level,
        priority,
        formatter: Formatter3164 {
            facility,
            hostname: None,
            process: ident,
            pid: std::process::id(),
        },
        socket,
        conn: RefCell::new(None),
        failed: std::cell::Cell::new(false),
    }))
}

fn parse_facility(name: &str) -> Option<Facility> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_prefix("log_").unwrap_or(&n);
    Some(match n {
        "mail" => Facility::LOG_MAIL,
        "daemon" => Facility::LOG_DAEMON,
        "user" => Facility::LOG_USER,
        "local0" => Facility::LOG_LOCAL0,
        "local1" => Facility::LOG_LOCAL1,
        "local2" => Facility::LOG_LOCAL2,
        "local3" => Facility::LOG_LOCAL3,
        "local4" => Facility::LOG_LOCAL4,
        "local5" => Facility::LOG_LOCAL5,
        "local6" => Facility::LOG_LOCAL6,
        "local7" => Facility::LOG_LOCAL7,
        _ => return None,
    })
}

impl Syslog {
    fn connect(&self) -> Option<Logger<LoggerBackend, Formatter3164>> {
        let paths: Vec<&str> = match &self.socket {
            Some(p) => vec![p.as_str()],
            None => SOCKETS.to_vec(),
        };
        paths
            .into_iter()
            .find_map(|p| syslog::unix_custom(self.formatter.clone(), p).ok())
    }
}

impl LogSink for Syslog {
    fn level(&self) -> Level {
        self.level
    }

    fn write(&self, record: &Record<'_>) {
        if self.failed.get() {
            return;
        }
        let mut conn = self.conn.borrow_mut();
        if conn.is_none() {
            *conn = self.connect();
            if conn.is_none() {
                // No syslog socket: drop lines rather than risk stderr (it may be the client).
                self.failed.set(true);
                return;
            }
        }
        let Some(logger) = conn.as_mut() else {
            return;
        };
        let line = record.line();
        let _ = match self.priority.unwrap_or(record.level) {
            Level::Emerg => logger.emerg(line),
            Level::Alert => logger.alert(line),
            Level::Crit => logger.crit(line),
            Level::Error => logger.err(line),
            Level::Warn => logger.warning(line),
            Level::Notice => logger.notice(line),
            Level::Info => logger.info(line),
            Level::Debug => logger.debug(line),
        };
    }
}
