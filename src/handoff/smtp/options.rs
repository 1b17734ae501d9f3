//! Where the next hop is and how to talk to it.

use std::path::PathBuf;
use std::time::Duration;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Host name or address, and port.
    Tcp(String, u16),
    /// A Unix socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Target::Tcp(h, p) => write!(f, "{h}:{p}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// STARTTLS policy towards the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Never.
    Off,
    /// When offered, without checking the certificate.
    May,
    /// Required, with a certificate for `name` that chains to the roots in `ca_file`.
    Verify {
        /// PEM file of trusted roots.
        ca_file: PathBuf,
        /// The name the certificate must carry.
        name: String,
    },
}

/// How to talk to the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each reply (all its lines), each write and the connect may take this long.
    pub timeout: Duration,
    /// LMTP (`LHLO`) instead of SMTP (`EHLO`).
    pub lmtp: bool,
    /// Our name in EHLO/LHLO.
    pub helo: String,
    /// STARTTLS policy.
    pub tls: Tls,
}
