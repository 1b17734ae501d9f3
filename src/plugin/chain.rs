//! The ordered plugin chain: loading `config/plugins` and running hooks as qpsmtpd's
//! `run_hooks` does (lib/Qpsmtpd.pm; the rules are in plugins/README.md, "Hooks").

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::spec::parse_spec;
use super::{
    Args, AuthMechanism, Context, Env, Hook, Offers, Outcome, Plugin, PluginSpec, Services, Verdict, registry,
};
use crate::config::{Config, ConfigError, Lines};
use crate::connection::Connection;
use crate::log::{Level, Logger};
use crate::reply::Reply;
use crate::transaction::Transaction;

/// A plugin line that cannot be loaded: the client gets `421`, the log names file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The config file with the bad line.
    pub file: PathBuf,
    /// The line number (0 if unknown).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "{}, line {}: {}", self.file.display(), self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file.display(), self.message)
        }
    }
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> LoadError {
        match e {
            ConfigError::Read { path, reason } => LoadError {
                file: path,
                line: 0,
                message: format!("cannot read: {reason}"),
            },
            ConfigError::Invalid { path, line, reason } => LoadError {
                file: path,
                line,
                message: reason,
            },
        }
    }
}

/// What one hook call works on.
struct Call<'c> {
    conn: &'c mut Connection,
    txn: &'c mut Transaction,
    env: Env<'c>,
    replies: &'c mut Vec<Reply>,
}

/// One loaded plugin.
pub struct Loaded {
    /// How it was configured.
    pub spec: PluginSpec,
    /// The hooks it registered.
    pub hooks: Vec<Hook>,
    /// What it offers the session, as it said (see [`Chain::offers`] for the AUTH
    /// mechanisms that follow from its hooks).
    pub offers: Offers,
    plugin: Box<dyn Plugin>,
}

/// The plugins in config order, indexed by hook.
pub struct Chain {
    plugins: Vec<Loaded>,
    by_hook: Vec<Vec<usize>>,
    config_depth: Cell<u8>,
    services: Services,
}

impl Default for Chain {
    fn default() -> Chain {
        Chain::new()
    }
}

impl Chain {
    /// An empty chain.
    pub fn new() -> Chain {
        Chain {
            plugins: Vec::new(),
            by_hook: vec![Vec::new(); Hook::COUNT],
            config_depth: Cell::new(0),
            services: Services::default(),
        }
    }

    /// Ends the chain when the process is about to exit: plugins and services are dropped
    /// as usual (a plugin may flush a file, wait for a child, remove a spool file); the
    /// chain's own plain memory (specs, hook and offer lists, the per-hook index) is left to
    /// the exit (about 12,000 instructions with 20 plugins).
    pub fn end_for_exit(self) {
        for loaded in self.plugins {
            drop(loaded.plugin);
            std::mem::forget((loaded.spec, loaded.hooks, loaded.offers));
        }
        std::mem::forget(self.by_hook);
        drop(self.services);
    }

    /// Adds a plugin at the end of the chain.
    pub fn push(&mut self, spec: PluginSpec, plugin: Box<dyn Plugin>) {
        let hooks = plugin.hooks();
        let offers = plugin.offers();
        let index = self.plugins.len();
        // Loading reserves room for every plugin line; each hook's list gets as much (up
        // to 64) on its first plugin, so that none is grown a plugin at a time.
        let room = self.plugins.capacity().min(64);
        for hook in &hooks {
            let list = &mut self.by_hook[hook.index()];
            if list.last() != Some(&index) {
                list.reserve(room.saturating_sub(list.len()));
                list.push(index);
            }
        }
        self.plugins.push(Loaded {
            spec,
            hooks,
            offers,
            plugin,
        });
    }

    /// Loads every line of `config/plugins`. Unknown plugins and arguments a plugin
    /// refuses are errors here, before any client input is read.
    pub fn load(config: &Config) -> Result<Chain, LoadError> {
        let lines = config.lines("plugins")?;
        let mut chain = Chain::new();
        chain.plugins.reserve_exact(lines.len());
        let mut file: Rc<Path> = Rc::from(Path::new(""));
        for entry in lines.each() {
            if file.as_os_str() != entry.file.as_os_str() {
                file = Rc::from(entry.file);
            }
            let spec = parse_spec(entry.text, file.clone(), entry.line)?;
            let plugin = registry::build(&spec, config).map_err(|e| LoadError {
                file: entry.file.to_path_buf(),
                line: entry.line,
                message: e.to_string(),
            })?;
            chain.push(spec, plugin);
        }
        Ok(chain)
    }

    /// The loaded plugins in order.
    pub fn plugins(&self) -> &[Loaded] {
        &self.plugins
    }

    /// What the plugins offer together (see [`Offers::add`]); a plugin that names no AUTH
    /// mechanism offers those whose hooks it registers.
    pub fn offers(&self) -> Offers {
        let mut all = Offers::default();
        for p in &self.plugins {
            all.add(&p.offers);
            if p.offers.auth.is_empty() {
                all.auth.extend(AuthMechanism::from_hooks(&p.hooks));
            }
        }
        all.auth.sort();
        all.auth.dedup();
        all
    }

    /// The session's services (DNS, state store, clock), shared by all its plugins.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Does any plugin register this hook?
    pub fn has(&self, hook: Hook) -> bool {
        !self.by_hook[hook.index()].is_empty()
    }

    /// Runs a hook: plugins in order until one answers something other than `DECLINED`.
    /// A plugin that panics is logged and skipped, as qpsmtpd skips one that dies. After
    /// each answer the `deny` or `ok` hooks hear about it.
    pub fn run(
        &self,
        hook: Hook,
        conn: &mut Connection,
        txn: &mut Transaction,
        env: Env<'_>,
        replies: &mut Vec<Reply>,
        args: Args<'_>,
    ) -> Outcome {
        let mut call = Call {
            conn,
            txn,
            env,
            replies,
        };
        // When every plugin declines, the last one's message still counts (qpsmtpd
        // answers `451 queue error (open)` from a queue plugin's DECLINED).
        let mut last = Outcome::declined();
        for &index in &self.by_hook[hook.index()] {
            let loaded = &self.plugins[index];
            let Some(out) = self.run_one(loaded, hook, &mut call, args) else {
                continue;
            };
            self.tell_decision(hook, &loaded.spec.name, &out, &mut call);
            if out.verdict != Verdict::Declined {
                return out;
            }
            last = out;
        }
        last
    }

    /// One plugin's answer, its own replies checked; `None` when it panicked (logged).
    fn run_one(&self, loaded: &Loaded, hook: Hook, call: &mut Call<'_>, args: Args<'_>) -> Option<Outcome> {
        let (name, log) = (loaded.spec.name.as_str(), call.env.log);
        let before = call.replies.len();
        let mut cx = Context {
            conn: &mut *call.conn,
            txn: &mut *call.txn,
            config: call.env.config,
            chain: self,
            log,
            me: call.env.me,
            replies: &mut *call.replies,
            plugin: name,
            hook,
            log_adjust: loaded.spec.log_adjust,
        };
        let out = match catch_unwind(AssertUnwindSafe(|| loaded.plugin.run(hook, &mut cx, args))) {
            Ok(out) => out,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                let line = format!("FATAL PLUGIN ERROR: {what}");
                log.write(Level::Crit, Some(name), Some(hook.name()), &line);
                return None;
            }
        };
        if call.replies.len() > before {
            let log_error = |msg: &str| log.write(Level::Error, Some(name), Some(hook.name()), msg);
            check_own_replies(hook, out.verdict, call.replies, before, &log_error);
        }
        if log.enabled(Level::Debug) {
            let line = format!("returned {} {}", out.verdict, out.msg.join(" "));
            log.write(Level::Debug, Some(name), Some(hook.name()), &line);
        }
        Some(out)
    }

    /// The `deny` or `ok` hooks hear what a plugin answered (not about their own answers,
    /// nor about `logging` and `config`).
    fn tell_decision(&self, hook: Hook, plugin: &str, out: &Outcome, call: &mut Call<'_>) {
        if matches!(hook, Hook::Deny | Hook::Ok | Hook::Logging | Hook::Config) {
            return;
        }
        let side = if out.verdict.is_deny() {
            Hook::Deny
        } else {
            Hook::Ok
        };
        if self.has(side) {
            let decision = Args::Decision {
                plugin,
                verdict: out.verdict,
                msg: &out.msg,
            };
            let Call {
                conn,
                txn,
                env,
                replies,
            } = call;
            self.run(side, conn, txn, *env, replies, decision);
        }
    }

    /// A config item: `config` hooks first (an `OK` answer's lines are the value), then
    /// the config directory. `config` hooks see an empty connection and transaction.
    pub fn config(&self, name: &str, config: &Config, log: &Logger) -> Result<Lines, ConfigError> {
        let depth = self.config_depth.get();
        if self.has(Hook::Config) && depth < 4 {
            self.config_depth.set(depth + 1);
            let mut conn = Connection::new(log.id(), "");
            let mut txn = Transaction::new(String::new());
            let mut replies = Vec::new();
            let env = Env { config, log, me: "" };
            let out = self.run(
                Hook::Config,
                &mut conn,
                &mut txn,
                env,
                &mut replies,
                Args::Config { name },
            );
            self.config_depth.set(depth);
            if out.verdict == Verdict::Ok {
                return Ok(Lines::from_texts(&out.msg, Path::new("(config hook)")));
            }
        }
        config.lines(name)
    }
}

/// The success codes a plugin's own reply may have at a hook where it may send one (with
/// `DONE`), by RFC 5321 §4.3.2; `None` where a reply of its own is not checked (a command
/// the plugin implements itself, AUTH's exchanges); `Some(&[])` where only a 4xx or 5xx
/// may be sent (DATA: `DONE` does not start the message, so a `354` would make the
/// client send it as commands).
fn own_reply_codes(hook: Hook) -> Option<&'static [u16]> {
    Some(match hook {
        Hook::UnrecognizedCommand | Hook::Auth | Hook::AuthPlain | Hook::AuthLogin | Hook::AuthCramMd5 => {
            return None;
        }
        Hook::Connect => &[220],
        Hook::Helo | Hook::Ehlo | Hook::Mail | Hook::Noop => &[250],
        Hook::Rcpt | Hook::RcptPost => &[250, 251],
        Hook::Data => &[],
        Hook::DataPost | Hook::QueuePre | Hook::Queue => &[250],
        Hook::Vrfy => &[250, 251, 252],
        Hook::Help => &[211, 214],
        Hook::Quit => &[221],
        // No reply is due here: one would answer the client's next command.
        _ => &[0],
    })
}

/// A plugin's own replies (`cx.respond`, an external plugin's `reply` lines) must fit the
/// command the client waits on, or the client would take them as the answer to a later
/// one: they count only with `DONE`, only where a reply is due, one per command, and with
/// a code that command can have (a 4xx or 5xx always can). Anything else is logged; a
/// reply with a code the command cannot have is replaced by a temporary failure.
fn check_own_replies(
    hook: Hook,
    verdict: Verdict,
    replies: &mut Vec<Reply>,
    from: usize,
    log: &dyn Fn(&str),
) {
    let Some(allowed) = own_reply_codes(hook) else {
        return;
    };
    let codes = |r: &[Reply]| {
        r.iter()
            .map(|r| r.code.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if allowed == [0] || verdict != Verdict::Done {
        log(&format!(
            "its own reply ({}) dropped: a plugin replies itself only with DONE, and only where the client waits for a reply",
            codes(&replies[from..])
        ));
        replies.truncate(from);
        return;
    }
    if replies.len() > from + 1 {
        log(&format!(
            "{} replies for one command ({}); only the first is sent",
            replies.len() - from,
            codes(&replies[from..])
        ));
        replies.truncate(from + 1);
    }
    let reply = &mut replies[from];
    if reply.code >= 400 || allowed.contains(&reply.code) {
        return;
    }
    let instead = if hook == Hook::Connect {
        Reply::new(
            421,
            "4.3.0",
            "Service temporarily unavailable; please try again later",
        )
    } else {
        Reply::new(451, "4.3.0", "Temporary local problem; please try again later")
    };
    log(&format!(
        "replied {} at {hook}, which that command cannot have; {} sent instead",
        reply.code, instead.code
    ));
    *reply = instead;
}

#[cfg(test)]
mod tests;
