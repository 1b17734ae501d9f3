//! STARTTLS (RFC 3207) as qpsmtpd's `tls` plugin does it (reference §9), without I/O: the
//! session answers and changes state; the driver does the handshake in between.
//!
//! ```text
//! STARTTLS ─► Want::StartTls ─► driver: tls_acceptor() ─┬─ Err ─► tls_unavailable() → 454
//!                                                      └─ Ok ──► tls_go_ahead() → 220,
//!   flush, discard read-ahead (plaintext_discarded), handshake ─┬─ tls_started(): EHLO again
//!                                                               └─ tls_failed(): log, close
//! ```

use std::path::PathBuf;
use std::time::Duration;

use super::{Session, State};
use crate::log::Level;
use crate::reply::Reply;
use crate::tls::{self, Acceptor, Established, TlsSettings};

/// The default rotation period of the shared ticket key (`tls_ticket_keys`).
const DEFAULT_TICKET_ROTATION: Duration = Duration::from_secs(12 * 3600);

/// What the session knows about TLS besides [`crate::connection::Connection::tls`].
#[derive(Debug, Default)]
pub(super) struct TlsState {
    /// The last EHLO reply offered STARTTLS.
    pub(super) offered: bool,
}

impl Session {
    /// Is a plugin loaded that makes TLS possible (the `tls` plugin)?
    pub fn tls_available(&self) -> bool {
        self.chain.tls_files().is_some()
    }

    /// Should TLS start before the greeting? When `forced` (`--implicit-tls`) or when the
    /// client connected to port 465, as qpsmtpd's `tls` plugin did; only with the plugin.
    pub fn implicit_tls(&self, forced: bool) -> bool {
        self.conn.tls.is_none() && self.tls_available() && (forced || self.conn.local_port == Some(465))
    }

    /// STARTTLS is a command only right after an EHLO that offered it.
    pub(super) fn starttls_offered(&self) -> bool {
        self.tls.offered && self.conn.tls.is_none()
    }

    /// STARTTLS: no parameters (RFC 3207 §4: 501), then the driver takes over.
    pub(super) fn starttls(&mut self, rest: &str) {
        if !rest.trim().is_empty() {
            return self.reply(Reply::new(501, "5.5.4", "Syntax error (no parameters allowed)"));
        }
        self.state = State::StartTls;
    }

    /// The settings for a handshake: the plugin's files and `tls_ciphers`, `tls_protocols`
    /// and `tls_ticket_keys`, read now (only sessions that use TLS read them).
    fn tls_settings(&self) -> Result<TlsSettings, String> {
        let files = self.chain.tls_files().ok_or("no tls plugin is loaded")?;
        let first = |name: &str| -> Result<Option<String>, String> {
            self.chain
                .config(name, &self.config, &self.log)
                .map(|l| l.first().map(str::to_string))
                .map_err(|e| e.to_string())
        };
        let tickets = match first("tls_ticket_keys")? {
            None => None,
            Some(line) => Some(ticket_setting(&line, self.config.dir())?),
        };
        Ok(TlsSettings {
            files,
            ciphers: first("tls_ciphers")?,
            protocols: first("tls_protocols")?,
            tickets,
        })
    }

    /// Reads the certificate and key and builds the TLS configuration.
    pub fn tls_acceptor(&mut self) -> Result<Acceptor, String> {
        let acceptor = tls::server_config(&self.tls_settings()?)?;
        if let Some(warning) = &acceptor.warning {
            self.log.log(Level::Warn, format_args!("{warning}"));
        }
        Ok(acceptor)
    }

    /// For `--check`: builds the TLS configuration as a STARTTLS would, without logging.
    /// `None` without the tls plugin; else the certificate file (and a warning, if any).
    pub fn tls_check(&self) -> Option<Result<(String, Option<String>), String>> {
        let mut settings = match self.tls_settings() {
            Ok(s) => s,
            Err(_) if !self.tls_available() => return None,
            Err(e) => return Some(Err(e)),
        };
        // The ticket key file is left alone: made by --check (perhaps as root) it would
        // not be the server user's.
        settings.tickets = None;
        Some(tls::server_config(&settings).map(|a| (settings.files.cert.display().to_string(), a.warning)))
    }

    /// TLS cannot start (certificate unreadable, bad settings): `454` and carry on in clear
    /// text (RFC 3207 §4).
    pub fn tls_unavailable(&mut self, why: &str) {
        self.log.log(Level::Error, format_args!("STARTTLS: {why}"));
        self.state = State::Commands;
        self.reply(Reply::new(
            454,
            "4.7.0",
            "TLS not available due to temporary reason",
        ));
    }

    /// The handshake is about to start: `220` (qpsmtpd's text).
    pub fn tls_go_ahead(&mut self) {
        self.reply(Reply::new(220, "2.0.0", "Go ahead with TLS"));
    }

    /// The client sent more after STARTTLS before the handshake; it was thrown away unread
    /// (CVE-2011-0411: it must never be taken as if it had come over TLS).
    pub fn plaintext_discarded(&mut self, bytes: usize) {
        if bytes > 0 {
            self.log.log(
                Level::Notice,
                format_args!("discarded {bytes} bytes sent in clear text after STARTTLS"),
            );
        }
    }

    /// TLS is up. As qpsmtpd's plugin: connection notes kept, greeting forgotten (EHLO is
    /// required again), transaction reset; and, per RFC 3207 §4.2, an AUTH done in clear
    /// text is forgotten too.
    pub fn tls_started(&mut self, tls: Established) {
        self.log.log(
            Level::Info,
            format_args!(
                "TLS established: {} {}{}",
                tls.info.version,
                tls.info.cipher,
                if tls.resumed { " (resumed session)" } else { "" }
            ),
        );
        self.conn.tls = Some(tls.info);
        self.conn.notes.insert("tls_enabled".into(), "1".into());
        self.tls.offered = false;
        self.auth.offered = false;
        self.auth_forget();
        if self.conn.hello.take().is_some() {
            self.reset_transaction();
        }
        self.state = State::Commands;
    }

    /// The handshake failed: one log line and the connection ends; the client gets no SMTP
    /// reply (it is speaking TLS, or nothing).
    pub fn tls_failed(&mut self, why: &str) {
        self.log.log(Level::Notice, format_args!("TLS failed: {why}"));
        if self.summary.outcome.is_empty() {
            self.summary.outcome = "TLS failed".into();
        }
        self.disconnect();
    }
}

/// `tls_ticket_keys`: `PATH [ROTATION_SECONDS]`; a relative path is in the config directory.
fn ticket_setting(line: &str, config_dir: &std::path::Path) -> Result<(PathBuf, Duration), String> {
    let mut words = line.split_whitespace();
    let path = PathBuf::from(words.next().unwrap_or_default());
    let path = if path.is_absolute() {
        path
    } else {
        config_dir.join(path)
    };
    let rotate = match words.next() {
        None => DEFAULT_TICKET_ROTATION,
        Some(w) => match w.parse::<u64>() {
            Ok(secs) if secs >= 60 => Duration::from_secs(secs),
            _ => {
                return Err(format!(
                    "tls_ticket_keys: rotation must be at least 60 seconds, not {w:?}"
                ));
            }
        },
    };
    Ok((path, rotate))
}
