//! The TLS files, opened while the process is still root.
//!
//! Started as root with an account in `user`, the process switches to that account before
//! it reads anything from the client. A private key that only root may read (`root:root
//! 0600`, what Postfix, Dovecot and Debian's snakeoil layout use) would then be out of
//! reach and every STARTTLS would get `454`. So, when the config loads the `tls` plugin,
//! its certificate, key and CA files and an existing ticket-key file are opened just
//! before the switch and kept open; they are read and parsed only when a client asks for
//! TLS. A session that never uses TLS pays a few `open` calls and nothing when the
//! config has no `tls` line.

use std::fs::File;
use std::path::PathBuf;

use super::TlsFiles;
use crate::config::Config;
use crate::plugin::chain::parse_spec;
use crate::plugin::registry;

/// Files opened before the switch; each is `None` when it could not be opened then (the
/// session tries the path again, and reports that error).
#[derive(Debug, Default)]
pub struct Preopened {
    /// The paths these are for (the `tls` plugin's arguments).
    pub files: TlsFiles,
    /// The certificate (and chain).
    pub cert: Option<File>,
    /// The private key.
    pub key: Option<File>,
    /// The CA file, when it exists.
    pub ca: Option<File>,
    /// The ticket-key file, when it exists.
    pub tickets: Option<File>,
}

impl Default for TlsFiles {
    fn default() -> TlsFiles {
        TlsFiles {
            cert: PathBuf::new(),
            key: PathBuf::new(),
            ca: PathBuf::new(),
        }
    }
}

/// The `tls` plugin's files as the config names them, when it loads the plugin.
pub fn tls_files(config: &Config) -> Option<TlsFiles> {
    let lines = config.lines("plugins").ok()?;
    lines.entries().iter().find_map(|entry| {
        let spec = parse_spec(entry).ok()?;
        (registry::canonical(&spec.base) == "tls").then(|| TlsFiles::from_args(&spec.args, config.dir()))
    })
}

/// Opens the files a TLS session would read, when the config loads the `tls` plugin.
/// Nothing is read from them here.
pub fn preopen(config: &Config) -> Option<Preopened> {
    let files = tls_files(config)?;
    // Without waiting, and only regular files: a FIFO here would hold the session before
    // its greeting.
    let open = |p: &PathBuf| crate::config::open_regular(p).ok();
    let ca = if files.ca.is_file() { open(&files.ca) } else { None };
    let tickets = config
        .first("tls_ticket_keys")
        .ok()
        .and_then(|line| {
            super::ticket_setting(line.as_deref(), config.dir())
                .ok()
                .flatten()
        })
        .and_then(|t| crate::config::open_regular(&t.path).ok());
    Some(Preopened {
        cert: open(&files.cert),
        key: open(&files.key),
        ca,
        tickets,
        files,
    })
}
