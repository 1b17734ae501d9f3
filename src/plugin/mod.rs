//! The plugin contract: qpsmtpd's hook names and return codes, as a Rust trait.
//!
//! A plugin is loaded from a line of `config/plugins` (`name arg1 arg2 ...`), declares the
//! hooks it wants, and answers each call with an [`Outcome`]: a [`Verdict`] plus message
//! lines. The chain calls plugins in config order and stops at the first verdict that is
//! not `DECLINED` (reference §6). The session turns the final outcome into a reply with
//! qpsmtpd's per-hook table (§6.3). Built-in Rust plugins and external programs implement
//! the same trait, so the chain never knows which kind it is calling.

pub mod chain;
pub mod external;
pub mod registry;

use std::fmt;

use crate::address::Address;
use crate::config::{ConfigError, Lines};
use crate::connection::Connection;
use crate::log::{Level, Logger};
use crate::reply::Reply;
use crate::transaction::Transaction;

pub use chain::{Chain, LoadError};

/// The hooks of qpsmtpd's tcpserver flavour (`Qpsmtpd::Plugin` `@hooks`), in firing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Hook {
    Logging,
    Config,
    UserConfig,
    PostFork,
    PreConnection,
    Connect,
    EhloParse,
    Ehlo,
    HeloParse,
    Helo,
    AuthParse,
    Auth,
    AuthPlain,
    AuthLogin,
    AuthCramMd5,
    RcptParse,
    RcptPre,
    Rcpt,
    RcptPost,
    MailParse,
    Mail,
    MailPre,
    Data,
    DataHeadersEnd,
    DataPostHeaders,
    DataPost,
    QueuePre,
    Queue,
    QueuePost,
    Vrfy,
    Noop,
    Quit,
    ResetTransaction,
    Disconnect,
    PostConnection,
    UnrecognizedCommand,
    Deny,
    Ok,
    ReceivedLine,
    Help,
}

impl Hook {
    /// Every hook, in qpsmtpd's order.
    pub const ALL: [Hook; 40] = [
        Hook::Logging,
        Hook::Config,
        Hook::UserConfig,
        Hook::PostFork,
        Hook::PreConnection,
        Hook::Connect,
        Hook::EhloParse,
        Hook::Ehlo,
        Hook::HeloParse,
        Hook::Helo,
        Hook::AuthParse,
        Hook::Auth,
        Hook::AuthPlain,
        Hook::AuthLogin,
        Hook::AuthCramMd5,
        Hook::RcptParse,
        Hook::RcptPre,
        Hook::Rcpt,
        Hook::RcptPost,
        Hook::MailParse,
        Hook::Mail,
        Hook::MailPre,
        Hook::Data,
        Hook::DataHeadersEnd,
        Hook::DataPostHeaders,
        Hook::DataPost,
        Hook::QueuePre,
        Hook::Queue,
        Hook::QueuePost,
        Hook::Vrfy,
        Hook::Noop,
        Hook::Quit,
        Hook::ResetTransaction,
        Hook::Disconnect,
        Hook::PostConnection,
        Hook::UnrecognizedCommand,
        Hook::Deny,
        Hook::Ok,
        Hook::ReceivedLine,
        Hook::Help,
    ];

    /// The name as qpsmtpd spells it (`post-connection`, `auth-cram-md5`).
    pub fn name(self) -> &'static str {
        match self {
            Hook::Logging => "logging",
            Hook::Config => "config",
            Hook::UserConfig => "user_config",
            Hook::PostFork => "post-fork",
            Hook::PreConnection => "pre-connection",
            Hook::Connect => "connect",
            Hook::EhloParse => "ehlo_parse",
            Hook::Ehlo => "ehlo",
            Hook::HeloParse => "helo_parse",
            Hook::Helo => "helo",
            Hook::AuthParse => "auth_parse",
            Hook::Auth => "auth",
            Hook::AuthPlain => "auth-plain",
            Hook::AuthLogin => "auth-login",
            Hook::AuthCramMd5 => "auth-cram-md5",
            Hook::RcptParse => "rcpt_parse",
            Hook::RcptPre => "rcpt_pre",
            Hook::Rcpt => "rcpt",
            Hook::RcptPost => "rcpt_post",
            Hook::MailParse => "mail_parse",
            Hook::Mail => "mail",
            Hook::MailPre => "mail_pre",
            Hook::Data => "data",
            Hook::DataHeadersEnd => "data_headers_end",
            Hook::DataPostHeaders => "data_post_headers",
            Hook::DataPost => "data_post",
            Hook::QueuePre => "queue_pre",
            Hook::Queue => "queue",
            Hook::QueuePost => "queue_post",
            Hook::Vrfy => "vrfy",
            Hook::Noop => "noop",
            Hook::Quit => "quit",
            Hook::ResetTransaction => "reset_transaction",
            Hook::Disconnect => "disconnect",
            Hook::PostConnection => "post-connection",
            Hook::UnrecognizedCommand => "unrecognized_command",
            Hook::Deny => "deny",
            Hook::Ok => "ok",
            Hook::ReceivedLine => "received_line",
            Hook::Help => "help",
        }
    }

    /// Looks a hook up by name; `-` and `_` are interchangeable (qpsmtpd's `hook_<name>`
    /// method names use `_` for `-`).
    pub fn from_name(name: &str) -> Option<Hook> {
        let norm = |s: &str| s.replace('-', "_");
        let want = norm(name);
        Hook::ALL.into_iter().find(|h| norm(h.name()) == want)
    }

    /// Index into per-hook tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// qpsmtpd's return codes (`Qpsmtpd::Constants`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Accept / stop the chain.
    Ok,
    /// Permanent rejection (5xx).
    Deny,
    /// Temporary rejection (4xx).
    DenySoft,
    /// Permanent rejection, then close the connection (`DENYHARD` is an alias).
    DenyDisconnect,
    /// Temporary rejection, then close the connection.
    DenySoftDisconnect,
    /// No opinion; ask the next plugin.
    Declined,
    /// Stop; the plugin has already replied to the client.
    Done,
}

impl Verdict {
    /// The constant's name as qpsmtpd writes it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "OK",
            Verdict::Deny => "DENY",
            Verdict::DenySoft => "DENYSOFT",
            Verdict::DenyDisconnect => "DENY_DISCONNECT",
            Verdict::DenySoftDisconnect => "DENYSOFT_DISCONNECT",
            Verdict::Declined => "DECLINED",
            Verdict::Done => "DONE",
        }
    }

    /// Parses a constant's name (`DENYHARD` = `DENY_DISCONNECT`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Verdict> {
        Some(match name.to_ascii_uppercase().as_str() {
            "OK" => Verdict::Ok,
            "DENY" => Verdict::Deny,
            "DENYSOFT" => Verdict::DenySoft,
            "DENY_DISCONNECT" | "DENYHARD" => Verdict::DenyDisconnect,
            "DENYSOFT_DISCONNECT" => Verdict::DenySoftDisconnect,
            "DECLINED" => Verdict::Declined,
            "DONE" => Verdict::Done,
            _ => return None,
        })
    }

    /// qpsmtpd's numeric value (900…910).
    pub fn number(self) -> u16 {
        match self {
            Verdict::Ok => 900,
            Verdict::Deny => 901,
            Verdict::DenySoft => 902,
            Verdict::DenyDisconnect => 903,
            Verdict::DenySoftDisconnect => 904,
            Verdict::Declined => 909,
            Verdict::Done => 910,
        }
    }

    /// Is this one of the four rejections?
    pub fn is_deny(self) -> bool {
        matches!(
            self,
            Verdict::Deny | Verdict::DenySoft | Verdict::DenyDisconnect | Verdict::DenySoftDisconnect
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a plugin (or the whole chain) answered: a verdict and its message lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The return code.
    pub verdict: Verdict,
    /// The message, one element per reply line (an element containing `\n` is split).
    pub msg: Vec<String>,
}

impl Outcome {
    /// A verdict with no message.
    pub fn new(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            msg: Vec::new(),
        }
    }

    /// A verdict with a one-line message.
    pub fn with(verdict: Verdict, msg: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            msg: vec![msg.into()],
        }
    }

    /// `DECLINED`.
    pub fn declined() -> Outcome {
        Outcome::new(Verdict::Declined)
    }

    /// `OK`.
    pub fn ok() -> Outcome {
        Outcome::new(Verdict::Ok)
    }

    /// `OK` with a message (for `*_pre`, `config`, `received_line` and queue answers).
    pub fn ok_with(msg: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Ok, msg)
    }

    /// The first message line, if any.
    pub fn first_msg(&self) -> Option<&str> {
        self.msg.first().map(String::as_str)
    }
}

/// A config error inside a hook becomes a temporary failure: an unreadable list must not
/// turn into "nothing is listed" (qpsmtpd only warned and carried on).
impl From<ConfigError> for Outcome {
    fn from(_: ConfigError) -> Outcome {
        Outcome::with(
            Verdict::DenySoft,
            "4.3.0 Local configuration problem; please try again later",
        )
    }
}

/// ESMTP parameters of MAIL/RCPT (`KEY=VALUE`; keys lower-cased as qpsmtpd passes them).
pub type Params = Vec<(String, Option<String>)>;

/// The arguments of one hook call (qpsmtpd's `@args` after `$self, $transaction`).
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// Hooks without arguments.
    None,
    /// `helo`, `ehlo`: the host name and any extra words.
    Hello {
        /// The first word after the verb.
        host: &'a str,
        /// Further words.
        extra: &'a [String],
    },
    /// `helo_parse`, `ehlo_parse`, `mail_parse`, `rcpt_parse`, `auth_parse`: the raw
    /// argument string. A plugin answers `OK` with the parsed parts as message lines
    /// (host and words; or address then parameters) or `DENY` with the 501 text.
    Parse {
        /// Everything after the verb.
        line: &'a str,
    },
    /// `mail_pre`, `rcpt_pre`: the address string before parsing; `OK` with a new string
    /// as the first message line replaces it.
    PreAddress {
        /// The address as the client wrote it.
        addr: &'a str,
        /// The parameters.
        params: &'a Params,
    },
    /// `mail`, `rcpt`: the parsed address and its parameters.
    Address {
        /// The sender or recipient.
        addr: &'a Address,
        /// The parameters.
        params: &'a Params,
    },
    /// `vrfy`: the argument (qpsmtpd passes none; given here for convenience).
    Vrfy {
        /// What the client asked about.
        arg: &'a str,
    },
    /// `help`: the topic, if any.
    Help {
        /// The words after HELP.
        topic: Option<&'a str>,
    },
    /// `unrecognized_command`: the lower-cased verb and the rest of the line.
    Unrecognized {
        /// The verb, lower-cased.
        cmd: &'a str,
        /// The rest of the line.
        rest: &'a str,
    },
    /// `deny`, `ok`: which plugin decided what.
    Decision {
        /// The deciding plugin's name.
        plugin: &'a str,
        /// Its verdict.
        verdict: Verdict,
        /// Its message.
        msg: &'a [String],
    },
    /// `config`: the item asked for. `OK` with message lines overrides the file.
    Config {
        /// The config item name.
        name: &'a str,
    },
    /// `received_line`: the protocol word and the TLS/auth comments; `OK` with lines
    /// replaces the Received header's value.
    ReceivedLine {
        /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`.
        smtp: &'a str,
        /// `(smtp-auth username U, mechanism M)` or empty.
        auth: &'a str,
        /// `(TLS details)` or empty.
        tls: &'a str,
    },
    /// `auth`, `auth-plain`, `auth-login`, `auth-cram-md5`.
    Auth {
        /// The mechanism, lower-cased.
        mechanism: &'a str,
        /// The user name.
        user: &'a str,
        /// The clear-text password (PLAIN, LOGIN).
        password: Option<&'a str>,
        /// The client's digest (CRAM-MD5).
        digest: Option<&'a str>,
        /// The challenge sent (CRAM-MD5).
        ticket: Option<&'a str>,
    },
}

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
    /// A config item, asking `config` hooks first (qpsmtpd §10.1) and then the files.
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

    /// qpsmtpd's `is_immune`: relay clients and whitelisted hosts or senders are exempt
    /// from content policy.
    pub fn is_immune(&self) -> bool {
        self.conn.relay_client
            || self.conn.notes.get("whitelisthost").is_some_and(|v| truthy(v))
            || self.txn.notes.get("whitelistsender").is_some_and(|v| truthy(v))
    }
}

/// Perl truthiness for note values: empty and `0` are false.
pub fn truthy(v: &str) -> bool {
    !v.is_empty() && v != "0"
}

/// One instance of a plugin, as the chain holds it.
pub trait Plugin {
    /// The hooks this instance registers, in registration order.
    fn hooks(&self) -> Vec<Hook>;

    /// Runs one hook. Only hooks from [`Plugin::hooks`] are ever called.
    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome;

    /// The certificate files of a plugin that makes STARTTLS possible (the `tls` plugin).
    /// The core offers STARTTLS while some plugin answers; the files are read only when a
    /// client asks for TLS.
    fn tls_files(&self) -> Option<crate::tls::TlsFiles> {
        None
    }
}

/// How a plugin line of `config/plugins` was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The name as written (`relay`, `queue/maildir`, `relay:0`).
    pub name: String,
    /// The name without an `:N` instance suffix.
    pub base: String,
    /// The arguments after the name.
    pub args: Vec<String>,
    /// The file the line came from.
    pub file: std::path::PathBuf,
    /// The line number in that file.
    pub line: usize,
    /// `loglevel N` / `loglevel +N` from the arguments (taken out of `args`).
    pub log_adjust: Option<LogAdjust>,
}

/// qpsmtpd's per-plugin `loglevel` argument (`Qpsmtpd::Plugin::adjust_log_level`): a level
/// (0–7 or a name) at which all of the plugin's lines are logged, or `+N`/`-N` to move
/// each line that many levels (higher numbers are more verbose, so `+1` hides more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAdjust {
    /// Every line at this level.
    Fixed(Level),
    /// Every line moved by this many levels.
    Shift(i8),
}

impl LogAdjust {
    /// Parses `6`, `LOGINFO`, `+1`, `-2`.
    pub fn parse(s: &str) -> Option<LogAdjust> {
        if let Some(level) = Level::parse(s) {
            return Some(LogAdjust::Fixed(level));
        }
        let (sign, digit) = s.split_at_checked(1)?;
        let n: i8 = digit.parse().ok().filter(|n| (0..=7).contains(n))?;
        match sign {
            "+" => Some(LogAdjust::Shift(n)),
            "-" => Some(LogAdjust::Shift(-n)),
            _ => None,
        }
    }

    /// The level a line logged at `level` ends up at.
    pub fn apply(self, level: Level) -> Level {
        match self {
            LogAdjust::Fixed(l) => l,
            LogAdjust::Shift(n) => Level::from_number((level as i8 + n).clamp(0, 7) as u8).unwrap_or(level),
        }
    }
}

/// Parses qpsmtpd-style `key value key value` plugin arguments.
pub fn key_values(args: &[String]) -> Result<Vec<(String, String)>, String> {
    if !args.len().is_multiple_of(2) {
        return Err(format!(
            "arguments must be key value pairs, got an odd number: {}",
            args.join(" ")
        ));
    }
    Ok(args.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect())
}

/// qpsmtpd's `reject` / `reject_type` arguments (`Qpsmtpd::Plugin::get_reject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// `reject 0`: log only ("fail, tolerated").
    Tolerate,
    /// `reject naughty`: remember the rejection for the `naughty` plugin.
    Naughty(Option<String>),
    /// Reject now with this verdict.
    Now(Verdict),
}

impl Reject {
    /// Reads `reject` and `reject_type` from key/value args; `default_reject` applies when
    /// `reject` is absent.
    pub fn from_args(kv: &[(String, String)], default_reject: bool) -> Result<Reject, String> {
        let get = |k: &str| kv.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let rtype = get("reject_type");
        let verdict = match rtype {
            None => Verdict::Deny,
            Some(t) => reject_type(t).ok_or_else(|| format!("unknown reject_type {t:?}"))?,
        };
        match get("reject") {
            None if default_reject => Ok(Reject::Now(verdict)),
            None => Ok(Reject::Tolerate),
            Some("naughty") => Ok(Reject::Naughty(rtype.map(str::to_string))),
            Some(v) if v == "0" || v.is_empty() => Ok(Reject::Tolerate),
            Some(_) => Ok(Reject::Now(verdict)),
        }
    }

    /// Applies the policy to a failed check (qpsmtpd `get_reject`).
    pub fn outcome(&self, cx: &mut Context<'_>, msg: &str) -> Outcome {
        match self {
            Reject::Tolerate => {
                cx.log(Level::Info, format_args!("fail, tolerated: {msg}"));
                Outcome::declined()
            }
            Reject::Naughty(rtype) => {
                cx.log(Level::Info, format_args!("fail, NAUGHTY: {msg}"));
                let notes = &mut cx.conn.notes;
                let joined = match notes.get("naughty") {
                    Some(prev) if !prev.is_empty() => format!("{prev}\n{msg}"),
                    _ => msg.to_string(),
                };
                notes.insert("naughty".into(), joined);
                if let Some(t) = rtype {
                    notes
                        .entry("naughty_reject_type".into())
                        .or_insert_with(|| t.clone());
                }
                Outcome::declined()
            }
            Reject::Now(v) => {
                cx.log(Level::Info, format_args!("fail: {msg}"));
                Outcome::with(*v, msg)
            }
        }
    }
}

/// `perm|hard` → DENY, `temp|soft` → DENYSOFT, `disconnect`, `temp_disconnect`.
pub fn reject_type(t: &str) -> Option<Verdict> {
    match t.to_ascii_lowercase().as_str() {
        "perm" | "hard" => Some(Verdict::Deny),
        "temp" | "soft" => Some(Verdict::DenySoft),
        "disconnect" => Some(Verdict::DenyDisconnect),
        "temp_disconnect" => Some(Verdict::DenySoftDisconnect),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_round_trip() {
        for h in Hook::ALL {
            assert_eq!(Hook::from_name(h.name()), Some(h));
            assert_eq!(h.index(), Hook::ALL.iter().position(|x| *x == h).unwrap());
        }
        assert_eq!(Hook::from_name("post_connection"), Some(Hook::PostConnection));
        assert_eq!(Hook::from_name("auth_cram_md5"), Some(Hook::AuthCramMd5));
        assert_eq!(Hook::from_name("rset"), None);
    }

    #[test]
    fn verdict_names() {
        assert_eq!(Verdict::from_name("denyhard"), Some(Verdict::DenyDisconnect));
        assert_eq!(
            Verdict::from_name("DENYSOFT_DISCONNECT"),
            Some(Verdict::DenySoftDisconnect)
        );
        assert_eq!(Verdict::Declined.number(), 909);
        assert!(Verdict::DenySoft.is_deny() && !Verdict::Done.is_deny());
    }

    #[test]
    fn reject_args() {
        let kv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(Reject::from_args(&kv(&[]), true), Ok(Reject::Now(Verdict::Deny)));
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "0")]), true),
            Ok(Reject::Tolerate)
        );
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "1"), ("reject_type", "temp")]), true),
            Ok(Reject::Now(Verdict::DenySoft))
        );
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "naughty")]), true),
            Ok(Reject::Naughty(None))
        );
        assert!(Reject::from_args(&kv(&[("reject_type", "bogus")]), true).is_err());
    }
}
