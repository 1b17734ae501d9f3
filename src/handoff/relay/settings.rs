//! The arguments smtp-forward and lmtp share.

use std::time::Duration;

use super::super::smtp::{Options, Target, Tls};
use super::super::{DEFAULT_TIMEOUT, parse_timeout, tls};
use crate::plugin::PluginError;

/// The settings of one forwarding plugin instance.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to.
    pub target: Target,
    /// Timeouts, LMTP or SMTP, TLS.
    pub options: Options,
    /// Send XCLIENT (Postfix) with the original client's facts.
    pub xclient: bool,
}

/// The flags and keys shared with queue/lmtp.
pub fn parse_options(
    args: &[String],
    target: Target,
    lmtp: bool,
    host: &str,
) -> Result<Settings, PluginError> {
    let mut xclient = false;
    let mut tls_mode = "off".to_string();
    let mut ca = None;
    let mut name = None;
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT);
    let mut it = args.iter();
    while let Some(word) = it.next() {
        if word.eq_ignore_ascii_case("xclient") {
            xclient = true;
            continue;
        }
        let Some(value) = it.next() else {
            return Err(PluginError::Args(format!("{word} needs a value")));
        };
        match word.as_str() {
            "tls" => tls_mode = value.clone(),
            "tls_ca" => ca = Some(std::path::PathBuf::from(value)),
            "tls_name" => name = Some(value.clone()),
            "timeout" => timeout = parse_timeout(value)?,
            _ => return Err(PluginError::Args(format!("unknown argument {word:?}"))),
        }
    }
    let tls = match tls_mode.as_str() {
        "off" | "none" => Tls::Off,
        "may" => Tls::May,
        "verify" | "require" => Tls::Verify {
            ca_file: ca.unwrap_or_else(|| tls::SYSTEM_ROOTS.into()),
            name: name.unwrap_or_else(|| host.to_string()),
        },
        other => {
            return Err(PluginError::Args(format!(
                "tls must be off, may or verify, not {other:?}"
            )));
        }
    };
    if tls != Tls::Off && matches!(target, Target::Unix(_)) {
        return Err(PluginError::Args(
            "STARTTLS over a Unix socket makes no sense; use tls off".into(),
        ));
    }
    Ok(Settings {
        target,
        options: Options {
            timeout,
            lmtp,
            helo: String::new(),
            tls,
        },
        xclient,
    })
}
