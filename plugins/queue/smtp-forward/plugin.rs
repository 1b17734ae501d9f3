//! queue/smtp-forward: forwards each message to a next-hop SMTP server, asking it about
//! each recipient at RCPT time. See README.md beside this file.

use crate::config::Config;
use crate::handoff::relay::{self, Relay};
use crate::handoff::smtp::Target;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec};

/// The plugin instance.
pub struct SmtpForward {
    relay: Relay,
}

/// `queue/smtp-forward HOST [PORT] [xclient] [tls off|may|verify] [tls_ca FILE]
/// [tls_name NAME] [timeout SECONDS]`, as qpsmtpd's `HOST [PORT] [xclient]` plus the
/// new keys.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let Some(host) = spec.args.first() else {
        return Err(PluginError::Args(
            "no SMTP server specified (queue/smtp-forward HOST [PORT] [xclient] ...)".into(),
        ));
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c))
    {
        return Err(PluginError::Args(format!("bad SMTP server {host:?}")));
    }
    let mut rest = &spec.args[1..];
    let mut port = 25;
    if let Some(p) = rest.first().filter(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        port = p.parse().map_err(|_| format!("bad port {p:?}"))?;
        rest = &rest[1..];
    }
    let settings = relay::parse_options(rest, Target::Tcp(host.clone(), port), false, &host)?;
    Ok(Box::new(SmtpForward {
        relay: Relay::new(settings),
    }))
}

impl Plugin for SmtpForward {
    fn hooks(&self) -> Vec<Hook> {
        vec![
            Hook::RcptPost,
            Hook::Queue,
            Hook::ResetTransaction,
            Hook::Disconnect,
        ]
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        relay::dispatch(&self.relay, hook, cx, args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::testing::spec;

    /// The host is a name or an address (brackets allowed), never empty and never
    /// anything that could be taken for more than one host name.
    #[test]
    fn host_argument() {
        let config = Config::empty();
        let load = |args: &[&str]| new(&spec("queue/smtp-forward", args), &config).map(|_| ());
        for good in ["mx.example.org", "[192.0.2.1]", "2001:db8::1", "mx-1.example_x"] {
            assert!(load(&[good]).is_ok(), "{good}");
        }
        for bad in ["", "[]", "mx example", "mx/evil", "a@b", "mx,other"] {
            let err = load(&[bad]).unwrap_err().to_string();
            assert!(err.contains("bad SMTP server"), "{bad}: {err}");
        }
        assert!(load(&[]).is_err());
        assert!(load(&["mx.example.org", "2525"]).is_ok());
        assert!(load(&["mx.example.org", "99999"]).is_err());
    }
}
