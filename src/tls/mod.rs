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

pub mod policy;
pub mod stream;
pub mod tickets;
pub mod ucspi;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::connection::TlsInfo;

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

/// What the `tls` plugin and its config files say, before any file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// Certificate, key and CA files.
    pub files: TlsFiles,
    /// `tls_ciphers`: OpenSSL-style cipher list, mapped by [`policy::cipher_suites`].
    pub ciphers: Option<String>,
    /// `tls_protocols`: OpenSSL-style protocol list, mapped by [`policy::versions`].
    pub protocols: Option<String>,
    /// `tls_ticket_keys`: the shared ticket key file and how often its key is replaced.
    pub tickets: Option<(PathBuf, Duration)>,
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
    /// Why session resumption is off, when it was asked for but cannot work.
    pub warning: Option<String>,
}

/// Reads the certificate and key and builds the rustls configuration (TLS 1.2 and 1.3,
/// ring provider passed explicitly). Called only when a client asks for TLS.
pub fn server_config(settings: &TlsSettings) -> Result<Acceptor, String> {
    let s = &settings.files;
    let mut chain = CertificateDer::pem_file_iter(&s.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("certificate {}: {e}", s.cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "certificate {}: no certificate in the file",
            s.cert.display()
        ));
    }
    if s.ca.is_file() {
        let ca = CertificateDer::pem_file_iter(&s.ca)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("CA file {}: {e}", s.ca.display()))?;
        for cert in ca {
            if !chain.contains(&cert) {
                chain.push(cert);
            }
        }
    }
    let key = PrivateKeyDer::from_pem_file(&s.key).map_err(|e| format!("key {}: {e}", s.key.display()))?;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = policy::cipher_suites(&provider.cipher_suites, settings.ciphers.as_deref())?;
    let versions = policy::versions(settings.protocols.as_deref())?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_ciphers/tls_protocols: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            format!(
                "certificate {} and key {}: {e}",
                s.cert.display(),
                s.key.display()
            )
        })?;
    // A session cache in memory dies with this process; only shared tickets can resume.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    let mut warning = None;
    if let Some((path, rotate)) = &settings.tickets {
        match tickets::TicketKeys::load(path, *rotate) {
            Ok(keys) => {
                config.ticketer = Arc::new(keys);
                config.send_tls13_tickets = 1;
            }
            Err(e) => warning = Some(format!("TLS session resumption off: {e}")),
        }
    }
    Ok(Acceptor {
        config: Arc::new(config),
        warning,
    })
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
