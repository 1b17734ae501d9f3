//! `qpsmtpd-rs --check`: validates the config directory and the plugin chain without a
//! connection, the way a session would load them, and prints what a session would run.
//!
//! Started as root it first switches to the configured account exactly as a session
//! does, so a file the service user cannot read is found here and not by the first client.
//! Like a session, it opens the TLS files before the switch (a key only root may read
//! works), and checks everything else (spool, ticket-key directory) as the service user.
//! It opens no connection and writes nothing (log files and spool files are only opened
//! by sessions), so it can run as `ExecStartPre=` of the socket unit and in a site's CI.
//! The report goes to `out`; problems and warnings go to `err`, one line each.

use std::io::Write;
use std::path::{Path, PathBuf};

use nix::unistd::{AccessFlags, access, geteuid};

use crate::auth::{Stored, looks_like_a_hash, stored};
use crate::config::{Config, Entry, TOML_FILE};
use crate::peer::{self, Overrides, SocketFacts};
use crate::plugin::{Chain, Hook, registry};
use crate::privileges::{self, Target};
use crate::session::Session;
use crate::startup::{self, Options};
use crate::tls::preopen::{Preopened, preopen};

/// What to check.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The config directory.
    pub config_dir: PathBuf,
    /// qmail's control directory (the per-file fallback).
    pub qmail_control: Option<PathBuf>,
    /// `--allow-root` was given.
    pub allow_root: bool,
}

/// Problems found so far, written as they are found.
struct Report<'a> {
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    problems: usize,
}

impl Report<'_> {
    fn item(&mut self, key: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{key:<18}{value}");
    }
    fn problem(&mut self, what: impl std::fmt::Display) {
        self.problems += 1;
        let _ = writeln!(self.err, "error: {what}");
    }
    fn warning(&mut self, what: impl std::fmt::Display) {
        let _ = writeln!(self.err, "warning: {what}");
    }
}

/// Runs the check; `true` when nothing is wrong (warnings allowed).
pub fn run(opts: &CheckOptions, out: &mut dyn Write, err: &mut dyn Write) -> bool {
    let mut r = Report {
        out,
        err,
        problems: 0,
    };
    let _ = writeln!(r.out, "qpsmtpd-rs {} --check", crate::VERSION);
    r.item("config directory", opts.config_dir.display());
    let config = match Config::open(&opts.config_dir, opts.qmail_control.clone()) {
        Ok(c) => c,
        Err(e) => {
            r.problem(e);
            return finish(&mut r);
        }
    };
    let toml = opts.config_dir.join(TOML_FILE);
    if toml.exists() {
        r.item(TOML_FILE, toml.display());
        for file in config.shadowed_files() {
            r.warning(format_args!(
                "{} is ignored: {TOML_FILE} sets the same name and wins",
                file.display()
            ));
        }
    }
    if let Some(control) = &opts.qmail_control {
        r.item("qmail fallback", control.display());
    }
    let preopened = account(&mut r, &config, opts.allow_root);
    drop(config);
    match startup::open(options(opts)) {
        Ok(mut session) => {
            session.set_tls_preopened(preopened);
            describe(&mut r, &mut session, &opts.config_dir)
        }
        Err(failure) => r.problem(failure.error),
    }
    finish(&mut r)
}

/// Who sessions run as; started as root, becomes that account for the rest of the check,
/// after opening the TLS files as a session does.
fn account(r: &mut Report<'_>, config: &Config, allow_root: bool) -> Option<Preopened> {
    let target = match privileges::target(config) {
        Ok(t) => t,
        Err(e) => {
            r.problem(e);
            return None;
        }
    };
    if !geteuid().is_root() {
        let me = crate::names::user_by_uid(geteuid().as_raw())
            .ok()
            .flatten()
            .map_or_else(String::new, |u| u.name);
        r.item(
            "runs as",
            format_args!("{me} (uid {}): started unprivileged", geteuid()),
        );
        if let Target::Account(a) = &target {
            r.item("user when root", a);
        }
        return None;
    }
    match target {
        Target::Account(a) => {
            let preopened = preopen(config);
            match privileges::become_account(&a) {
                Ok(()) => r.item("runs as", a),
                Err(e) => r.problem(e),
            }
            return preopened;
        }
        Target::Root => {
            r.item("runs as", "root (the config file `user` says root)");
            r.warning("sessions will run as root");
        }
        Target::Unset if allow_root => {
            r.item("runs as", "root (--allow-root)");
            r.warning("sessions will run as root");
        }
        Target::Unset => r.problem(privileges::PrivError::RootRefused),
    }
    None
}

/// Start-up options for a session that never talks to anyone.
fn options(opts: &CheckOptions) -> Options {
    let conn = peer::connection(
        &peer::connection_id(),
        &|_| None,
        &SocketFacts::default(),
        &Overrides::default(),
    );
    Options {
        config_dir: opts.config_dir.clone(),
        qmail_control: opts.qmail_control.clone(),
        conn,
        sinks: None,
    }
}

/// The settings and the chain a session would run.
fn describe(r: &mut Report<'_>, session: &mut Session, dir: &Path) {
    settings(r, session);
    // The certificate is otherwise read only when a client asks for TLS: find out now.
    match session.tls_check() {
        None => {}
        Some(Ok(report)) => {
            r.item(
                "tls",
                format_args!("certificate {} and its key load", report.cert),
            );
            r.item("tls tickets", report.tickets);
            for w in report.warnings {
                r.warning(w);
            }
        }
        Some(Err(e)) => r.problem(format_args!("tls: {e}")),
    }
    auth_entries(r, session);
    logging(r, session, dir);
    chain(r, session, dir);
}

/// `me`, rlimits, sizes, timeouts and the spool directory.
fn settings(r: &mut Report<'_>, session: &Session) {
    let s = session.settings();
    r.item("me", &s.me);
    match privileges::limits(session.config()) {
        Ok(l) if l.is_empty() => r.item("rlimits", "none"),
        Ok(l) => {
            let shown: Vec<String> = l
                .iter()
                .map(|l| format!("{} {}", l.name, privileges::show_value(l.value)))
                .collect();
            r.item("rlimits", shown.join(", "));
        }
        Err(e) => r.problem(e),
    }
    let size = if s.databytes == 0 {
        "no limit".to_string()
    } else {
        format!("{} bytes", s.databytes)
    };
    r.item("databytes", size);
    r.item(
        "timeouts",
        format_args!(
            "command {} s, data {} s per line and {} s per message",
            s.command_timeout.as_secs(),
            s.data_timeout.as_secs(),
            s.data_deadline.as_secs()
        ),
    );
    r.item("spool_dir", s.spool_dir.display());
    if access(&s.spool_dir, AccessFlags::W_OK | AccessFlags::X_OK).is_err() || !s.spool_dir.is_dir() {
        r.problem(format_args!(
            "spool_dir {} is not a directory this user can write",
            s.spool_dir.display()
        ));
    }
}

/// Where log lines go.
fn logging(r: &mut Report<'_>, session: &Session, dir: &Path) {
    match session.config().lines("logging") {
        Ok(lines) if lines.is_empty() => r.item(
            "logging",
            "default: syslog (mail) under a super-server, stderr by hand",
        ),
        Ok(lines) => {
            for e in lines.entries() {
                r.item(
                    "logging",
                    format_args!("{}  ({})", e.text, origin(&e.file, e.line, dir)),
                );
            }
        }
        Err(e) => r.problem(e),
    }
}

/// The plugins in the order their hooks run, with their hooks and where they are listed.
fn chain(r: &mut Report<'_>, session: &Session, dir: &Path) {
    let plugins = session.chain().plugins();
    if plugins.is_empty() {
        r.warning("no plugins: every RCPT TO gets 450 and no mail is accepted");
    }
    let _ = writeln!(r.out, "plugins, in the order their hooks run:");
    let hooks: Vec<String> = plugins
        .iter()
        .map(|p| match p.hooks.as_slice() {
            [] => "(no hooks)".to_string(),
            hooks => hooks.iter().map(|h| h.name()).collect::<Vec<_>>().join(" "),
        })
        .collect();
    let width = plugins.iter().map(|p| p.spec.name.len()).max().unwrap_or(0);
    let hooks_width = hooks.iter().map(String::len).max().unwrap_or(0);
    for (i, (p, hooks)) in plugins.iter().zip(&hooks).enumerate() {
        let _ = writeln!(
            r.out,
            "{:>4}. {:<width$}  {:<hooks_width$}  {}",
            i + 1,
            p.spec.name,
            hooks,
            origin(&p.spec.file, p.spec.line, dir),
        );
    }
}

/// AUTH set-ups that cannot work as meant: `flat_auth_pw` entries that can never match
/// (unknown scheme, malformed hash), `require_auth` with nothing to authenticate against
/// or after a mail plugin, AUTH that is never offered.
fn auth_entries(r: &mut Report<'_>, session: &Session) {
    let chain = session.chain();
    if loaded(chain, "auth/auth_flat_file") {
        match session.config().lines("flat_auth_pw") {
            Ok(lines) => lines.entries().iter().for_each(|e| password_entry(r, e)),
            Err(e) => r.problem(e),
        }
    }
    let auth_hooks = [Hook::Auth, Hook::AuthPlain, Hook::AuthLogin, Hook::AuthCramMd5];
    let auth = auth_hooks.iter().any(|h| chain.has(*h));
    if loaded(chain, "require_auth") && !auth {
        r.warning("require_auth is loaded but no auth plugin: every MAIL will be refused");
    }
    mail_plugins_before_require_auth(r, chain);
    let tls_before_auth = session
        .config()
        .first("tls_before_auth")
        .ok()
        .flatten()
        .is_none_or(|v| v != "0");
    if auth && tls_before_auth && !session.tls_available() {
        r.warning(
            "AUTH is never offered unless the super-server does TLS (sslserver): \
             tls_before_auth keeps it for encrypted connections and the tls plugin is not \
             loaded (load it, or set tls_before_auth 0)",
        );
    }
}

/// Is this built-in plugin (by its canonical name) in the chain?
fn loaded(chain: &Chain, name: &str) -> bool {
    chain
        .plugins()
        .iter()
        .any(|p| registry::canonical(p.spec.base()) == name)
}

/// A `flat_auth_pw` entry that never matches, or whose hash string is its password.
fn password_entry(r: &mut Report<'_>, e: &Entry) {
    let pass = e.text.split_once(':').map_or("", |(_, pass)| pass);
    if let Stored::Unusable(why) = stored(pass) {
        r.warning(format_args!(
            "{}, line {}: {why}: this entry never matches",
            e.file.display(),
            e.line
        ));
    } else if let Some(what) = looks_like_a_hash(pass) {
        r.warning(format_args!(
            "{}, line {}: looks like {what}, but is compared as clear text, so \
             the hash string itself is the password (such hashes cannot be \
             checked); write {{PLAIN}}<password> if it really is the password",
            e.file.display(),
            e.line
        ));
    }
}

/// Hooks stop at the first answer: an OK from a mail plugin listed before require_auth
/// would let a client past it without AUTH.
fn mail_plugins_before_require_auth(r: &mut Report<'_>, chain: &Chain) {
    let mail_plugins: Vec<_> = chain
        .plugins()
        .iter()
        .filter(|p| p.hooks.contains(&Hook::Mail))
        .collect();
    if let Some(at) = mail_plugins
        .iter()
        .position(|p| registry::canonical(p.spec.base()) == "require_auth")
    {
        for p in &mail_plugins[..at] {
            r.warning(format_args!(
                "{} runs its mail hook before require_auth: if it answers OK, a client sends \
                 without AUTH (list require_auth first)",
                p.spec.name
            ));
        }
    }
}

/// `plugins line 4`, with the directory left out when it is the config directory.
fn origin(file: &Path, line: usize, dir: &Path) -> String {
    let shown = file.strip_prefix(dir).unwrap_or(file).display().to_string();
    if line == 0 {
        shown
    } else {
        format!("{shown} line {line}")
    }
}

fn finish(r: &mut Report<'_>) -> bool {
    if r.problems == 0 {
        let _ = writeln!(r.out, "ok");
        return true;
    }
    let _ = writeln!(
        r.err,
        "check failed: {} problem{}",
        r.problems,
        if r.problems == 1 { "" } else { "s" }
    );
    false
}
