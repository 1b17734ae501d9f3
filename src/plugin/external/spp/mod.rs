//! `qmail-spp`: runs existing qmail-spp plugins unchanged (plugins/EXTERNAL.md, "qmail-spp
//! plugins").
//!
//! The plugins are listed in `smtpplugins` under `[connection]`, `[helo]`, `[mail]`,
//! `[rcpt]` and `[data]`, as qmail-spp reads `control/smtpplugins`. Each is started once
//! per command with qmail-smtpd's environment and qmail-spp's `SMTP*` variables, stdin on
//! `/dev/null`, and its one-letter commands are read from its stdout (qmail-spp's
//! `spp.c`). Unlike qmail-spp, every run has a time budget, a crash or a hang gets the
//! failure policy instead of stalling the session, and the refusals become our verdicts.

pub mod commands;
mod env;
mod run;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::address::Address;
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec};

use super::options::{self, OnFailure, Partial};
use env::Vars;

/// The name in `config/plugins`.
pub const NAME: &str = "qmail-spp";

/// The sections of `smtpplugins` that run (qmail-spp's `[auth]` needs AUTH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Connection,
    Helo,
    Mail,
    Rcpt,
    Data,
}

/// One plugin line: a program, or `:command` for `/bin/sh -c`.
#[derive(Debug, Clone)]
struct Program {
    line: String,
    argv: Vec<String>,
}

/// The qmail-spp runner (one per `qmail-spp` line, per connection).
pub struct Spp {
    sections: Vec<(Section, Vec<Program>)>,
    budget: Duration,
    on_failure: OnFailure,
    workdir: PathBuf,
    /// `NOSPP` was set: qmail-spp is off for this connection.
    disabled: bool,
    state: RefCell<State>,
}

/// What qmail-spp keeps between plugin runs of one connection.
#[derive(Debug, Default)]
struct State {
    /// `A` was answered: no more plugins for this connection.
    off: bool,
    /// `S`/`U` so far.
    vars: Vars,
    helo: Option<String>,
    mail_from: Option<String>,
    rcpt_to: Option<String>,
    /// RCPT commands in this transaction, the current one included.
    rcpt_all: u64,
    /// `H` lines from the connection and HELO sections (every message) and from this
    /// transaction.
    conn_headers: Vec<String>,
    txn_headers: Vec<String>,
    /// `L` errors: from the connection and HELO sections (for the whole connection) and
    /// from this transaction.
    conn_deferred: Vec<(char, String)>,
    txn_deferred: Vec<(char, String)>,
    /// A `C` change still to be made to the envelope: (recipient?, old, new).
    change: Option<(bool, Address, String)>,
}

/// `qmail-spp [hooks-free settings: timeout S, on_failure P] [FILE]`.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Spp, PluginError> {
    let (settings, rest): (Partial, Vec<String>) = options::from_args(&spec.args)?;
    if settings.hooks.is_some() || settings.mode.is_some() {
        return Err("qmail-spp takes no hooks or mode: its sections decide".into());
    }
    if rest.len() > 1 {
        return Err(PluginError::Args(format!(
            "too many arguments: {}",
            rest.join(" ")
        )));
    }
    let file = rest
        .first()
        .cloned()
        .or_else(|| std::env::var("SPPCONFFILE").ok().filter(|f| !f.is_empty()))
        .unwrap_or_else(|| "smtpplugins".to_string());
    if config.source_of(&file).is_none() {
        return Err(PluginError::Config(format!(
            "{file} not found in {} (or $QMAIL/control)",
            config.dir().display()
        )));
    }
    let lines = config.lines(&file)?;
    let workdir = qmail_root().unwrap_or_else(|| super::absolute(config.dir()));
    Ok(Spp {
        sections: sections(lines.iter(), &workdir),
        budget: match settings.timeout {
            Some(t) => t,
            None => super::default_budget(config).map_err(PluginError::Config)?,
        },
        on_failure: settings.on_failure.unwrap_or(OnFailure::TempFail),
        workdir,
        disabled: std::env::var_os("NOSPP").is_some(),
        state: RefCell::new(State::default()),
    })
}

/// qmail's home (`$QMAIL`, else `/var/qmail`), where qmail-smtpd runs and relative plugin
/// paths start, if it exists.
fn qmail_root() -> Option<PathBuf> {
    let root = std::env::var("QMAIL")
        .ok()
        .filter(|q| !q.is_empty())
        .unwrap_or_else(|| "/var/qmail".into());
    let root = PathBuf::from(root);
    root.is_dir().then_some(root)
}

/// Splits `smtpplugins` into its sections, as qmail-spp does: a line starting with `[`
/// switches by its first letter; lines outside a known section are ignored.
fn sections<'a>(lines: impl Iterator<Item = &'a str>, workdir: &Path) -> Vec<(Section, Vec<Program>)> {
    let mut out: Vec<(Section, Vec<Program>)> = Vec::new();
    let mut current: Option<Section> = None;
    for line in lines {
        if let Some(name) = line.strip_prefix('[') {
            current = match name.chars().next() {
                Some('c') => Some(Section::Connection),
                Some('h') => Some(Section::Helo),
                Some('m') => Some(Section::Mail),
                Some('r') => Some(Section::Rcpt),
                Some('d') => Some(Section::Data),
                _ => None,
            };
            continue;
        }
        let Some(section) = current else {
            continue;
        };
        let argv = match line.strip_prefix(':') {
            Some(script) => vec!["/bin/sh".into(), "-c".into(), script.to_string()],
            None => vec![workdir.join(line).to_string_lossy().into_owned()],
        };
        let program = Program {
            line: line.to_string(),
            argv,
        };
        match out.iter_mut().find(|(s, _)| *s == section) {
            Some((_, list)) => list.push(program),
            None => out.push((section, vec![program])),
        }
    }
    out
}

impl Plugin for Spp {
    fn hooks(&self) -> Vec<Hook> {
        vec![
            Hook::Connect,
            Hook::Helo,
            Hook::Ehlo,
            Hook::Mail,
            Hook::Rcpt,
            Hook::Data,
            Hook::DataPostHeaders,
            Hook::ResetTransaction,
        ]
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        if self.disabled {
            return Outcome::declined();
        }
        self.make_change(cx);
        let section = match (hook, args) {
            (Hook::ResetTransaction, _) => return self.reset(),
            (Hook::DataPostHeaders, _) => return self.add_headers(cx),
            (Hook::Connect, _) => Section::Connection,
            (Hook::Helo | Hook::Ehlo, Args::Hello { host, .. }) => {
                self.with_state(|s| s.helo = Some(host.to_string()));
                Section::Helo
            }
            (Hook::Mail, Args::Address { addr, .. }) => {
                self.with_state(|s| {
                    s.mail_from = Some(addr.address());
                    s.rcpt_all = 0;
                });
                Section::Mail
            }
            (Hook::Rcpt, Args::Address { addr, .. }) => {
                self.with_state(|s| {
                    s.rcpt_to = Some(addr.address());
                    s.rcpt_all += 1;
                });
                Section::Rcpt
            }
            (Hook::Data, _) => Section::Data,
            _ => return Outcome::declined(),
        };
        if let Some(out) = self.deferred(section) {
            return out;
        }
        self.run_section(section, cx, args)
    }
}

impl Spp {
    fn with_state<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }

    /// A new transaction: qmail-spp's `spp_rset`.
    fn reset(&self) -> Outcome {
        self.with_state(|s| {
            s.txn_headers.clear();
            s.txn_deferred.clear();
            s.rcpt_all = 0;
            s.change = None;
        });
        Outcome::declined()
    }

    /// `H` lines go right below our Received header, where qmail-smtpd puts them.
    fn add_headers(&self, cx: &mut Context<'_>) -> Outcome {
        let lines: Vec<String> =
            self.with_state(|s| s.conn_headers.iter().chain(&s.txn_headers).cloned().collect());
        let mut at = 0;
        for line in lines {
            match line.split_once(':') {
                Some((name, value)) if !name.is_empty() && !name.contains([' ', '\t']) => {
                    cx.txn
                        .header
                        .add(name, value.strip_prefix(' ').unwrap_or(value), Some(at));
                    at += 1;
                }
                _ => cx.log(
                    Level::Warn,
                    format_args!("H line is not a header, ignored: {line:?}"),
                ),
            }
        }
        Outcome::declined()
    }

    /// An `L` error deferred to this command refuses it.
    fn deferred(&self, section: Section) -> Option<Outcome> {
        let letter = match section {
            Section::Mail => 'M',
            Section::Rcpt => 'R',
            Section::Data => 'D',
            _ => return None,
        };
        let text = self.with_state(|s| {
            s.conn_deferred
                .iter()
                .chain(&s.txn_deferred)
                .find(|(l, _)| *l == letter)
                .map(|(_, t)| t.clone())
        })?;
        let (class, msg) = commands::reply_text(&text)?;
        let verdict = commands::refusal(class, false)?;
        Some(Outcome::with(verdict, msg))
    }

    /// Applies a `C` change once the session has stored the address it was about.
    fn make_change(&self, cx: &mut Context<'_>) {
        let Some((rcpt, old, new)) = self.with_state(|s| s.change.take()) else {
            return;
        };
        let Some(new_addr) = Address::parse(&format!("<{new}>")) else {
            cx.log(
                Level::Warn,
                format_args!("C address {new:?} does not parse; unchanged"),
            );
            return;
        };
        if rcpt {
            if let Some(r) = cx.txn.recipients.iter_mut().rev().find(|r| **r == old) {
                *r = new_addr;
            }
        } else if cx.txn.sender.as_ref() == Some(&old) {
            cx.txn.sender = Some(new_addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_as_qmail_spp_reads_them() {
        let text = [
            "[connection]",
            "plugins/greet",
            "[rcpt]",
            ":echo N",
            "/abs/check",
            "[auth]",
            "plugins/auth",
            "[helo]",
            "h",
        ];
        let s = sections(text.into_iter(), Path::new("/var/qmail"));
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].0, Section::Connection);
        assert_eq!(s[0].1[0].argv, vec!["/var/qmail/plugins/greet"]);
        assert_eq!(s[1].1[0].argv, vec!["/bin/sh", "-c", "echo N"]);
        assert_eq!(s[1].1[1].argv, vec!["/abs/check"]);
        assert_eq!(s[2].0, Section::Helo);
    }
}
