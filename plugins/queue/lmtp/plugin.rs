//! queue/lmtp: delivers each message over LMTP (RFC 2033) to a Unix or TCP socket, such
//! as Dovecot's or Cyrus's LMTP service. See README.md beside this file.

use crate::config::Config;
use crate::handoff::relay::{self, Relay};
use crate::handoff::smtp::Target;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec};

/// The plugin instance.
pub struct Lmtp {
    relay: Relay,
}

/// `queue/lmtp SOCKET|HOST[:PORT] [tls off|may|verify] [tls_ca FILE] [tls_name NAME]
/// [timeout SECONDS]`; the LMTP port is 24 unless given.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let Some(where_to) = spec.args.first() else {
        return Err(PluginError::Args(
            "no LMTP server specified (queue/lmtp /path/to/socket or HOST[:PORT])".into(),
        ));
    };
    let (target, host) = parse_target(where_to)?;
    let settings = relay::parse_options(&spec.args[1..], target, true, &host)?;
    if settings.xclient {
        return Err(PluginError::Args(
            "xclient is an SMTP extension; LMTP servers do not offer it".into(),
        ));
    }
    Ok(Box::new(Lmtp {
        relay: Relay::new(settings),
    }))
}

/// `/path`, `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_target(s: &str) -> Result<(Target, String), String> {
    if s.starts_with('/') {
        return Ok((Target::Unix(s.into()), "localhost".into()));
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or_else(|| format!("bad address {s:?}"))?;
        (h, after.strip_prefix(':'))
    } else if s.matches(':').count() == 1 {
        let (h, p) = s.split_once(':').unwrap_or((s, ""));
        (h, Some(p))
    } else {
        (s, None)
    };
    let port = match port {
        None => 24,
        Some(p) => p.parse().map_err(|_| format!("bad port in {s:?}"))?,
    };
    if host.is_empty() {
        return Err(format!("bad address {s:?}"));
    }
    Ok((Target::Tcp(host.to_string(), port), host.to_string()))
}

impl Plugin for Lmtp {
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

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("/run/lmtp").unwrap().0,
            Target::Unix("/run/lmtp".into())
        );
        assert_eq!(
            parse_target("127.0.0.1:2424").unwrap().0,
            Target::Tcp("127.0.0.1".into(), 2424)
        );
        assert_eq!(
            parse_target("mail.example").unwrap().0,
            Target::Tcp("mail.example".into(), 24)
        );
        assert_eq!(parse_target("[::1]:24").unwrap().0, Target::Tcp("::1".into(), 24));
        assert!(parse_target("host:x").is_err());
    }
}
