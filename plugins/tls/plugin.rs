//! tls: makes STARTTLS (and implicit TLS on port 465) possible. See README.md beside this
//! file.
//!
//! The plugin only names the files; the core offers STARTTLS, the driver does the
//! handshake, and the certificate and key are read when a client asks for TLS, so
//! connections that never use TLS pay nothing for it.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginSpec};
use crate::tls::TlsFiles;

/// The plugin instance.
pub struct Tls {
    files: TlsFiles,
}

/// `tls [CERT [KEY [CA]]]`, qpsmtpd's positional arguments; relative paths are taken from
/// the config directory. Defaults: `ssl/qpsmtpd-server.crt`, `ssl/qpsmtpd-server.key`,
/// `ssl/qpsmtpd-ca.crt`.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, String> {
    if spec.args.len() > 4 {
        return Err(format!(
            "too many arguments: {} (tls [cert [key [ca]]])",
            spec.args.join(" ")
        ));
    }
    let arg = |i: usize, default: &str| -> PathBuf {
        let given = spec.args.get(i).map_or(default, String::as_str);
        resolve(config.dir(), given)
    };
    // qpsmtpd's fourth argument (a dhparam file) has no meaning with rustls: TLS 1.2 and
    // 1.3 there use elliptic-curve key exchange only. It is accepted and ignored.
    Ok(Box::new(Tls {
        files: TlsFiles {
            cert: arg(0, "ssl/qpsmtpd-server.crt"),
            key: arg(1, "ssl/qpsmtpd-server.key"),
            ca: arg(2, "ssl/qpsmtpd-ca.crt"),
        },
    }))
}

fn resolve(dir: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    }
}

impl Plugin for Tls {
    fn hooks(&self) -> Vec<Hook> {
        Vec::new()
    }

    fn run(&self, _hook: Hook, _cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        Outcome::declined()
    }

    fn tls_files(&self) -> Option<TlsFiles> {
        Some(self.files.clone())
    }
}
