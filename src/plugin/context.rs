//! What a hook call may look at and change: [`Context`], and the per-session [`Env`] the
//! chain builds it from.

use std::fmt;

use crate::config::{ConfigError, Lines};
use crate::connection::Connection;
use crate::log::{Level, Logger};
use crate::reply::Reply;
use crate::transaction::Transaction;

use super::{Chain, Hook, LogAdjust, Outcome};

/// What stays the same for every hook call of a session.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// The config directory.
    pub config: &'a crate::config::Config,
    /// The logger.
    pub log: &'a Logger,
    /// Our host name (`me`, defaulting to the system's host name).
    pub me: &'a str,
}

/// Everything a hook call may look at or change.
pub struct Context<'a> {
    /// The connection: peer facts, notes, relay status, greeting.
    pub conn: &'a mut Connection,
    /// The current transaction: envelope, notes, headers, body.
    pub txn: &'a mut Transaction,
    pub(crate) config: &'a crate::config::Config,
    pub(crate) chain: &'a Chain,
    pub(crate) log: &'a Logger,
    pub(crate) me: &'a str,
    pub(crate) replies: &'a mut Vec<Reply>,
    pub(crate) plugin: &'a str,
    pub(crate) hook: Hook,
    pub(crate) log_adjust: Option<LogAdjust>,
}

impl Context<'_> {
    /// A config item, asking `config` hooks first (qpsmtpd's `config` hook, docs/hooks.pod)
    /// and then the files.
    pub fn config(&self, name: &str) -> Result<Lines, ConfigError> {
        let result = self.chain.config(name, self.config, self.log);
        if let Err(e) = &result {
            self.log(Level::Error, format_args!("config {name}: {e}"));
        }
        result
    }

    /// Our host name (`me`).
    pub fn me(&self) -> &str {
        self.me
    }

    /// The first line of a config item.
    pub fn config_first(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.config(name)?.first().map(str::to_string))
    }

    /// The config item `name.cdb`, if present.
    pub fn config_cdb(&self, name: &str) -> Result<Option<crate::cdb::Cdb>, ConfigError> {
        let result = self.config.cdb(name);
        if let Err(e) = &result {
            self.log(Level::Error, format_args!("config {name}.cdb: {e}"));
        }
        result
    }

    /// Logs a failed lookup in a cdb file and answers with a temporary failure, like an
    /// unreadable config file.
    pub fn cdb_failed(&self, name: &str, e: std::io::Error) -> Outcome {
        self.log(Level::Error, format_args!("config {name}.cdb: {e}"));
        Outcome::from(ConfigError::Read {
            path: self.config.dir().join(format!("{name}.cdb")),
            reason: e.to_string(),
        })
    }

    /// The config directory (for plugins resolving relative paths).
    pub fn config_dir(&self) -> &std::path::Path {
        self.config.dir()
    }

    /// Writes a log line tagged with this plugin and hook.
    pub fn log(&self, level: Level, msg: impl fmt::Display) {
        let level = self.log_adjust.map_or(level, |a| a.apply(level));
        if self.log.enabled(level) {
            self.log
                .write(level, Some(self.plugin), Some(self.hook.name()), &msg.to_string());
        }
    }

    /// The logger (for passing to helpers).
    pub fn logger(&self) -> &Logger {
        self.log
    }

    /// Sends a reply now; used by plugins that answer `DONE`.
    pub fn respond(&mut self, reply: Reply) {
        self.replies.push(reply);
    }

    /// This plugin instance's name as written in `config/plugins`.
    pub fn plugin_name(&self) -> &str {
        self.plugin
    }

    /// The hook being run.
    pub fn hook(&self) -> Hook {
        self.hook
    }

    /// The session's DNS resolver, shared with the other plugins; made on the first call
    /// of the session.
    pub fn dns(&self) -> &super::services::Dns {
        self.chain.services().dns(self.config, self.log)
    }

    /// The state store that outlives the session; opened on the first call of the
    /// session.
    pub fn store(&self) -> &super::services::Store {
        self.chain.services().store(self.config, self.log)
    }

    /// The time now, by the session's clock (fixed in tests, see
    /// [`super::services::Clock::from_config`]).
    pub fn now(&self) -> std::time::SystemTime {
        self.chain.services().now(self.config, self.log)
    }

    /// qpsmtpd's `is_immune`: relay clients and whitelisted hosts or senders are exempt
    /// from content policy.
    pub fn is_immune(&self) -> bool {
        immune(self.conn, self.txn)
    }
}

/// [`Context::is_immune`] for a connection and transaction.
pub fn immune(conn: &Connection, txn: &Transaction) -> bool {
    conn.relay_client
        || conn.notes.get("whitelisthost").is_some_and(|v| truthy(v))
        || txn.notes.get("whitelistsender").is_some_and(|v| truthy(v))
}

/// Perl truthiness for note values: empty and `0` are false.
pub fn truthy(v: &str) -> bool {
    !v.is_empty() && v != "0"
}
