//! hosts_allow: lets a client in or turns it away by its address, from the table in
//! `config/hosts_allow`, when it connects. Counting connections is the super-server's
//! job. See README.md beside this file.

use std::net::IpAddr;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::lists;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance (no settings: the table is read at each connection).
pub struct HostsAllow;

/// A line of `hosts_allow`: `address[/bits] CONSTANT [message]`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    block: String,
    verdict: Verdict,
    message: Option<String>,
}

/// `hosts_allow` (no arguments, as in qpsmtpd).
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {:?}",
            spec.args.join(" ")
        )));
    }
    lists::check_lines(config, "hosts_allow", rule)?;
    Ok(Box::new(HostsAllow))
}

/// Reads a `hosts_allow` line.
fn rule(line: &str) -> Result<Rule, String> {
    let mut words = line.split_whitespace();
    let block = words.next().unwrap_or_default();
    if lists::in_block(IpAddr::from([0, 0, 0, 0]), block).is_none() {
        return Err(format!("not an address or address block: {block:?}"));
    }
    let Some(constant) = words.next() else {
        return Err(format!("no answer after {block:?} (DENY, DENYSOFT, OK, ...)"));
    };
    let verdict = match Verdict::from_name(constant) {
        Some(Verdict::Done) | None => {
            return Err(format!(
                "unknown answer {constant:?} (known: OK, DECLINED, DENY, DENYSOFT, \
                 DENY_DISCONNECT, DENYSOFT_DISCONNECT)"
            ));
        }
        Some(v) => v,
    };
    // The rest of the line after the two words, blanks inside it kept.
    let rest = line.trim_start()[block.len()..].trim_start()[constant.len()..].trim();
    let message = (!rest.is_empty()).then(|| rest.to_string());
    Ok(Rule {
        block: block.to_string(),
        verdict,
        message,
    })
}

impl Plugin for HostsAllow {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Connect]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let Some(ip) = lists::client_ip(cx.conn) else {
            cx.log(Level::Info, "skip, no client address");
            return Outcome::declined();
        };
        let lines = match cx.config("hosts_allow") {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        for line in lines.iter() {
            let rule = match rule(line) {
                Ok(r) => r,
                Err(e) => {
                    cx.log(Level::Error, format_args!("hosts_allow: {e}"));
                    continue;
                }
            };
            if lists::in_block(ip, &rule.block) != Some(true) {
                continue;
            }
            if !rule.verdict.is_deny() {
                cx.log(Level::Info, format_args!("pass, {ip} matches {}", rule.block));
                return Outcome::declined();
            }
            let msg = rule.message.unwrap_or_else(|| {
                match rule.verdict {
                    Verdict::DenySoft | Verdict::DenySoftDisconnect => "Sorry, try again later",
                    _ => "Sorry, service not available for you",
                }
                .to_string()
            });
            cx.log(
                Level::Info,
                format_args!("fail, {ip} matches {}: {msg}", rule.block),
            );
            return Outcome::with(rule.verdict, &msg);
        }
        cx.log(Level::Debug, "pass, no line matches");
        Outcome::declined()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;
    use crate::plugin::{Chain, testing};
    use crate::transaction::Transaction;

    fn config(table: &str) -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hosts_allow"), table).unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        (dir, config)
    }

    fn connect(table: &str, ip: &str) -> Outcome {
        let (_dir, config) = config(table);
        let mut chain = Chain::new();
        let spec = testing::spec("hosts_allow", &[]);
        chain.push(spec.clone(), new(&spec, &config).unwrap());
        let conn = Connection::new("1", ip);
        testing::run_on(
            &chain,
            &config,
            Hook::Connect,
            Args::None,
            conn,
            Transaction::new("1.0".into()),
        )
        .out
    }

    const TABLE: &str = "192.168.3.4 DECLINED\n\
                         192.168.3.0/24 DENY Sorry, known spam only source\n\
                         2001:db8:bad::/48 DENYSOFT_DISCONNECT\n\
                         198.51.100.7 OK\n\
                         198.51.100.0/24 DENY\n";

    #[test]
    fn first_matching_line_decides() {
        assert_eq!(connect(TABLE, "192.168.3.4"), Outcome::declined());
        assert_eq!(
            connect(TABLE, "192.168.3.5"),
            Outcome::with(Verdict::Deny, "Sorry, known spam only source")
        );
        assert_eq!(connect(TABLE, "::ffff:192.168.3.5").verdict, Verdict::Deny);
        assert_eq!(
            connect(TABLE, "2001:db8:bad::1"),
            Outcome::with(Verdict::DenySoftDisconnect, "Sorry, try again later")
        );
        // OK lets the client go on to the other connect plugins, as DECLINED does.
        assert_eq!(connect(TABLE, "198.51.100.7"), Outcome::declined());
        assert_eq!(
            connect(TABLE, "198.51.100.8"),
            Outcome::with(Verdict::Deny, "Sorry, service not available for you")
        );
        assert_eq!(connect(TABLE, "203.0.113.1"), Outcome::declined());
        assert_eq!(connect(TABLE, "0.0.0.0"), Outcome::declined());
    }

    #[test]
    fn ipv4_mapped_blocks_are_ipv4_blocks() {
        let table = "::ffff:203.0.113.0/120 DENY\n";
        assert_eq!(connect(table, "203.0.113.9").verdict, Verdict::Deny);
        assert_eq!(connect(table, "::ffff:203.0.113.9").verdict, Verdict::Deny);
        assert_eq!(connect(table, "203.0.114.9"), Outcome::declined());
    }

    #[test]
    fn bad_lines_and_arguments_are_refused_at_start() {
        for table in [
            "192.0.2.1\n",
            "192.0.2.1 MAYBE\n",
            "192.0.2.1 DONE\n",
            "host.example DENY\n",
            // As IPv6 this is ::/8, not 10.0.0.0/8: neither reading is safe to guess.
            "::ffff:10.0.0.0/8 DENY\n",
        ] {
            let (_dir, config) = config(table);
            let err = new(&testing::spec("hosts_allow", &[]), &config).err();
            assert!(err.is_some(), "{table:?} was accepted");
        }
        let (_dir, config) = config("");
        assert!(new(&testing::spec("hosts_allow", &["x"]), &config).is_err());
    }

    #[test]
    fn constants_in_any_case_and_the_old_alias() {
        assert_eq!(
            rule("192.0.2.0/24 denyhard go").unwrap().verdict,
            Verdict::DenyDisconnect
        );
        assert_eq!(
            rule("192.0.2.0/24\tDENY   two  words ")
                .unwrap()
                .message
                .as_deref(),
            Some("two  words")
        );
    }
}
