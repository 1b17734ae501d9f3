//! What the driver tells the session ([`Input`]) and what the session asks for next
//! ([`Want`]): the whole interface between the SMTP state machine and the connection.
//!
//! ```text
//! Connected ─► Want::Command ◄──────────── Line / LineTooLong ───────────┐
//!    │           │ DATA: Want::Data ── Data { piece, read_ahead } ──────┤
//!    │           │ after the dot: Want::Liveness ── Alive(bool) ─────────┤
//!    │           │ AUTH: Want::AuthResponse ── Line ─────────────────────┘
//!    │           └ STARTTLS: Want::StartTls ── TlsStarted / TlsFailed
//!    └ port 465: Want::StartTls first, the greeting after TlsStarted
//! TimedOut, Terminated, Ended, WriteFailed: 421 or silence, Want::Closed; Finished last.
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fixed::{INCOMPLETE_DATA, SHUTTING_DOWN, TIMEOUT};
use super::summary::Ending;
use super::{Session, State};
use crate::connection::TlsInfo;
use crate::log::Level;
use crate::plugin::{Args, Hook};
use crate::tls::{Established, TlsError};

/// Something that happened on the connection, for [`Session::step`].
#[derive(Debug)]
pub enum Input<'a> {
    /// The connection is open: the connect hooks and the greeting (or TLS first).
    Connected(Opening),
    /// A line from the client without its line end: a command, or the answer to an AUTH
    /// challenge while the session wants one.
    Line(&'a [u8]),
    /// The answer to [`Want::Quiet`]: did the client send anything during the wait?
    Talked(bool),
    /// A line longer than the limit was read and thrown away.
    LineTooLong,
    /// A piece of message data: a line with its LF, or 64 KiB of a longer one.
    Data {
        /// The bytes.
        piece: &'a [u8],
        /// More input was already read behind it (a QUIT pipelined after the dot): the
        /// client means to go on, whatever the socket says about its sending side.
        read_ahead: bool,
    },
    /// The answer to [`Want::Liveness`]: is the client still connected?
    Alive(bool),
    /// The handshake [`Want::StartTls`] asked for worked.
    TlsStarted {
        /// What was negotiated.
        tls: Established,
        /// Bytes the client sent in clear text before it, thrown away unread.
        discarded: usize,
    },
    /// The handshake failed (the client speaks TLS or nothing: no reply).
    TlsFailed {
        /// Why.
        why: &'a TlsError,
        /// Bytes the client sent in clear text before it, thrown away unread.
        discarded: usize,
    },
    /// Nothing arrived within the read timeout.
    TimedOut,
    /// A termination signal arrived (the supervisor is stopping us).
    Terminated,
    /// The input ended: the client closed the connection, or a read failed.
    Ended,
    /// Writing to the client failed: it is gone.
    WriteFailed,
    /// The connection is over: post-connection hooks and the summary line. Last.
    Finished,
}

/// How TLS may start, told with [`Input::Connected`].
#[derive(Debug, Default)]
pub struct Opening {
    /// `--implicit-tls`: TLS before the greeting (port 465 without the port to tell).
    pub implicit_tls: bool,
    /// A UCSPI-TLS super-server does the handshake; no certificate of ours is read.
    pub ucspi_tls: bool,
    /// TLS was done before we started (`sslserver` without `-n`).
    pub tls_done: Option<TlsInfo>,
}

/// How the driver does a handshake.
#[derive(Debug, Clone)]
pub enum TlsStart {
    /// With our certificate, through rustls.
    Rustls(Arc<rustls::ServerConfig>),
    /// Through the UCSPI-TLS super-server.
    Ucspi,
}

/// What the session needs next from the driver.
#[derive(Debug, Clone)]
pub enum Want {
    /// A command line, within `timeout`.
    Command {
        /// How long the line may take.
        timeout: Duration,
    },
    /// A continuation line of an AUTH exchange. It holds a password: never log it.
    AuthResponse {
        /// How long the line may take.
        timeout: Duration,
    },
    /// The next piece of message data, within `timeout` and before `deadline`.
    Data {
        /// How long the piece may take.
        timeout: Duration,
        /// When the whole message must be in (`data_deadline` after `354`).
        deadline: Option<Instant>,
    },
    /// Wait up to `timeout` for input without taking it (a client that speaks before
    /// the greeting, or before `354`) and answer with [`Input::Talked`].
    Quiet {
        /// How long to wait.
        timeout: Duration,
    },
    /// Is the client still there? Answer with [`Input::Alive`].
    Liveness,
    /// Send the queued replies, throw away what was read ahead, then do the handshake
    /// within `timeout` and answer with [`Input::TlsStarted`] or [`Input::TlsFailed`].
    StartTls {
        /// How.
        how: TlsStart,
        /// How long the handshake may take.
        timeout: Duration,
    },
    /// Nothing more: send the queued replies, then [`Input::Finished`].
    Closed,
}

impl Session {
    /// Handles one input and says what the session wants next.
    pub fn step(&mut self, input: Input<'_>) -> Want {
        match input {
            Input::Connected(opening) => self.open(opening),
            Input::Line(line) if matches!(self.state, State::Auth(_)) => self.auth_response(line),
            Input::Line(line) if matches!(self.state, State::Commands) => self.command_line(line),
            Input::Line(_) => {}
            Input::Talked(talked) => self.after_quiet(talked),
            Input::LineTooLong => self.line_too_long(),
            Input::Data { piece, read_ahead } => self.data_segment(piece, read_ahead),
            Input::Alive(alive) => self.queue_if_alive(alive),
            Input::TlsStarted { tls, discarded } => self.tls_started(tls, discarded),
            Input::TlsFailed { why, discarded } => self.tls_failed(why, discarded),
            Input::TimedOut => self.input_timed_out(),
            Input::Terminated => self.shutting_down(),
            Input::Ended => self.input_ended(),
            Input::WriteFailed => self.output_failed(),
            Input::Finished => self.finish(),
        }
        self.wants()
    }

    /// What to read next, and how long it may take.
    fn wants(&self) -> Want {
        let timeout = self.settings.command_timeout;
        match &self.state {
            State::Commands => Want::Command { timeout },
            State::Auth(_) => Want::AuthResponse { timeout },
            State::Data(_) => Want::Data {
                timeout: self.settings.data_timeout,
                deadline: self.data_deadline(),
            },
            State::Queueing => Want::Liveness,
            State::Quiet { wait, .. } => Want::Quiet { timeout: *wait },
            State::StartTls { how, .. } => Want::StartTls {
                how: how.clone(),
                timeout,
            },
            State::Closed => Want::Closed,
        }
    }

    /// The connection is open: TLS done by the super-server is noted, TLS on port 465
    /// comes first, else the connect hooks run and the greeting is queued.
    fn open(&mut self, opening: Opening) {
        self.set_ucspi_tls(opening.ucspi_tls);
        if let Some(info) = opening.tls_done {
            let tls = Established { info, resumed: false };
            self.tls_established(tls);
        }
        if self.conn.tls.is_none() && (opening.implicit_tls || self.implicit_tls()) {
            return self.implicit_tls_first();
        }
        self.start();
    }

    /// Runs the connect hooks and queues the greeting, after the wait for an early
    /// talker if a plugin asks for one.
    pub(super) fn start(&mut self) {
        self.log.log(
            Level::Info,
            format_args!(
                "Connection from {} [{}]",
                self.conn.remote_info, self.conn.remote_ip
            ),
        );
        if self.quiet_first(Hook::Connect, self.offers.greeting_wait) {
            return;
        }
        let out = self.run(Hook::Connect, Args::None);
        self.connect_respond(out);
    }

    /// Enters the wait for input before `hook` if a plugin wants one and the client is
    /// not immune (relay client, whitelisted: no plugin would judge it).
    pub(super) fn quiet_first(&mut self, hook: Hook, wait: Option<Duration>) -> bool {
        let Some(wait) = wait else {
            return false;
        };
        if crate::plugin::immune(&self.conn, &self.txn) {
            return false;
        }
        self.enter(State::Quiet { then: hook, wait });
        true
    }

    /// The wait is over: the hooks after it see what it found.
    fn after_quiet(&mut self, talked: bool) {
        let State::Quiet { then, .. } = self.state else {
            return;
        };
        self.enter(State::Commands);
        self.conn.early_input = Some(talked);
        if then == Hook::Connect {
            let out = self.run(Hook::Connect, Args::None);
            self.connect_respond(out);
        } else {
            self.data_hooks();
        }
        self.conn.early_input = None;
    }

    /// Nothing arrived within the timeout: `421` and close (README Differences 1; Perl's
    /// tcpserver flavour died silently on SIGALRM).
    fn input_timed_out(&mut self) {
        let data = matches!(self.state, State::Data(_));
        let ending = if self.data_deadline_passed() {
            self.log.log(
                Level::Info,
                format_args!(
                    "message not complete after data_deadline ({} s)",
                    self.settings.data_deadline.as_secs()
                ),
            );
            Ending::DataDeadline
        } else {
            let what = if data { "data" } else { "command" };
            self.log
                .log(Level::Info, format_args!("timeout waiting for {what}"));
            Ending::Timeout { data }
        };
        self.summary.end(ending);
        self.reply(TIMEOUT.about(&self.settings.me));
        self.disconnect();
    }

    /// A termination signal: `421` and close; a message being received is dropped and
    /// its spool file removed.
    fn shutting_down(&mut self) {
        self.summary.end(Ending::Terminated);
        self.reply(SHUTTING_DOWN.about(&self.settings.me));
        self.disconnect();
    }

    /// End of input (the client closed the connection or a read failed).
    fn input_ended(&mut self) {
        if self.closed() {
            return;
        }
        if matches!(self.state, State::Data(_)) {
            self.reply(INCOMPLETE_DATA.reply());
            self.summary.end(Ending::GoneDuringData);
        } else {
            self.summary.end_unless_known(Ending::ClosedWithoutQuit);
        }
        self.disconnect();
    }

    /// Writing to the client failed: it is gone.
    fn output_failed(&mut self) {
        self.summary.end_unless_known(Ending::Gone);
        self.disconnect();
    }

    /// The post-connection hooks and the summary line.
    fn finish(&mut self) {
        self.disconnect();
        self.run(Hook::PostConnection, Args::None);
        self.log_summary();
    }
}
