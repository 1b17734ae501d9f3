//! The SMTP session: a state machine over what the client does, with no I/O.
//!
//! The driver ([`crate::server`]) reads from the client and hands the session one [`Input`]
//! at a time through [`Session::step`], which answers with what it wants next ([`Want`]);
//! [`Session::output`] renders the replies queued meanwhile. Read-ahead and whether the
//! client is still there come in as input too. So the same session runs over a socket, a
//! pipe, or an in-memory transcript in tests.
//!
//! Each command follows qpsmtpd's shape (Qpsmtpd::SMTP): sequence and syntax checks, then
//! the hooks, then the reply the hook's verdict gives, as its row in [`refusals`] says. The
//! core's own replies are named in `fixed.rs`. Every change of phase goes through
//! [`Session::enter`], which logs it at LOGDEBUG.

mod auth;
mod commands;
mod data;
mod fixed;
mod greeting;
mod input;
mod misc;
mod path;
mod queue;
mod received;
pub mod refusals;
mod settings;
mod summary;
mod tls;

use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::log::{Level, Logger};
use crate::plugin::{Args, Chain, Env, Hook, Offers, Outcome};
use crate::reply::Reply;
use crate::tls::preopen::Preopened;
use crate::transaction::Transaction;

#[doc(hidden)]
pub use data::fuzzing as data_fuzzing;
pub use input::{Input, Opening, TlsStart, Want};
pub use settings::{DEFAULT_DATA_DEADLINE, Settings};
pub use summary::Ending;
pub use tls::TlsReport;

/// The session's phase; each variant owns what only that phase needs.
enum State {
    /// Reading commands (before and after HELO; the greeting lives in the connection).
    Commands,
    /// Reading message data after `354`.
    Data(Box<data::DataReceiver>),
    /// The message is complete and `data_post` let it through; the driver says whether
    /// the client is still there before it is queued.
    Queueing,
    /// In an AUTH exchange, waiting for the client's next line.
    Auth(Box<auth::Exchange>),
    /// TLS is to start: after STARTTLS, or first on port 465 (`greet`: the greeting
    /// follows the handshake).
    StartTls {
        /// How the driver does the handshake.
        how: TlsStart,
        /// Implicit TLS: connect hooks and the greeting come after the handshake.
        greet: bool,
    },
    /// Waiting `wait` for input that should not come yet, before the `then` hooks (the
    /// connect hooks before the greeting, the data hooks before `354`).
    Quiet {
        /// The hooks to run after.
        then: Hook,
        /// How long.
        wait: std::time::Duration,
    },
    /// QUIT, a disconnect verdict, end of input or a timeout ended the connection.
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::Commands => "commands",
            State::Data(_) => "message data",
            State::Queueing => "queueing",
            State::Auth(_) => "AUTH exchange",
            State::StartTls { .. } => "TLS handshake",
            State::Quiet { .. } => "waiting for an early talker",
            State::Closed => "closed",
        }
    }
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
    /// What the plugins offer together (EHLO keywords, TLS files, AUTH mechanisms), asked
    /// once at start.
    offers: Offers,
    config: Config,
    log: Logger,
    settings: Settings,
    state: State,
    replies: Vec<Reply>,
    txn_count: u32,
    summary: summary::Summary,
    /// STARTTLS offered or not, and the TLS files opened before the privilege switch.
    tls: tls::TlsState,
    /// AUTH settings and counters.
    auth: auth::AuthState,
}

impl Session {
    /// Reads the settings and prepares a session (nothing is sent yet).
    pub fn new(setup: Setup) -> Result<Session, ConfigError> {
        let settings = Settings::load(&setup.chain, &setup.config, &setup.log)?;
        let offers = setup.chain.offers();
        let auth = auth::AuthState::load(&offers.auth, &setup.chain, &setup.config, &setup.log)?;
        let txn = Transaction::new(transaction_id(&setup.conn.id, 0));
        Ok(Session {
            conn: setup.conn,
            txn,
            chain: setup.chain,
            offers,
            config: setup.config,
            log: setup.log,
            settings,
            state: State::Commands,
            replies: Vec::new(),
            txn_count: 0,
            summary: summary::Summary::default(),
            tls: tls::TlsState::default(),
            auth,
        })
    }

    /// Ends the session's objects when the process is about to exit. The plugins and the
    /// log sinks are dropped as usual (a log file is flushed, a child is waited for, a
    /// spool file removed); the config cache and the connection's facts, plain memory and
    /// descriptors that exit gives back anyway, are not freed one allocation at a time
    /// (about 10,000 instructions per session).
    pub fn end_for_exit(self) {
        let Session {
            conn,
            txn,
            chain,
            offers,
            config,
            log,
            tls,
            auth,
            ..
        } = self;
        drop(txn);
        chain.end_for_exit();
        drop(offers);
        drop(log);
        drop(tls);
        drop(auth);
        std::mem::forget(config);
        std::mem::forget(conn);
    }

    /// Hands over the TLS files opened before the privilege switch (see
    /// [`crate::tls::preopen`]); read only if a client asks for TLS.
    pub fn set_tls_preopened(&mut self, files: Option<Preopened>) {
        self.tls.preopened = files;
    }

    /// Renders the replies queued so far into `out` (each line after `prefix`, which the
    /// transcript view sets) and logs them.
    pub fn output(&mut self, out: &mut Vec<u8>, prefix: &[u8]) {
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

    /// The time now by the session's clock, the one plugins see as `cx.now()` (fixed by
    /// the config item `test_clock`, so that transcripts showing a time are repeatable).
    fn now(&self) -> std::time::SystemTime {
        self.chain.services().now(&self.config, &self.log)
    }

    /// Queues a reply (the one place core replies are sent from).
    fn reply(&mut self, reply: Reply) {
        self.replies.push(reply);
    }

    /// Moves to another phase and returns the one left; every change of phase goes
    /// through here, so LOGDEBUG shows the whole path of a session.
    fn enter(&mut self, next: State) -> State {
        if self.log.enabled(Level::Debug) {
            let from = self.state.name();
            self.log
                .log(Level::Debug, format_args!("session: {from} -> {}", next.name()));
        }
        std::mem::replace(&mut self.state, next)
    }

    fn closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Closes the connection: disconnect hooks, then the transaction is reset (qpsmtpd's
    /// `disconnect`). Idempotent.
    fn disconnect(&mut self) {
        if self.closed() {
            return;
        }
        if !self.summary.known()
            && let Some(r) = self.replies.iter().rev().find(|r| r.is_failure())
        {
            self.summary.end(Ending::ClosedAfter(r.code, r.lines.join(" ")));
        }
        self.enter(State::Closed);
        self.run(Hook::Disconnect, Args::None);
        self.conn.notes.insert("disconnected".into(), "1".into());
        self.reset_transaction();
    }

    /// qpsmtpd's `reset_transaction`: the hook sees the old transaction, then a new one
    /// starts. The old body's spool file is removed with it.
    fn reset_transaction(&mut self) {
        self.run(Hook::ResetTransaction, Args::None);
        self.txn_count += 1;
        self.txn = Transaction::new(transaction_id(&self.conn.id, self.txn_count));
    }
}

/// `<connection id>.<n>`, in a string sized once (format! would grow it a piece at a
/// time; a session makes one for every transaction).
fn transaction_id(conn_id: &str, n: u32) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(conn_id.len() + 11);
    let _ = write!(id, "{conn_id}.{n}");
    id
}

#[cfg(test)]
mod tests;
