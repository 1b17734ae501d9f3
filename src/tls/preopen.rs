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
use crate::plugin::registry;
use crate::plugin::spec::parse_spec;

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
    lines.each().find_map(|entry| {
        let spec = parse_spec(entry.text, entry.file.into(), entry.line).ok()?;
        (registry::canonical(spec.base()) == "tls").then(|| TlsFiles::from_args(&spec.args, config.dir()))
    })
}

/// Opens the files a TLS session would read, when the config loads the `tls` plugin.
/// Nothing is read from them here, and no open can block (a FIFO at a path would hang
/// every connection before its greeting): only regular files are kept. The ticket-key file
/// lies in the service user's directory, so it is also never opened through a symlink
/// (that user could otherwise point root at any file); the certificate files may be
/// symlinks (Let's Encrypt's are), as the config that names them is root's.
pub fn preopen(config: &Config) -> Option<Preopened> {
    let files = tls_files(config)?;
    let ca = if files.ca.is_file() {
        open_regular(&files.ca)
    } else {
        None
    };
    let tickets = config
        .first("tls_ticket_keys")
        .ok()
        .and_then(|line| {
            super::ticket_setting(line.as_deref(), config.dir())
                .ok()
                .flatten()
        })
        .and_then(|t| super::tickets::open_key_file(&t.path).ok());
    Some(Preopened {
        cert: open_regular(&files.cert),
        key: open_regular(&files.key),
        ca,
        tickets,
        files,
    })
}

/// A regular file opened for reading without waiting on a FIFO or device.
fn open_regular(path: &PathBuf) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let flags = nix::fcntl::OFlag::O_NONBLOCK | nix::fcntl::OFlag::O_NOCTTY;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits())
        .open(path)
        .ok()?;
    file.metadata().ok()?.file_type().is_file().then_some(file)
}
