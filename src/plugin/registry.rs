//! Built-in plugins, compiled into the binary. Each lives in its own folder under
//! `plugins/` with its README beside its code; this file only names them.
//!
//! The names are qpsmtpd's, so an existing `config/plugins` loads unchanged; the older
//! names Debian's qpsmtpd 0.94 configs use (`check_relay`, ...) load the same plugins.

use super::{BuildError, Plugin, PluginError, PluginSpec};
use crate::config::Config;
use crate::log::LogSink;

#[path = "../../plugins/auth/auth_checkpassword/plugin.rs"]
mod auth_checkpassword;
#[path = "../../plugins/auth/auth_dovecot/plugin.rs"]
mod auth_dovecot;
#[path = "../../plugins/auth/auth_flat_file/plugin.rs"]
mod auth_flat_file;
#[path = "../../plugins/auth/authdeny/plugin.rs"]
mod authdeny;
#[path = "../../plugins/badmailfrom/plugin.rs"]
mod badmailfrom;
#[path = "../../plugins/badrcptto/plugin.rs"]
mod badrcptto;
#[path = "../../plugins/count_unrecognized_commands/plugin.rs"]
mod count_unrecognized_commands;
#[path = "../../plugins/dns_whitelist_soft/plugin.rs"]
mod dns_whitelist_soft;
#[path = "../../plugins/dnsbl/plugin.rs"]
mod dnsbl;
#[path = "../../plugins/dont_require_anglebrackets/plugin.rs"]
mod dont_require_anglebrackets;
#[path = "../../plugins/earlytalker/plugin.rs"]
mod earlytalker;
#[path = "../../plugins/fcrdns/plugin.rs"]
mod fcrdns;
#[path = "../../plugins/helo/plugin.rs"]
mod helo;
#[path = "../../plugins/help/plugin.rs"]
mod help;
#[path = "../../plugins/hosts_allow/plugin.rs"]
mod hosts_allow;
#[path = "../../plugins/logging/file/plugin.rs"]
mod logging_file;
#[path = "../../plugins/logging/syslog/plugin.rs"]
mod logging_syslog;
#[path = "../../plugins/logging/warn/plugin.rs"]
mod logging_warn;
// `loop` is a Rust keyword.
#[path = "../../plugins/loop/plugin.rs"]
mod loop_plugin;
#[path = "../../plugins/naughty/plugin.rs"]
mod naughty;
#[path = "../../plugins/queue/exim-bsmtp/plugin.rs"]
mod queue_exim_bsmtp;
#[path = "../../plugins/queue/lmtp/plugin.rs"]
mod queue_lmtp;
#[path = "../../plugins/queue/maildir/plugin.rs"]
mod queue_maildir;
#[path = "../../plugins/queue/postfix-queue/plugin.rs"]
mod queue_postfix_queue;
#[path = "../../plugins/queue/qmail-queue/plugin.rs"]
mod queue_qmail_queue;
#[path = "../../plugins/queue/sendmail/plugin.rs"]
mod queue_sendmail;
#[path = "../../plugins/queue/smtp-forward/plugin.rs"]
mod queue_smtp_forward;
#[path = "../../plugins/random_error/plugin.rs"]
mod random_error;
#[path = "../../plugins/rcpt_ok/plugin.rs"]
mod rcpt_ok;
#[path = "../../plugins/relay/plugin.rs"]
mod relay;
#[path = "../../plugins/require_auth/plugin.rs"]
mod require_auth;
#[path = "../../plugins/resolvable_fromhost/plugin.rs"]
mod resolvable_fromhost;
#[path = "../../plugins/rhsbl/plugin.rs"]
mod rhsbl;
#[path = "../../plugins/tls/plugin.rs"]
mod tls;
#[path = "../../plugins/uribl/plugin.rs"]
mod uribl;

/// Builds a plugin instance from its config line.
pub type Constructor = fn(&PluginSpec, &Config) -> Result<Box<dyn Plugin>, PluginError>;

/// Builds a log sink from its `config/logging` line.
pub type SinkConstructor = fn(&PluginSpec, &Config) -> Result<Box<dyn LogSink>, PluginError>;

/// The built-in plugins by name.
pub const BUILTINS: &[(&str, Constructor)] = &[
    ("auth/auth_checkpassword", auth_checkpassword::new),
    ("auth/auth_dovecot", auth_dovecot::new),
    ("auth/auth_flat_file", auth_flat_file::new),
    ("auth/authdeny", authdeny::new),
    ("badmailfrom", badmailfrom::new),
    ("badrcptto", badrcptto::new),
    ("count_unrecognized_commands", count_unrecognized_commands::new),
    ("dns_whitelist_soft", dns_whitelist_soft::new),
    ("dnsbl", dnsbl::new),
    ("dont_require_anglebrackets", dont_require_anglebrackets::new),
    ("earlytalker", earlytalker::new),
    ("fcrdns", fcrdns::new),
    ("helo", helo::new),
    ("help", help::new),
    ("hosts_allow", hosts_allow::new),
    ("loop", loop_plugin::new),
    ("naughty", naughty::new),
    ("queue/exim-bsmtp", queue_exim_bsmtp::new),
    ("queue/lmtp", queue_lmtp::new),
    ("queue/maildir", queue_maildir::new),
    ("queue/postfix-queue", queue_postfix_queue::new),
    ("queue/qmail-queue", queue_qmail_queue::new),
    ("queue/sendmail", queue_sendmail::new),
    ("queue/smtp-forward", queue_smtp_forward::new),
    ("random_error", random_error::new),
    ("rcpt_ok", rcpt_ok::new),
    ("relay", relay::new),
    ("rhsbl", rhsbl::new),
    ("require_auth", require_auth::new),
    ("resolvable_fromhost", resolvable_fromhost::new),
    ("tls", tls::new),
    ("uribl", uribl::new),
];

/// The built-in logging plugins (`config/logging`).
pub const LOG_SINKS: &[(&str, SinkConstructor)] = &[
    ("logging/warn", logging_warn::new),
    ("logging/syslog", logging_syslog::new),
    ("logging/file", logging_file::new),
    ("logging/devnull", logging_warn::devnull),
];

/// Other names for built-in plugins: old ones (qpsmtpd ≤ 0.94, Debian's default config) and
/// the auth plugins without their directory.
pub const ALIASES: &[(&str, &str)] = &[
    ("check_relay", "relay"),
    ("check_badmailfrom", "badmailfrom"),
    ("check_badrcptto", "badrcptto"),
    ("check_earlytalker", "earlytalker"),
    // Debian's check_spamhelo loads the whole helo plugin (policy lenient by default).
    ("check_spamhelo", "helo"),
    // Its argument is honoured; Debian's 0.94 wrapper lost it (README Differences 77).
    ("check_loop", "loop"),
    // Named in Debian's plugins file (commented out) and upstream's registry; missing
    // from 0.94 (README Differences 78).
    ("require_resolvable_fromhost", "resolvable_fromhost"),
    // qpsmtpd's auth plugins live in plugins/auth/; a plugin_dirs entry pointing there let
    // configs name them without the directory.
    ("auth_flat_file", "auth/auth_flat_file"),
    ("auth_checkpassword", "auth/auth_checkpassword"),
    ("auth_dovecot", "auth/auth_dovecot"),
    ("authdeny", "auth/authdeny"),
];

/// The current name for a possibly old one.
pub fn canonical(name: &str) -> &str {
    ALIASES
        .iter()
        .find(|(old, _)| *old == name)
        .map_or(name, |(_, new)| new)
}

/// Builds the plugin a config line names.
pub fn build(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, BuildError> {
    let name = canonical(spec.base());
    let refused = |error| BuildError::Refused {
        plugin: spec.name.clone(),
        error,
    };
    if let Some((_, make)) = BUILTINS.iter().find(|(n, _)| *n == name) {
        return make(spec, config).map_err(refused);
    }
    if LOG_SINKS.iter().any(|(n, _)| *n == name) {
        return Err(BuildError::LogSinkInPlugins {
            plugin: spec.name.clone(),
        });
    }
    match super::external::build(spec, config) {
        Ok(Some(plugin)) => Ok(plugin),
        Ok(None) => Err(BuildError::NotFound {
            plugin: spec.name.clone(),
            dirs: super::external::dirs_text(config),
        }),
        Err(e) => Err(refused(e)),
    }
}

/// Builds the log sink a `config/logging` line names.
pub fn build_sink(spec: &PluginSpec, config: &Config) -> Result<Box<dyn LogSink>, BuildError> {
    match LOG_SINKS.iter().find(|(n, _)| *n == spec.base()) {
        Some((_, make)) => make(spec, config).map_err(|error| BuildError::Refused {
            plugin: spec.name.clone(),
            error,
        }),
        None => Err(BuildError::UnknownLogSink {
            plugin: spec.name.clone(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::plugin::Chain;

    /// Every `check_*` wrapper Debian's qpsmtpd 0.94 ships (its plugins directory), and
    /// the registry's `require_resolvable_fromhost`, loads the plugin it wraps: same
    /// hooks, same offers, the old name kept for the log.
    #[test]
    fn the_old_names_load_the_same_plugins() {
        let old_and_new = [
            ("check_earlytalker action log", "earlytalker action log"),
            ("check_relay", "relay"),
            ("check_badmailfrom", "badmailfrom"),
            ("check_badrcptto", "badrcptto"),
            ("check_spamhelo", "helo"),
            ("check_loop", "loop"),
            ("require_resolvable_fromhost", "resolvable_fromhost"),
        ];
        let load = |line: &str| {
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("plugins"), format!("{line}\n")).unwrap();
            let config = Config::open(dir.path(), None).unwrap();
            Chain::load(&config).unwrap_or_else(|e| panic!("{line}: {e}"))
        };
        for (old, new) in old_and_new {
            let (a, b) = (load(old), load(new));
            let (a, b) = (&a.plugins()[0], &b.plugins()[0]);
            assert_eq!(a.hooks, b.hooks, "{old}");
            assert_eq!(a.offers, b.offers, "{old}");
            assert_eq!(a.spec.name, old.split(' ').next().unwrap());
        }
    }
}
