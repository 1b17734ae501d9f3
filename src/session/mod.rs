//! The SMTP session: a state machine over command lines and DATA segments, with no I/O.
//!
//! The driver ([`crate::server`]) reads from the client and hands each command line or
//! piece of message data to the session; the session runs the plugin chain, queues
//! replies and says what it wants next ([`Want`]). The same session therefore runs over
//! a socket, a pipe, or an in-memory transcript in tests.
//!
//! Each command follows qpsmtpd's shape (reference §3): sequence and syntax checks, then
//! the hooks, then the reply that the hook's verdict maps to. Replies are built only in
//! [`Session::reply`] and the `*_respond` helpers, and rendered in
//! [`Session::drain_output`].

mod auth;
mod data;
mod greeting;
mod misc;
mod path;
mod queue;
mod received;
mod tls;

use std::time::Duration;

use crate::command::{self, Verb};
use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::log::{Level, Logger};
use crate::plugin::{Args, Chain, Env, Hook, Outcome};
use crate::reply::Reply;
use crate::transaction::Transaction;

pub use auth::Exchange;
pub use data::DataReceiver;

/// What the session needs next from the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// A command line.
    Command,
    /// Message data after `354`.
    Data,
    /// Send the queued replies, then start TLS (STARTTLS was accepted; see `tls_acceptor`,
    /// `tls_go_ahead`, `tls_started`).
    StartTls,
    /// A continuation line of an AUTH exchange, for [`Session::auth_response`], with the
    /// command timeout. It holds a password: never log it.
    AuthResponse,
    /// Nothing: the connection is over.
    Closed,
}

/// The session's phase; each variant owns what only that phase needs.
#[derive(Debug)]
enum State {
    /// Reading commands (before and after HELO; the greeting lives in the connection).
    Commands,
    /// Reading message data after `354`.
    Data(Box<DataReceiver>),
    /// STARTTLS accepted; the driver is switching the connection to TLS.
    StartTls,
    /// In an AUTH exchange, waiting for the client's next line.
    Auth(Box<Exchange>),
    /// QUIT, a disconnect verdict, end of input or a timeout ended the connection.
    Closed,
}

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

impl Settings {
    /// Reads the settings through the chain's `config` hooks and the config files.
    pub fn load(chain: &Chain, config: &Config, log: &Logger) -> Result<Settings, ConfigError> {
        let get = |name: &str| -> Result<Option<String>, ConfigError> {
            Ok(chain.config(name, config, log)?.first().map(str::to_string))
        };
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            let lines = chain.config(name, config, log)?;
            let Some(entry) = lines.entries().first() else {
                return Ok(None);
            };
            entry
                .text
                .parse::<u64>()
                .map(Some)
                .map_err(|_| ConfigError::Invalid {
                    path: entry.file.clone(),
                    line: entry.line,
                    reason: format!("{name} must be a whole number, not {:?}", entry.text),
                })
        };
        let me = match get("me")? {
            Some(me) => me,
            None => hostname(),
        };
        let timeout = number("timeout")?.filter(|t| *t > 0).unwrap_or(1200);
        let command_timeout = number("timeoutsmtpd")?.filter(|t| *t > 0).unwrap_or(timeout);
        let auth_results_id = match get("me-auth-results")? {
            Some(v) if v == "none" => None,
            Some(v) => Some(v),
            None => Some(me.clone()),
        };
        Ok(Settings {
            greeting: get("smtpgreeting")?,
            databytes: number("databytes")?.unwrap_or(0),
            command_timeout: seconds(command_timeout),
            data_timeout: seconds(timeout),
            data_deadline: seconds(
                number("data_deadline")?
                    .filter(|t| *t > 0)
                    .unwrap_or(DEFAULT_DATA_DEADLINE),
            ),
            spool_dir: get("spool_dir")?
                .map(std::path::PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
            size_threshold: number("size_threshold")?
                .map_or(crate::transaction::DEFAULT_SIZE_THRESHOLD, |n| n as usize),
            auth_results_id,
            max_recipients: number("max_recipients")?.map_or(1000, |n| n.max(1) as usize),
            max_header_size: number("max_header_size")?.map_or(1024 * 1024, |n| n.max(1024) as usize),
            me,
        })
    }
}

/// A configured number of seconds as a wait. Past about 136 years every wait is the same
/// as for ever, and a longer one would overflow the clock arithmetic of each read.
fn seconds(n: u64) -> Duration {
    Duration::from_secs(n.min(1 << 32))
}

/// The host name from the kernel (qpsmtpd's default for `me`).
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// How a connection ended, for the summary line.
#[derive(Debug, Clone, Default)]
struct Summary {
    messages: u32,
    queued: u32,
    last_sender: Option<String>,
    last_recipients: Vec<String>,
    outcome: String,
    bytes: u64,
}

/// Everything a session starts with.
pub struct Setup {
    /// Connection facts.
    pub conn: Connection,
    /// The config directory.
    pub config: Config,
    /// The loaded plugins.
    pub chain: Chain,
    /// The logger.
    pub log: Logger,
}

/// One SMTP session.
pub struct Session {
    conn: Connection,
    txn: Transaction,
    chain: Chain,
    config: Config,
    log: Logger,
    settings: Settings,
    state: State,
    replies: Vec<Reply>,
    txn_count: u32,
    summary: Summary,
    /// Answers "is the client still there?" before a message is queued.
    liveness: Option<Box<dyn FnMut() -> bool>>,
    /// STARTTLS offered or not.
    tls: tls::TlsState,
    /// AUTH settings and counters.
    auth: auth::AuthState,
    /// Input after the current piece of data was already read (e.g. a pipelined QUIT):
    /// the client means to go on, whatever the socket says about its sending side.
    read_ahead: bool,
}

impl Session {
    /// Reads the settings and prepares a session (nothing is sent yet).
    pub fn new(setup: Setup) -> Result<Session, ConfigError> {
        let settings = Settings::load(&setup.chain, &setup.config, &setup.log)?;
        let auth = auth::AuthState::load(&setup.chain, &setup.config, &setup.log)?;
        let txn = Transaction::new(format!("{}.0", setup.conn.id));
        Ok(Session {
            conn: setup.conn,
            txn,
            chain: setup.chain,
            config: setup.config,
            log: setup.log,
            settings,
            state: State::Commands,
            replies: Vec::new(),
            txn_count: 0,
            summary: Summary::default(),
            liveness: None,
            tls: tls::TlsState::default(),
            auth,
            read_ahead: false,
        })
    }

    /// Lets the driver tell the session whether the client has gone away; checked
    /// before a message is handed to the queue (nothing is queued for a vanished client).
    pub fn set_liveness(&mut self, probe: Box<dyn FnMut() -> bool>) {
        self.liveness = Some(probe);
    }

    /// The driver tells the session whether more input follows the piece it hands over.
    pub fn set_read_ahead(&mut self, pending: bool) {
        self.read_ahead = pending;
    }

    /// Runs the connect hooks and queues the greeting.
    pub fn start(&mut self) {
        self.log.log(
            Level::Info,
            format_args!(
                "Connection from {} [{}]",
                self.conn.remote_info, self.conn.remote_ip
            ),
        );
        let out = self.run(Hook::Connect, Args::None);
        self.connect_respond(out);
    }

    /// What to read next.
    pub fn wants(&self) -> Want {
        match self.state {
            State::Commands => Want::Command,
            State::Data(_) => Want::Data,
            State::StartTls => Want::StartTls,
            State::Auth(_) => Want::AuthResponse,
            State::Closed => Want::Closed,
        }
    }

    /// How long to wait for the next input.
    pub fn read_timeout(&self) -> Duration {
        match self.state {
            State::Data(_) => self.data_read_timeout(),
            _ => self.settings.command_timeout,
        }
    }

    /// How long a write to the client may take.
    pub fn write_timeout(&self) -> Duration {
        self.settings.data_timeout
    }

    /// The connection facts.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The settings read at start.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The loaded plugin chain (for `--check`).
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The config directory (for `--check`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles one command line (without its line end).
    pub fn command_line(&mut self, raw: &[u8]) {
        let checked = command::check_line(raw).map(|_| ());
        let line = String::from_utf8_lossy(raw).into_owned();
        let cmd = command::split(&line);
        // An AUTH line may carry the password (initial response): keep it out of logs
        // and notes.
        let redacted = auth::redact(&line);
        // A line that only a lenient eye reads as AUTH (a leading blank, a tab after the
        // verb) is an unknown command, and unrecognized_command plugins hear of it
        // without what follows the verb.
        let (unknown_verb, unknown_rest) = match &redacted {
            Some(_) if cmd.verb.is_empty() => ("", ""),
            Some(_) => ("auth", ""),
            None => (cmd.verb.as_str(), cmd.rest),
        };
        let shown = redacted.unwrap_or_else(|| line.clone());
        if self.log.enabled(Level::Info) {
            self.log.log(Level::Info, format_args!("dispatching {shown}"));
        }
        self.conn.notes.insert("original_string".into(), shown);
        if cmd.verb.is_empty() {
            return self.unrecognized("", unknown_rest);
        }
        self.conn.command_count += 1;
        // A known verb acts on its arguments: only UTF-8 without control characters gets
        // that far (README Differences 41). Unknown verbs are refused anyway, by the
        // `unrecognized_command` hook that counts them.
        if let (Some(_), Err(e)) = (cmd.known, checked) {
            self.log
                .log(Level::Info, format_args!("refused {}: {}", cmd.verb, e.text()));
            return self.reply(Reply::new(501, "5.5.2", e.text()));
        }
        match cmd.known {
            Some(Verb::Helo) => self.hello(false, cmd.rest),
            Some(Verb::Ehlo) => self.hello(true, cmd.rest),
            Some(Verb::Mail) => self.mail(cmd.rest),
            Some(Verb::Rcpt) => self.rcpt(cmd.rest),
            Some(Verb::Data) => self.data(),
            Some(Verb::Rset) => self.rset(),
            Some(Verb::Noop) => self.noop(),
            Some(Verb::Vrfy) => self.vrfy(cmd.rest),
            Some(Verb::Help) => self.help(cmd.rest),
            Some(Verb::Quit) => self.quit(),
            // AUTH and STARTTLS are only verbs while offered; until then they are unknown.
            Some(Verb::Auth) if self.auth.offered => self.auth_command(cmd.rest),
            Some(Verb::Auth) => {
                let verb = cmd.verb.clone();
                self.auth_not_offered(&verb, cmd.rest)
            }
            Some(Verb::Starttls) if self.starttls_offered() => self.starttls(cmd.rest),
            Some(Verb::Starttls) | None => self.unrecognized(unknown_verb, unknown_rest),
        }
    }

    /// A command line longer than the limit was read and discarded.
    pub fn line_too_long(&mut self) {
        if matches!(self.state, State::Auth(_)) {
            return self.auth_line_too_long();
        }
        self.reply(Reply::new(500, "5.5.2", "Line too long"));
    }

    /// The client sent nothing within the timeout: `421` and close (qpsmtpd quirk 4 fixed;
    /// Perl's tcpserver flavour died silently on SIGALRM).
    pub fn input_timed_out(&mut self) {
        let what = if matches!(self.state, State::Data(_)) {
            "data"
        } else {
            "command"
        };
        if self.data_deadline_passed() {
            self.log.log(
                Level::Info,
                format_args!(
                    "message not complete after data_deadline ({} s)",
                    self.settings.data_deadline.as_secs()
                ),
            );
            self.summary.outcome = "data_deadline passed".into();
        } else {
            self.log
                .log(Level::Info, format_args!("timeout waiting for {what}"));
            self.summary.outcome = format!("timeout waiting for {what}");
        }
        let me = self.settings.me.clone();
        self.reply(Reply::new(
            421,
            "4.4.2",
            format!("{me} Timeout; closing connection"),
        ));
        self.disconnect();
    }

    /// A termination signal arrived (the supervisor is stopping us): `421` and close;
    /// a message being received is dropped and its spool file removed.
    pub fn shutting_down(&mut self) {
        self.summary.outcome = "terminated by signal".into();
        let me = self.settings.me.clone();
        self.reply(Reply::new(
            421,
            "4.3.2",
            format!("{me} Service shutting down; closing connection"),
        ));
        self.disconnect();
    }

    /// End of input (the client closed the connection or a read failed).
    pub fn input_ended(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if matches!(self.state, State::Data(_)) {
            self.reply(Reply::new(451, "4.4.1", "Incomplete DATA"));
            self.summary.outcome = "client gone during DATA".into();
        } else if self.summary.outcome.is_empty() {
            self.summary.outcome = "client closed without QUIT".into();
        }
        self.disconnect();
    }

    /// Writing to the client failed: it is gone.
    pub fn output_failed(&mut self) {
        if self.summary.outcome.is_empty() {
            self.summary.outcome = "client gone".into();
        }
        self.disconnect();
    }

    /// Are replies queued and not yet rendered?
    pub fn has_replies(&self) -> bool {
        !self.replies.is_empty()
    }

    /// Renders the queued replies into `out` (each line prefixed with `prefix`, used by
    /// the transcript view) and logs them.
    pub fn drain_output(&mut self, out: &mut Vec<u8>, prefix: &[u8]) {
        for reply in self.replies.drain(..) {
            let start = out.len();
            reply.render(out);
            if self.log.enabled(Level::Info) {
                let text = String::from_utf8_lossy(&out[start..]);
                for line in text.lines() {
                    self.log.log(Level::Info, format_args!("{line}"));
                }
            }
            if !prefix.is_empty() {
                let rendered = out.split_off(start);
                for line in rendered.split_inclusive(|b| *b == b'\n') {
                    out.extend_from_slice(prefix);
                    out.extend_from_slice(line);
                }
            }
        }
    }

    /// Runs the post-connection hooks and logs the summary line. Call once, at the end.
    pub fn finish(&mut self) {
        self.disconnect();
        self.run(Hook::PostConnection, Args::None);
        self.log_summary();
    }

    /// Is a reply waiting to be sent?
    pub fn has_output(&self) -> bool {
        !self.replies.is_empty()
    }

    // ---- shared helpers for the command files ----

    /// Runs a hook through the chain.
    fn run(&mut self, hook: Hook, args: Args<'_>) -> Outcome {
        let env = Env {
            config: &self.config,
            log: &self.log,
            me: &self.settings.me,
        };
        self.chain
            .run(hook, &mut self.conn, &mut self.txn, env, &mut self.replies, args)
    }

    /// Queues a reply (the one place core replies are sent from).
    fn reply(&mut self, reply: Reply) {
        self.replies.push(reply);
    }

    /// Closes the connection: disconnect hooks, then the transaction is reset (reference
    /// §1.4). Idempotent.
    fn disconnect(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        if self.summary.outcome.is_empty()
            && let Some(r) = self.replies.iter().rev().find(|r| r.is_failure())
        {
            self.summary.outcome = format!("closed after {} {}", r.code, r.lines.join(" "));
        }
        self.state = State::Closed;
        self.run(Hook::Disconnect, Args::None);
        self.conn.notes.insert("disconnected".into(), "1".into());
        self.reset_transaction();
    }

    /// qpsmtpd's `reset_transaction`: the hook sees the old transaction, then a new one
    /// starts. The old body's spool file is removed with it.
    fn reset_transaction(&mut self) {
        self.run(Hook::ResetTransaction, Args::None);
        self.txn_count += 1;
        self.txn = Transaction::new(format!("{}.{}", self.conn.id, self.txn_count));
    }

    fn log_summary(&self) {
        let s = &self.summary;
        let outcome = if s.outcome.is_empty() { "quit" } else { &s.outcome };
        self.log.log(
            Level::Notice,
            format_args!(
                "summary remote={} helo={} from={} rcpt={} messages={} queued={} bytes={} outcome=\"{}\" duration={:.3}s",
                self.conn.remote_ip,
                if self.conn.hello_host().is_empty() { "-" } else { self.conn.hello_host() },
                s.last_sender.as_deref().unwrap_or("-"),
                if s.last_recipients.is_empty() { "-".to_string() } else { s.last_recipients.join(",") },
                s.messages,
                s.queued,
                s.bytes,
                outcome,
                self.conn.started.elapsed().as_secs_f64(),
            ),
        );
    }
}
