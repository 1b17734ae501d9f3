//! The values a session reads from the config directory once, at start.

use std::time::Duration;

use crate::config::{Config, ConfigError};
use crate::log::Logger;
use crate::plugin::Chain;

/// Values read from the config directory once, at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `me`: our host name.
    pub me: String,
    /// `smtpgreeting`, if set.
    pub greeting: Option<String>,
    /// `databytes`: maximum message size (0 = unlimited).
    pub databytes: u64,
    /// `timeoutsmtpd`, else `timeout`: seconds to wait for a command.
    pub command_timeout: Duration,
    /// `timeout`: seconds to wait for each line of message data (each 64 KiB of a longer
    /// one) and for each write.
    pub data_timeout: Duration,
    /// `data_deadline`: seconds the whole message may take after `354`.
    pub data_deadline: Duration,
    /// `spool_dir`: where bodies are spooled.
    pub spool_dir: std::path::PathBuf,
    /// `size_threshold`: body bytes kept in memory before spooling.
    pub size_threshold: usize,
    /// `me-auth-results`: the Authentication-Results authserv-id; `None` = add none.
    pub auth_results_id: Option<String>,
    /// `max_recipients`: recipients per transaction (RFC 5321 §4.5.3.1.8 asks for ≥ 100).
    pub max_recipients: usize,
    /// `max_header_size`: bytes of header block kept for parsing.
    pub max_header_size: usize,
}

/// Seconds a whole message may take after `354` unless `data_deadline` says otherwise
/// (sendmail's `Timeout.datablock` default).
pub const DEFAULT_DATA_DEADLINE: u64 = 3600;

/// The config items as the chain's `config` hooks and the config files give them.
struct Items<'a> {
    chain: &'a Chain,
    config: &'a Config,
    log: &'a Logger,
}

impl Items<'_> {
    /// The first line of an item.
    fn text(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self
            .chain
            .config(name, self.config, self.log)?
            .first()
            .map(str::to_string))
    }

    /// The first line of an item, a whole number.
    fn number(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        let lines = self.chain.config(name, self.config, self.log)?;
        let Some(entry) = lines.first_entry() else {
            return Ok(None);
        };
        entry
            .text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                path: entry.file.to_path_buf(),
                line: entry.line,
                reason: format!("{name} must be a whole number, not {:?}", entry.text),
            })
    }

    /// A number of seconds that must not be 0.
    fn seconds(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        Ok(self.number(name)?.filter(|t| *t > 0))
    }
}

impl Settings {
    /// Reads the settings through the chain's `config` hooks and the config files.
    pub fn load(chain: &Chain, config: &Config, log: &Logger) -> Result<Settings, ConfigError> {
        let items = Items { chain, config, log };
        let me = items.text("me")?.unwrap_or_else(crate::host::hostname);
        let timeout = items.seconds("timeout")?.unwrap_or(1200);
        let command_timeout = items.seconds("timeoutsmtpd")?.unwrap_or(timeout);
        let auth_results_id = match items.text("me-auth-results")? {
            Some(v) if v == "none" => None,
            Some(v) => Some(v),
            None => Some(me.clone()),
        };
        // Read in this order, so that of two bad items the same one is reported first.
        Ok(Settings {
            greeting: items.text("smtpgreeting")?,
            databytes: items.number("databytes")?.unwrap_or(0),
            command_timeout: seconds(command_timeout),
            data_timeout: seconds(timeout),
            data_deadline: seconds(items.seconds("data_deadline")?.unwrap_or(DEFAULT_DATA_DEADLINE)),
            spool_dir: items
                .text("spool_dir")?
                .map(std::path::PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            size_threshold: items
                .number("size_threshold")?
                .map_or(crate::transaction::DEFAULT_SIZE_THRESHOLD, |n| n as usize),
            auth_results_id,
            max_recipients: items
                .number("max_recipients")?
                .map_or(1000, |n| n.max(1) as usize),
            max_header_size: items
                .number("max_header_size")?
                .map_or(1024 * 1024, |n| n.max(1024) as usize),
            me,
        })
    }
}

/// A configured number of seconds as a wait. Past about 136 years every wait is the same
/// as for ever, and a longer one would overflow the clock arithmetic of each read.
fn seconds(n: u64) -> Duration {
    Duration::from_secs(n.min(1 << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(items: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in items {
            std::fs::write(dir.path().join(name), format!("{text}\n")).unwrap();
        }
        let config = Config::open(dir.path(), None).unwrap();
        Settings::load(&Chain::new(), &config, &Logger::silent("test"))
    }

    #[test]
    fn defaults() {
        let s = load(&[("me", "mx.example.org")]).unwrap();
        assert_eq!(s.me, "mx.example.org");
        assert_eq!(s.auth_results_id.as_deref(), Some("mx.example.org"));
        assert_eq!(s.greeting, None);
        assert_eq!(s.databytes, 0);
        assert_eq!(s.command_timeout, Duration::from_secs(1200));
        assert_eq!(s.data_timeout, Duration::from_secs(1200));
        assert_eq!(s.data_deadline, Duration::from_secs(DEFAULT_DATA_DEADLINE));
        assert_eq!(s.size_threshold, crate::transaction::DEFAULT_SIZE_THRESHOLD);
        assert_eq!(s.max_recipients, 1000);
        assert_eq!(s.max_header_size, 1024 * 1024);
    }

    #[test]
    fn timeouts() {
        let s = load(&[("timeout", "30"), ("data_deadline", "600")]).unwrap();
        assert_eq!(s.command_timeout, Duration::from_secs(30));
        assert_eq!(s.data_timeout, Duration::from_secs(30));
        assert_eq!(s.data_deadline, Duration::from_secs(600));
        // qmail's timeoutsmtpd is for commands only.
        let s = load(&[("timeout", "30"), ("timeoutsmtpd", "5")]).unwrap();
        assert_eq!(s.command_timeout, Duration::from_secs(5));
        assert_eq!(s.data_timeout, Duration::from_secs(30));
        // 0 is no timeout at all, so it means the default.
        let s = load(&[("timeout", "0"), ("timeoutsmtpd", "0"), ("data_deadline", "0")]).unwrap();
        assert_eq!(s.command_timeout, Duration::from_secs(1200));
        assert_eq!(s.data_deadline, Duration::from_secs(DEFAULT_DATA_DEADLINE));
        let s = load(&[("timeout", "99999999999")]).unwrap();
        assert_eq!(s.data_timeout, Duration::from_secs(1 << 32));
    }

    #[test]
    fn numbers_and_names() {
        let s = load(&[
            ("me", "mx.example.org"),
            ("me-auth-results", "none"),
            ("smtpgreeting", "hello there"),
            ("databytes", "1000"),
            ("size_threshold", "10"),
            ("max_recipients", "0"),
            ("max_header_size", "10"),
        ])
        .unwrap();
        assert_eq!(s.auth_results_id, None);
        assert_eq!(s.greeting.as_deref(), Some("hello there"));
        assert_eq!(s.databytes, 1000);
        assert_eq!(s.size_threshold, 10);
        assert_eq!(s.max_recipients, 1);
        assert_eq!(s.max_header_size, 1024);
        let s = load(&[("me-auth-results", "auth.example.org")]).unwrap();
        assert_eq!(s.auth_results_id.as_deref(), Some("auth.example.org"));
        let err = load(&[("databytes", "10k")]).unwrap_err().to_string();
        assert!(err.contains("databytes must be a whole number"), "{err}");
    }
}
