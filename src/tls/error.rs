//! Why TLS could not be set up or did not start ([`TlsError`]): one type for the
//! settings, the files, the session-ticket keys and the two kinds of handshake, so the
//! session, `--check` and the log say the same thing about the same fault.

use std::fmt;
use std::path::PathBuf;

use crate::config::ConfigError;

/// One of the files the `tls` plugin names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PemFile {
    /// The server certificate (and its chain).
    Certificate,
    /// The private key.
    Key,
    /// The CA certificates added to the chain.
    Ca,
}

impl PemFile {
    fn name(self) -> &'static str {
        match self {
            PemFile::Certificate => "certificate",
            PemFile::Key => "key",
            PemFile::Ca => "CA file",
        }
    }
}

/// Why TLS could not be set up, or why a handshake failed.
#[derive(Debug)]
pub enum TlsError {
    /// No loaded plugin makes TLS possible (the `tls` plugin).
    NoPlugin,
    /// A config item could not be read.
    Config(ConfigError),
    /// A setting (`tls_ciphers`, `tls_protocols`, `tls_ticket_keys`) asks for something
    /// that cannot be done.
    Setting {
        /// The config item.
        item: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// A certificate, key or CA file could not be read or holds nothing usable.
    File {
        /// Which of the files.
        file: PemFile,
        /// Its path.
        path: PathBuf,
        /// What went wrong.
        problem: String,
    },
    /// The certificate and key were read but do not make a TLS configuration (they do
    /// not match, or the key type is not supported).
    CertificateAndKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        problem: String,
    },
    /// The session-ticket key file (or its lock) cannot be used.
    TicketKeys {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The client did not finish the handshake in time.
    HandshakeTimeout,
    /// The client closed the connection during the handshake.
    ClientClosed,
    /// The handshake failed (rustls's reason: no common cipher, a bad record, ...).
    Handshake(String),
    /// Talking to the UCSPI-TLS super-server failed, or it reported a failed handshake.
    Ucspi(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::NoPlugin => f.write_str("TLS needs the tls plugin in config/plugins"),
            TlsError::Config(e) => write!(f, "{e}"),
            TlsError::Setting { item, problem } => write!(f, "{item}: {problem}"),
            TlsError::File { file, path, problem } => {
                write!(f, "{} {}: {problem}", file.name(), path.display())
            }
            TlsError::CertificateAndKey { cert, key, problem } => write!(
                f,
                "certificate {} and key {}: {problem}",
                cert.display(),
                key.display()
            ),
            TlsError::TicketKeys { path, problem } => write!(f, "{}: {problem}", path.display()),
            TlsError::HandshakeTimeout => f.write_str("timeout during the TLS handshake"),
            TlsError::ClientClosed => f.write_str("client closed the connection during the TLS handshake"),
            TlsError::Handshake(why) => write!(f, "TLS handshake failed: {why}"),
            TlsError::Ucspi(why) => write!(f, "UCSPI-TLS: {why}"),
        }
    }
}

impl std::error::Error for TlsError {}

impl From<ConfigError> for TlsError {
    fn from(e: ConfigError) -> TlsError {
        TlsError::Config(e)
    }
}

impl TlsError {
    /// A problem with the ticket-key file at `path`.
    pub fn tickets(path: &std::path::Path, problem: impl fmt::Display) -> TlsError {
        TlsError::TicketKeys {
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }

    /// A problem with one of the PEM files.
    pub fn file(file: PemFile, path: &std::path::Path, problem: impl fmt::Display) -> TlsError {
        TlsError::File {
            file,
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}
