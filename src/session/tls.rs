//! STARTTLS (RFC 3207) and TLS on port 465 as qpsmtpd's `tls` plugin does them, without
//! I/O: the session answers and changes state; the driver does the handshake in between.
//!
//! ```text
//! STARTTLS ─► certificate ─┬─ Err ─► 454, clear text goes on
//!                          └─ Ok ──► 220, Want::StartTls ─► driver: flush, discard read-ahead
//!                                    (CVE-2011-0411), handshake ─┬─ TlsStarted: EHLO again
//!                                                                └─ TlsFailed: log, close
//! ```

use nix::unistd::{AccessFlags, access};

use super::fixed::{STARTTLS_PARAMETERS, TLS_GO_AHEAD, TLS_UNAVAILABLE};
use super::summary::Ending;
use super::{Session, State, TlsStart};
use crate::log::Level;
use crate::tls::preopen::Preopened;
use crate::tls::{self, Acceptor, Established, TicketSetting, TlsError, TlsSettings};

/// What the session knows about TLS besides [`crate::connection::Connection::tls`].
#[derive(Debug, Default)]
pub(super) struct TlsState {
    /// The last EHLO reply offered STARTTLS.
    pub(super) offered: bool,
    /// A UCSPI-TLS super-server does the handshake.
    ucspi: bool,
    /// The files opened as root before the switch to the service account.
    pub(super) preopened: Option<Preopened>,
}

/// What `--check` found about TLS.
#[derive(Debug)]
pub struct TlsReport {
    /// The certificate file that loaded with its key.
    pub cert: String,
    /// Where session tickets go, or why not.
    pub tickets: String,
    /// Problems that do not stop TLS (resumption off).
    pub warnings: Vec<String>,
}

impl Session {
    /// Is a plugin loaded that makes TLS possible (the `tls` plugin)?
    pub fn tls_available(&self) -> bool {
        self.offers.tls.is_some()
    }

    /// Did the client connect to port 465, where TLS comes first (as qpsmtpd's `tls`
    /// plugin had it)? Only with the plugin.
    pub(super) fn implicit_tls(&self) -> bool {
        self.tls_available() && self.conn.local_port == Some(465)
    }

    /// TLS before the greeting (port 465, `--implicit-tls`): without the plugin or a
    /// usable certificate the connection ends without a word.
    pub(super) fn implicit_tls_first(&mut self) {
        match self.tls_start() {
            Ok(how) => {
                self.enter(State::StartTls { how, greet: true });
            }
            Err(e) => self.tls_failed(&e, 0),
        }
    }

    /// How the handshake will be done: by the UCSPI-TLS super-server, or with our
    /// certificate (read now: only sessions that use TLS read it). Either way only with
    /// the plugin.
    fn tls_start(&mut self) -> Result<TlsStart, TlsError> {
        if !self.tls_available() {
            return Err(TlsError::NoPlugin);
        }
        if self.tls.ucspi {
            return Ok(TlsStart::Ucspi);
        }
        Ok(TlsStart::Rustls(self.tls_acceptor()?.config))
    }

    /// Notes how TLS may start when the connection opens.
    pub(super) fn set_ucspi_tls(&mut self, ucspi: bool) {
        self.tls.ucspi = ucspi;
    }

    /// STARTTLS is a command only right after an EHLO that offered it.
    pub(super) fn starttls_offered(&self) -> bool {
        self.tls.offered && self.conn.tls.is_none()
    }

    /// STARTTLS: no parameters (RFC 3207 §4: 501); a certificate that cannot be used is
    /// `454` and clear text goes on (RFC 3207 §4); else `220` and the driver takes over.
    pub(super) fn starttls(&mut self, rest: &str) {
        if !rest.trim().is_empty() {
            return self.reply(STARTTLS_PARAMETERS.reply());
        }
        match self.tls_start() {
            Ok(how) => {
                self.reply(TLS_GO_AHEAD.reply());
                self.enter(State::StartTls { how, greet: false });
            }
            Err(why) => {
                self.log.log(Level::Error, format_args!("STARTTLS: {why}"));
                self.reply(TLS_UNAVAILABLE.reply());
            }
        }
    }

    /// The settings for a handshake: the plugin's files and `tls_ciphers`, `tls_protocols`
    /// and `tls_ticket_keys`, read now (only sessions that use TLS read them).
    fn tls_settings(&self) -> Result<TlsSettings, TlsError> {
        let files = self.offers.tls.clone().ok_or(TlsError::NoPlugin)?;
        let first = |name: &str| -> Result<Option<String>, TlsError> {
            let lines = self.chain.config(name, &self.config, &self.log)?;
            Ok(lines.first().map(str::to_string))
        };
        let tickets = tls::ticket_setting(first("tls_ticket_keys")?.as_deref(), self.config.dir())?;
        Ok(TlsSettings {
            files,
            ciphers: first("tls_ciphers")?,
            protocols: first("tls_protocols")?,
            tickets,
        })
    }

    /// Reads the certificate and key and builds the TLS configuration.
    fn tls_acceptor(&mut self) -> Result<Acceptor, TlsError> {
        let settings = self.tls_settings()?;
        let acceptor = tls::server_config(&settings, self.tls.preopened.take())?;
        if let Some((warning, serious)) = &acceptor.warning {
            let level = if *serious { Level::Warn } else { Level::Notice };
            self.log.log(level, format_args!("{warning}"));
        }
        Ok(acceptor)
    }

    /// For `--check`: builds the TLS configuration as a STARTTLS would, without logging,
    /// and says what will become of session tickets. `None` without the tls plugin.
    pub fn tls_check(&mut self) -> Option<Result<TlsReport, TlsError>> {
        let mut settings = match self.tls_settings() {
            Ok(s) => s,
            Err(_) if !self.tls_available() => return None,
            Err(e) => return Some(Err(e)),
        };
        // The ticket key file is not made or rotated by --check (perhaps as root it would
        // not be the service user's); only looked at.
        let tickets = settings.tickets.take();
        let mut preopened = self.tls.preopened.take();
        let ticket_file = preopened.as_mut().and_then(|p| p.tickets.take());
        let acceptor = match tls::server_config(&settings, preopened) {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        let mut warnings: Vec<String> = acceptor.warning.into_iter().map(|w| w.0).collect();
        let tickets = match tickets {
            None => "off (tls_ticket_keys none)".to_string(),
            Some(t) => match ticket_check(&t, ticket_file) {
                Ok(text) => text,
                Err(e) => {
                    warnings.push(format!("TLS session resumption will be off: {e}"));
                    format!("{} (unusable)", t.path.display())
                }
            },
        };
        Some(Ok(TlsReport {
            cert: settings.files.cert.display().to_string(),
            tickets,
            warnings,
        }))
    }

    /// The handshake worked. As qpsmtpd's plugin: connection notes kept, greeting
    /// forgotten (EHLO is required again), transaction reset; and, per RFC 3207 §4.2, an
    /// AUTH done in clear text is forgotten too. On port 465 the greeting follows.
    pub(super) fn tls_started(&mut self, tls: Established, discarded: usize) {
        self.log_discarded(discarded);
        let left = self.enter(State::Commands);
        self.tls_established(tls);
        if matches!(left, State::StartTls { greet: true, .. }) {
            self.start();
        }
    }

    /// TLS is up (after a handshake, or done by the super-server before we started).
    pub(super) fn tls_established(&mut self, tls: Established) {
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
    }

    /// The handshake failed: one log line and the connection ends; the client gets no SMTP
    /// reply (it is speaking TLS, or nothing).
    pub(super) fn tls_failed(&mut self, why: &TlsError, discarded: usize) {
        self.log_discarded(discarded);
        self.log.log(Level::Notice, format_args!("TLS failed: {why}"));
        self.summary.end_unless_known(Ending::TlsFailed);
        self.disconnect();
    }

    /// The client sent more after STARTTLS before the handshake; it was thrown away unread
    /// (CVE-2011-0411: it must never be taken as if it had come over TLS).
    fn log_discarded(&self, bytes: usize) {
        if bytes > 0 {
            self.log.log(
                Level::Notice,
                format_args!("discarded {bytes} bytes sent in clear text after STARTTLS"),
            );
        }
    }
}

/// Can this user use the ticket-key file: read it (as opened before the switch, or now)
/// if it exists, else create it in its directory?
fn ticket_check(t: &TicketSetting, opened: Option<std::fs::File>) -> Result<String, TlsError> {
    let rotate = format!("new key every {} s", t.rotate.as_secs());
    // A dangling symlink exists too: the session refuses it, so --check must see it.
    let exists = opened.is_some() || t.path.symlink_metadata().is_ok();
    if exists {
        tls::tickets::TicketKeys::check_file(&t.path, opened)?;
        return Ok(format!("{} ({rotate})", t.path.display()));
    }
    let dir = t
        .path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        return Err(TlsError::tickets(dir, "does not exist"));
    }
    access(dir, AccessFlags::W_OK | AccessFlags::X_OK)
        .map_err(|e| TlsError::tickets(dir, format!("not writable by this user: {}", e.desc())))?;
    Ok(format!(
        "{} (made by the first TLS session; {rotate})",
        t.path.display()
    ))
}
