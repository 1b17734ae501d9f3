//! TLS for STARTTLS (RFC 3207), implicit TLS (RFC 8314, port 465) and UCSPI-TLS.
//!
//! The session never touches the connection: it says it wants TLS ([`crate::session::Want`])
//! and the driver ([`crate::server`]) performs the handshake with one of two upgrades:
//!
//! * in-process with rustls ([`stream`]), configured from the `tls` plugin's certificate and
//!   key, which are read only when a client asks for TLS ([`server_config`]);
//! * handed to a UCSPI-TLS super-server such as `sslserver -n` ([`ucspi`]), which holds the
//!   certificate itself.
//!
//! Every process serves one connection, so TLS session tickets are encrypted with keys
//! shared through a file ([`tickets`]): a client that comes back skips the full handshake.
//!
//! Started as root, the process opens the certificate, key and ticket-key files before it
//! switches to its account ([`preopen`]), so keys only root may read work; they are still
//! read and parsed only when a client asks for TLS.

pub mod error;
pub mod policy;
pub mod preopen;
pub mod stream;
pub mod tickets;
pub mod ucspi;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::connection::TlsInfo;
pub use error::{PemFile, TlsError};

/// The files the `tls` plugin names (its arguments), not read until TLS starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server certificate (PEM; the chain may follow it in the same file).
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates appended to the chain when the file exists (qpsmtpd's third argument).
    pub ca: PathBuf,
}

impl TlsFiles {
    /// The `tls [CERT [KEY [CA]]]` arguments (qpsmtpd's, positional); relative paths are in
    /// the config directory. Defaults: `ssl/qpsmtpd-server.crt`, `ssl/qpsmtpd-server.key`,
    /// `ssl/qpsmtpd-ca.crt`.
    pub fn from_args(args: &[String], config_dir: &Path) -> TlsFiles {
        let arg = |i: usize, default: &str| -> PathBuf {
            let given = Path::new(args.get(i).map_or(default, String::as_str));
            if given.is_absolute() {
                given.to_path_buf()
            } else {
                config_dir.join(given)
            }
        };
        TlsFiles {
            cert: arg(0, "ssl/qpsmtpd-server.crt"),
            key: arg(1, "ssl/qpsmtpd-server.key"),
            ca: arg(2, "ssl/qpsmtpd-ca.crt"),
        }
    }
}

/// Where session-ticket keys are kept when `tls_ticket_keys` does not say: the systemd
/// units' `StateDirectory=`, created by the Debian package for the service's account.
pub const DEFAULT_TICKET_KEYS: &str = "/var/lib/qpsmtpd-rs/tls-ticket-keys";

/// The longest rotation period of the shared ticket key: 7 days.
pub const MAX_TICKET_ROTATION: u64 = 7 * 24 * 3600;

/// The default rotation period of the shared ticket key.
pub const DEFAULT_TICKET_ROTATION: Duration = Duration::from_secs(12 * 3600);

/// The ticket-key file a session uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketSetting {
    /// The file.
    pub path: PathBuf,
    /// How often its key is replaced.
    pub rotate: Duration,
    /// Named by `tls_ticket_keys` (else the default place).
    pub configured: bool,
}

/// `tls_ticket_keys`: `PATH [ROTATION_SECONDS]` (a relative path is in the config
/// directory), `none` for no resumption, or nothing for [`DEFAULT_TICKET_KEYS`].
pub fn ticket_setting(line: Option<&str>, config_dir: &Path) -> Result<Option<TicketSetting>, TlsError> {
    let Some(line) = line else {
        return Ok(Some(TicketSetting {
            path: PathBuf::from(DEFAULT_TICKET_KEYS),
            rotate: DEFAULT_TICKET_ROTATION,
            configured: false,
        }));
    };
    let mut words = line.split_whitespace();
    let first = words.next().unwrap_or_default();
    if first.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let path = PathBuf::from(first);
    let path = if path.is_absolute() {
        path
    } else {
        config_dir.join(path)
    };
    let rotate = match words.next() {
        None => DEFAULT_TICKET_ROTATION,
        Some(w) => match w.parse::<u64>() {
            // A ticket lives one rotation period, and RFC 8446 §4.6.1 allows a ticket
            // lifetime of at most 7 days.
            Ok(secs) if (60..=MAX_TICKET_ROTATION).contains(&secs) => Duration::from_secs(secs),
            _ => {
                return Err(TlsError::Setting {
                    item: "tls_ticket_keys",
                    problem: format!("rotation must be from 60 to {MAX_TICKET_ROTATION} seconds, not {w:?}"),
                });
            }
        },
    };
    Ok(Some(TicketSetting {
        path,
        rotate,
        configured: true,
    }))
}

/// What the `tls` plugin and its config files say, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate, key and CA files.
    pub files: TlsFiles,
    /// `tls_ciphers`: OpenSSL-style cipher list, mapped by [`policy::cipher_suites`].
    pub ciphers: Option<String>,
    /// `tls_protocols`: OpenSSL-style protocol list, mapped by [`policy::versions`].
    pub protocols: Option<String>,
    /// `tls_ticket_keys`: the shared ticket key file and how often its key is replaced;
    /// `None` when resumption is off (`tls_ticket_keys none`).
    pub tickets: Option<TicketSetting>,
}

/// A finished handshake, as the driver reports it to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Established {
    /// Version and cipher, for Received and plugins.
    pub info: TlsInfo,
    /// Was the session resumed from a ticket (no full handshake)?
    pub resumed: bool,
}

/// A ready rustls configuration and anything worth a log line about how it was built.
pub struct Acceptor {
    /// The configuration for [`stream::handshake`].
    pub config: Arc<ServerConfig>,
    /// Why session resumption is off or limited, when it was asked for but cannot work as
    /// meant, and whether that is worth a warning (a configured file) or only a notice
    /// (the default place missing, e.g. outside the package).
    pub warning: Option<(String, bool)>,
}

/// The largest certificate, key or CA file read (a long chain is a few dozen KiB).
const MAX_PEM_FILE: u64 = 4 * 1024 * 1024;

/// Reads a whole file opened earlier (as root) or, without one, by its path. Only a
/// regular file is read, opened without waiting: a FIFO or a device named as a
/// certificate must not hold the session (README Differences 33), and at most
/// [`MAX_PEM_FILE`] bytes of it.
fn read_all(opened: Option<std::fs::File>, path: &Path) -> std::io::Result<Vec<u8>> {
    let file = match opened {
        Some(file) => file,
        None => crate::config::open_regular(path)?,
    };
    let mut bytes = Vec::new();
    file.take(MAX_PEM_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_PEM_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_PEM_FILE / 1024 / 1024
        )));
    }
    Ok(bytes)
}

/// Reads the certificate and key and builds the rustls configuration (TLS 1.2 and 1.3,
/// ring provider passed explicitly). Called only when a client asks for TLS; `opened`
/// holds the files opened before the switch to the service account, if any.
pub fn server_config(
    settings: &TlsSettings,
    opened: Option<preopen::Preopened>,
) -> Result<Acceptor, TlsError> {
    let s = &settings.files;
    let mut opened = opened.filter(|o| o.files == *s).unwrap_or_default();
    let chain = certificate_chain(s, &mut opened)?;
    let key_file = |e: &dyn std::fmt::Display| TlsError::file(PemFile::Key, &s.key, e);
    let key_pem = read_all(opened.key.take(), &s.key).map_err(|e| key_file(&e))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| key_file(&e))?;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = policy::cipher_suites(&provider.cipher_suites, settings.ciphers.as_deref())?;
    let versions = policy::versions(settings.protocols.as_deref())?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| TlsError::Setting {
            item: "tls_ciphers/tls_protocols",
            problem: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::CertificateAndKey {
            cert: s.cert.clone(),
            key: s.key.clone(),
            problem: e.to_string(),
        })?;
    // A session cache in memory dies with this process; only shared tickets can resume.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    let warning = match &settings.tickets {
        Some(t) => use_tickets(&mut config, t, opened.tickets.take()),
        None => None,
    };
    Ok(Acceptor {
        config: Arc::new(config),
        warning,
    })
}

/// The certificate file's chain, with the CA file's certificates it lacks after it.
fn certificate_chain(
    s: &TlsFiles,
    opened: &mut preopen::Preopened,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let cert_file = |e: &dyn std::fmt::Display| TlsError::file(PemFile::Certificate, &s.cert, e);
    let cert_pem = read_all(opened.cert.take(), &s.cert).map_err(|e| cert_file(&e))?;
    let mut chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_file(&e))?;
    if chain.is_empty() {
        return Err(cert_file(&"no certificate in the file"));
    }
    let ca_file = opened.ca.take();
    if ca_file.is_some() || s.ca.is_file() {
        let ca_error = |e: &dyn std::fmt::Display| TlsError::file(PemFile::Ca, &s.ca, e);
        let ca_pem = read_all(ca_file, &s.ca).map_err(|e| ca_error(&e))?;
        let ca = CertificateDer::pem_slice_iter(&ca_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_error(&e))?;
        for cert in ca {
            if !chain.contains(&cert) {
                chain.push(cert);
            }
        }
    }
    Ok(chain)
}

/// Shared session tickets from the key file; the warning (and whether it is serious)
/// when resumption is off or the file needed attention.
fn use_tickets(
    config: &mut ServerConfig,
    t: &TicketSetting,
    opened: Option<std::fs::File>,
) -> Option<(String, bool)> {
    match tickets::TicketKeys::load(&t.path, t.rotate, opened) {
        Ok((keys, note)) => {
            config.ticketer = Arc::new(keys);
            config.send_tls13_tickets = 1;
            note.map(|n| (format!("TLS session tickets: {n}"), true))
        }
        Err(e) => Some(match t.path.parent().filter(|d| !t.configured && !d.is_dir()) {
            // Outside the package (a test, a config of one's own) the default place may
            // not exist: worth a notice, not a warning.
            Some(dir) => (
                format!(
                    "TLS session resumption off: {} does not exist (create it for the \
                     service's user, or set tls_ticket_keys)",
                    dir.display()
                ),
                false,
            ),
            None => (format!("TLS session resumption off: {e}"), true),
        }),
    }
}

/// `TLSv1.3` and `TLS_AES_256_GCM_SHA384` from a finished rustls connection.
pub fn info_of(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        Some(other) => format!("{other:?}"),
        None => "unknown".to_string(),
    };
    let cipher = conn
        .negotiated_cipher_suite()
        .map(|s| policy::iana_name(s.suite()))
        .unwrap_or_else(|| "unknown".to_string());
    TlsInfo { version, cipher }
}
