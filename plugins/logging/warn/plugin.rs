//! logging/warn: log lines to stderr (for tcpserver + multilog, s6-log, journald).
//! Also logging/devnull. See README.md beside this file.

use crate::config::Config;
use crate::log::{Level, LogSink, Record, stderr_is_safe, write_stderr_line};
use crate::plugin::{PluginError, PluginSpec};

/// The sink.
pub struct Warn {
    level: Level,
    safe: bool,
}

/// `logging/warn [LEVEL]`: LEVEL as a number (0–7) or a name (`LOGINFO`); default is
/// the `loglevel` config file, else LOGNOTICE.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn LogSink>, PluginError> {
    let level = match spec.args.as_slice() {
        [] => crate::log::configured_level(config)?,
        [l] => Level::parse(l).ok_or_else(|| format!("unknown log level {l:?}"))?,
        more => {
            return Err(PluginError::Args(format!(
                "takes one argument (the level), got {}",
                more.join(" ")
            )));
        }
    };
    Ok(Box::new(Warn {
        level,
        safe: stderr_is_safe(),
    }))
}

/// `logging/devnull`: discards everything (and so turns off the default destination).
pub fn devnull(_spec: &PluginSpec, _config: &Config) -> Result<Box<dyn LogSink>, PluginError> {
    Ok(Box::new(Warn {
        level: Level::Emerg,
        safe: false,
    }))
}

impl LogSink for Warn {
    fn level(&self) -> Level {
        if self.safe { self.level } else { Level::Emerg }
    }

    fn write(&self, record: &Record<'_>) {
        // Never onto the client's connection (xinetd and systemd can make fd 2 the socket).
        if self.safe {
            write_stderr_line(&record.line());
        }
    }
}
