//! tls: makes STARTTLS (and implicit TLS on port 465) possible. See README.md beside this
//! file.
//!
//! The plugin only names the files; the core offers STARTTLS, the driver does the
//! handshake, and the certificate and key are read when a client asks for TLS, so
//! connections that never use TLS pay nothing for it.

use crate::config::Config;
use crate::plugin::{Args, Context, Hook, Offers, Outcome, Plugin, PluginError, PluginSpec};
use crate::tls::TlsFiles;

/// The plugin instance.
pub struct Tls {
    files: TlsFiles,
}

/// `tls [CERT [KEY [CA]]]`, qpsmtpd's positional arguments; relative paths are taken from
/// the config directory. Defaults: `ssl/qpsmtpd-server.crt`, `ssl/qpsmtpd-server.key`,
/// `ssl/qpsmtpd-ca.crt`.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if spec.args.len() > 4 {
        return Err(PluginError::Args(format!(
            "too many arguments: {} (tls [cert [key [ca]]])",
            spec.args.join(" ")
        )));
    }
    // qpsmtpd's fourth argument (a dhparam file) has no meaning with rustls: TLS 1.2 and
    // 1.3 there use elliptic-curve key exchange only. It is accepted and ignored. The same
    // reading of the arguments opens the files before a privilege switch
    // (crate::tls::preopen).
    Ok(Box::new(Tls {
        files: TlsFiles::from_args(&spec.args, config.dir()),
    }))
}

impl Plugin for Tls {
    fn hooks(&self) -> Vec<Hook> {
        Vec::new()
    }

    fn run(&self, _hook: Hook, _cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        Outcome::declined()
    }

    fn offers(&self) -> Offers {
        Offers {
            tls: Some(self.files.clone()),
            ..Offers::default()
        }
    }
}
