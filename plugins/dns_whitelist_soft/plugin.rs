//! dns_whitelist_soft: marks clients listed in DNS whitelists (`whitelist_zones`) with the
//! connection note `whitelisthost`, which exempts them from the plugins after it. See
//! README.md beside this file.

use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, Rdata, RecordType, Settings, lists, reverse_name};
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, key_values, truthy};

/// How long the lookups may take by default (qpsmtpd waited at most 4 s for them).
const DEFAULT_LIMIT: Duration = Duration::from_secs(4);
/// Longest note text.
const MAX_TEXT: usize = 400;

/// The plugin instance.
pub struct DnsWhitelistSoft {
    limit: Duration,
}

/// `dns_whitelist_soft [timeout SECONDS]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "timeout" => limit = lists::timeout(&v)?,
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: timeout)"
                )));
            }
        }
    }
    Settings::check(config)?;
    lists::check_lines(config, "whitelist_zones", zone)?;
    Ok(Box::new(DnsWhitelistSoft { limit }))
}

/// The zone of a `whitelist_zones` line: its first word (qpsmtpd ignored the rest).
fn zone(line: &str) -> Result<String, String> {
    lists::zone_name(line.split_whitespace().next().unwrap_or(""))
}

impl Plugin for DnsWhitelistSoft {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Connect]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let Some(ip) = lists::client_ip(cx.conn) else {
            return Outcome::declined();
        };
        let lines = match cx.config("whitelist_zones") {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        let zones: Vec<String> = lines.iter().filter_map(|l| zone(l).ok()).collect();
        if zones.is_empty() {
            return Outcome::declined();
        }
        let names: Vec<String> = zones.iter().map(|z| reverse_name(ip, Some(z))).collect();
        let questions: Vec<(&str, RecordType)> =
            names.iter().map(|n| (n.as_str(), RecordType::Txt)).collect();
        let answers = cx.dns().ask(&questions, Some(self.limit));
        for (zone, answer) in zones.iter().zip(answers) {
            let text = match answer {
                Answer::Records(records) => records.into_iter().find_map(|r| match r {
                    Rdata::Txt(t) => Some(t.printable(MAX_TEXT)),
                    _ => None,
                }),
                Answer::TempFail(t) => {
                    cx.log(Level::Error, format_args!("{zone} query failed: {t}"));
                    None
                }
                _ => None,
            };
            if let Some(text) = text {
                let text = if truthy(&text) {
                    text
                } else {
                    format!("whitelisted by {zone}")
                };
                cx.log(Level::Notice, format_args!("Host {ip} is whitelisted: {text}"));
                cx.conn.notes.insert("whitelisthost".into(), text);
                return Outcome::declined();
            }
        }
        cx.log(Level::Debug, "pass, not whitelisted");
        Outcome::declined()
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::connection::Connection;
    use crate::plugin::services::dns::fake::{config_for, serving};
    use crate::plugin::services::dns::wire::Data;
    use crate::plugin::{Chain, testing};
    use crate::transaction::Transaction;

    #[test]
    fn a_txt_record_sets_whitelisthost_and_exempts_later_plugins() {
        let server = serving(&[
            (
                "10.2.0.192.white.test",
                Data::Txt(vec![b"192.0.2.10 is whitelisted".to_vec()]),
            ),
            ("11.2.0.192.white.test", Data::A(Ipv4Addr::new(127, 0, 0, 2))),
            ("12.2.0.192.white.test", Data::Txt(vec![b"0".to_vec()])),
        ]);
        let (_dir, config) = config_for(
            &server,
            &[("whitelist_zones", "other.test\nwhite.test  ignored words\n")],
        );
        let mut chain = Chain::new();
        chain.push(
            testing::spec("w", &[]),
            new(&testing::spec("w", &[]), &config).unwrap(),
        );
        let note = |ip: &str| {
            let conn = Connection::new("1", ip);
            let ran = testing::run_on(
                &chain,
                &config,
                Hook::Connect,
                Args::None,
                conn,
                Transaction::new("1".into()),
            );
            assert_eq!(ran.out, Outcome::declined());
            ran.conn.notes.get("whitelisthost").cloned()
        };
        assert_eq!(note("192.0.2.10").as_deref(), Some("192.0.2.10 is whitelisted"));
        assert_eq!(
            note("::ffff:192.0.2.10").as_deref(),
            Some("192.0.2.10 is whitelisted")
        );
        assert_eq!(note("192.0.2.11"), None, "an A record alone is not asked for");
        assert_eq!(note("192.0.2.12").as_deref(), Some("whitelisted by white.test"));
        assert_eq!(note("192.0.2.30"), None);
    }

    #[test]
    fn arguments_and_zones_are_checked_when_loaded() {
        let server = serving(&[]);
        let (_dir, config) = config_for(&server, &[("whitelist_zones", "white.test\n")]);
        assert!(new(&testing::spec("w", &["timeout", "2"]), &config).is_ok());
        assert!(new(&testing::spec("w", &["timeout"]), &config).is_err());
        assert!(new(&testing::spec("w", &["zones", "x"]), &config).is_err());
        let (_dir, config) = config_for(&server, &[("whitelist_zones", "bad\\zone\n")]);
        assert!(new(&testing::spec("w", &[]), &config).is_err());
    }
}
