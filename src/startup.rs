//! Start-up: open the config directory, set up logging, load the plugins, read the
//! settings. Everything that can be wrong with the config is found here, before the
//! greeting; the caller answers `421` and exits non-zero.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::log::{LogSink, Logger, StderrSink, configured_level, stderr_is_safe};
use crate::plugin::spec::parse_spec;
use crate::plugin::{Chain, LoadError, registry};
use crate::session::{Session, Setup};

/// What a session is started from.
pub struct Options {
    /// The config directory.
    pub config_dir: PathBuf,
    /// qmail's control directory, the per-file fallback (`$QMAIL/control`).
    pub qmail_control: Option<PathBuf>,
    /// Connection facts.
    pub conn: Connection,
    /// Log sinks to use instead of `config/logging` (tests).
    pub sinks: Option<Vec<Box<dyn LogSink>>>,
}

/// Why a session could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// A config file could not be read or parsed.
    Config(ConfigError),
    /// A plugin line could not be loaded.
    Load(LoadError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Config(e) => write!(f, "config error: {e}"),
            StartError::Load(e) => write!(f, "plugin error: {e}"),
        }
    }
}

impl From<ConfigError> for StartError {
    fn from(e: ConfigError) -> StartError {
        StartError::Config(e)
    }
}

impl From<LoadError> for StartError {
    fn from(e: LoadError) -> StartError {
        StartError::Load(e)
    }
}

/// A start-up failure and whether the configured logging already recorded it.
#[derive(Debug)]
pub struct StartFailure {
    /// What went wrong.
    pub error: StartError,
    /// Was it written to the configured log destination?
    pub logged: bool,
}

/// The line sent to the client when the config is broken (exit status 1 follows).
pub fn refusal(me: &str) -> String {
    format!("421 4.3.0 {me} Service unavailable: configuration error; closing connection\r\n")
}

/// `$QMAIL/control` (default `/var/qmail/control`) if that directory exists.
pub fn qmail_control(qmail_env: Option<String>) -> Option<PathBuf> {
    let base = qmail_env
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| "/var/qmail".to_string());
    let dir = Path::new(&base).join("control");
    dir.is_dir().then_some(dir)
}

/// Opens everything a session needs.
pub fn open(opts: Options) -> Result<Session, StartFailure> {
    open_with(opts, None)
}

/// [`open`], with the config directory already opened by the account that serves (a
/// process that started as root and stays root), if there is one.
pub fn open_with(opts: Options, opened: Option<Config>) -> Result<Session, StartFailure> {
    let unlogged = |error: StartError| StartFailure { error, logged: false };
    // After the switch: the account that serves reads its config (README Differences 33).
    let config = match opened {
        Some(config) => config,
        None => Config::open(&opts.config_dir, opts.qmail_control).map_err(|e| unlogged(e.into()))?,
    }
    .read_by_serving_account();
    // Before any plugin is loaded, so the limits cover everything a session does.
    crate::privileges::apply_limits(&config).map_err(|e| unlogged(e.into()))?;
    let log = match opts.sinks {
        Some(sinks) => Logger::new(&opts.conn.id, sinks),
        None => build_logger(&config, &opts.conn).map_err(unlogged)?,
    };
    let logged = |error: StartError| {
        log.log(
            crate::log::Level::Crit,
            format_args!("{error}; refusing connections until it is fixed"),
        );
        error
    };
    let chain = match Chain::load(&config) {
        Ok(chain) => chain,
        Err(e) => {
            return Err(StartFailure {
                error: logged(e.into()),
                logged: true,
            });
        }
    };
    let conn = opts.conn;
    match Session::new(Setup {
        conn,
        config,
        chain,
        log,
    }) {
        Ok(session) => Ok(session),
        Err(e) => Err(unlogged(e.into())),
    }
}

/// Built-in plugins that start programs which may need their set-id bit: qmail-queue
/// (set-uid `qmailq`), Postfix's `sendmail` (its `postdrop` is set-gid), Exim (set-uid),
/// a checkpassword program (often set-uid to read the password database).
const SET_ID_HANDOFFS: [&str; 5] = [
    "queue/qmail-queue",
    "queue/postfix-queue",
    "queue/sendmail",
    "queue/exim-bsmtp",
    "auth/auth_checkpassword",
];

/// Once the plugins are loaded, and when not serving as root: no program started from
/// now on may gain privileges (`PR_SET_NO_NEW_PRIVS`), unless a configured plugin may need
/// a set-id program: one of [`SET_ID_HANDOFFS`], or any external program (which could
/// start anything). Returns whether it was set.
pub fn forbid_new_privileges(chain: &Chain) -> bool {
    if nix::unistd::geteuid().is_root() || chain.plugins().iter().any(|p| may_need_set_id(p.spec.base())) {
        return false;
    }
    crate::privileges::forbid_new_privileges().is_ok()
}

fn may_need_set_id(base: &str) -> bool {
    let name = registry::canonical(base);
    SET_ID_HANDOFFS.contains(&name) || !registry::BUILTINS.iter().any(|(n, _)| *n == name)
}

/// The sinks `config/logging` names, or the default: stderr when run by hand, syslog
/// under a super-server.
fn build_logger(config: &Config, conn: &Connection) -> Result<Logger, StartError> {
    let lines = config.lines("logging")?;
    let mut sinks: Vec<Box<dyn LogSink>> = Vec::new();
    for entry in lines.each() {
        let spec = parse_spec(entry.text, entry.file.into(), entry.line)?;
        let sink = registry::build_sink(&spec, config).map_err(|e| LoadError {
            file: entry.file.to_path_buf(),
            line: entry.line,
            message: e.to_string(),
        })?;
        sinks.push(sink);
    }
    if lines.is_empty() {
        let level = configured_level(config).map_err(|message| LoadError {
            file: config.dir().join("loglevel"),
            line: 1,
            message,
        })?;
        if conn.network {
            let text = format!("logging/syslog loglevel {}", level as u8);
            let spec = parse_spec(&text, config.dir().join("logging").into(), 0)?;
            sinks.push(registry::build_sink(&spec, config).map_err(|e| LoadError {
                file: spec.file.to_path_buf(),
                line: 0,
                message: e.to_string(),
            })?);
        } else if stderr_is_safe() {
            sinks.push(Box::new(StderrSink::new(level)));
        }
    }
    Ok(Logger::new(&conn.id, sinks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_id_handoffs_and_external_programs_keep_new_privileges() {
        for name in [
            "queue/qmail-queue",
            "auth_checkpassword",
            "queue/sendmail",
            "qmail-spp",
            "rcpt_list",
        ] {
            assert!(may_need_set_id(name), "{name}");
        }
        for name in [
            "queue/maildir",
            "queue/smtp-forward",
            "rcpt_ok",
            "auth_flat_file",
            "check_relay",
        ] {
            assert!(!may_need_set_id(name), "{name}");
        }
    }
}
