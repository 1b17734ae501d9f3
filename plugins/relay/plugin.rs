//! relay (also loaded as `check_relay`): decides at connect time whether the client may
//! relay. See README.md beside this file.

use std::net::IpAddr;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values};

/// The plugin instance.
pub struct Relay {
    only: bool,
}

/// `relay [only 1]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut only = false;
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "only" => only = v != "0",
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: only)"
                )));
            }
        }
    }
    Ok(Box::new(Relay { only }))
}

impl Plugin for Relay {
    fn hooks(&self) -> Vec<Hook> {
        if self.only {
            vec![Hook::Connect, Hook::Rcpt]
        } else {
            vec![Hook::Connect]
        }
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        match hook {
            Hook::Connect => connect(cx),
            // `only 1`: refuse every recipient from a client that may not relay.
            _ if cx.conn.relay_client => Outcome::ok(),
            _ => Outcome::new(Verdict::Deny),
        }
    }
}

fn connect(cx: &mut Context<'_>) -> Outcome {
    let ip = cx.conn.remote_ip.clone();
    let no_relay = match cx.config("norelayclients") {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    if no_relay.iter().any(|entry| matches(&ip, entry)) {
        cx.conn.relay_client = false;
        cx.log(Level::Info, format_args!("fail, {ip} in norelayclients"));
        return Outcome::declined();
    }
    if cx.conn.relay_client {
        cx.log(Level::Info, "pass, enabled by env (RELAYCLIENT)");
        return Outcome::declined();
    }
    if ip == "::1" {
        cx.conn.relay_client = true;
        cx.log(Level::Info, "pass, localhost");
        return Outcome::declined();
    }
    let clients = match cx.config("relayclients") {
        Ok(l) => l,
        Err(e) => return e.into(),
    };
    if let Some(entry) = clients.iter().find(|entry| matches(&ip, entry)) {
        cx.log(
            Level::Info,
            format_args!("pass, {ip} matches {entry} in relayclients"),
        );
        cx.conn.relay_client = true;
        return Outcome::declined();
    }
    match in_cdb(cx, &ip) {
        Ok(true) => {
            cx.log(Level::Info, format_args!("pass, {ip} in morerelayclients"));
            cx.conn.relay_client = true;
        }
        Ok(false) => cx.log(Level::Info, "skip, no match"),
        Err(out) => return out,
    }
    Outcome::declined()
}

fn in_cdb(cx: &Context<'_>, ip: &str) -> Result<bool, Outcome> {
    let Some(cdb) = cx.config_cdb("morerelayclients").map_err(Outcome::from)? else {
        return Ok(false);
    };
    for candidate in prefixes(ip) {
        match cdb.contains(candidate.as_bytes()) {
            Ok(true) => return Ok(true),
            Ok(false) => {}
            Err(e) => return Err(cx.cdb_failed("morerelayclients", e)),
        }
    }
    Ok(false)
}

/// Does a relayclients entry match this IP? An entry is an address, a CIDR block
/// (network and broadcast addresses included: README Differences 22), or a textual
/// prefix ending in `.` or `:` as in tcprules (`192.168.`, `2001:db8:`).
pub fn matches(ip: &str, entry: &str) -> bool {
    let entry = entry.trim();
    if let Some((net, len)) = entry.split_once('/') {
        return in_cidr(ip, net, len);
    }
    if let (Ok(a), Ok(b)) = (ip.parse::<IpAddr>(), entry.parse::<IpAddr>()) {
        return a == b;
    }
    if let Some(block) = v6_group_prefix(entry) {
        return in_cidr(ip, &block.0, &block.1);
    }
    let entry = entry.to_ascii_lowercase();
    match ip.parse::<IpAddr>() {
        // One of `prefixes`: the address itself, or its text up to one of its dots.
        Ok(IpAddr::V4(v4)) => {
            let full = crate::peer::ipv4_text(v4);
            entry == full || (entry.ends_with('.') && full.starts_with(&entry))
        }
        _ => prefixes(ip).contains(&entry),
    }
}

/// `2001:db8:e431:ae06:` (whole groups, any zero padding) as a CIDR block
/// (`2001:db8:e431:ae06::/64`), the form qpsmtpd's own docs show for IPv6 prefixes.
fn v6_group_prefix(entry: &str) -> Option<(String, String)> {
    let groups = entry.strip_suffix(':')?;
    if groups.contains("::") || groups.is_empty() {
        return None;
    }
    let parts: Vec<&str> = groups.split(':').collect();
    let ok = (1..=7).contains(&parts.len())
        && parts
            .iter()
            .all(|g| (1..=4).contains(&g.len()) && g.chars().all(|c| c.is_ascii_hexdigit()));
    ok.then(|| (format!("{groups}::"), (parts.len() * 16).to_string()))
}

fn in_cidr(ip: &str, net: &str, len: &str) -> bool {
    let (Ok(ip), Ok(net), Ok(len)) = (ip.parse::<IpAddr>(), net.parse::<IpAddr>(), len.parse::<u32>()) else {
        return false;
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The textual prefixes qpsmtpd compares with: `192.0.2.1`, `192.0.2.`, `192.0.`, `192.`
/// for IPv4; for IPv6 the fully expanded lower-case form shortened one hex digit at a time.
pub fn prefixes(ip: &str) -> Vec<String> {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => {
            // The shorter prefixes are the address's own text up to each dot.
            let full = crate::peer::ipv4_text(v4);
            let mut out = Vec::with_capacity(4);
            out.extend(full.rmatch_indices('.').map(|(dot, _)| full[..=dot].to_string()));
            out.insert(0, full);
            out
        }
        Ok(IpAddr::V6(v6)) => {
            let full = v6
                .segments()
                .iter()
                .map(|s| format!("{s:04x}"))
                .collect::<Vec<_>>()
                .join(":");
            let mut out = vec![v6.to_string(), full.clone()];
            let mut s = full;
            while !s.is_empty() {
                s.pop();
                if s.ends_with(':') {
                    out.push(s.clone());
                    s.pop();
                }
                if !s.is_empty() {
                    out.push(s.clone());
                }
            }
            out
        }
        Err(_) => vec![ip.to_ascii_lowercase()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 entry that is not an address or a block matches exactly when it is one
    /// of the address's textual prefixes.
    #[test]
    fn v4_text_entries_match_the_prefix_list() {
        let ip = "192.0.21.5";
        for entry in [
            "192.0.21.",
            "192.0.",
            "192.",
            "192",
            "192.0.2",
            "192.0.2.",
            "192.0.21.5.",
            "92.0.",
            ".",
            "",
            "1.",
        ] {
            assert_eq!(
                matches(ip, entry),
                prefixes(ip).contains(&entry.to_string()),
                "{entry:?}"
            );
        }
        assert!(matches(ip, "192.0.21."));
        assert!(!matches(ip, "192.0.2."));
    }

    /// qpsmtpd t/plugin_tests/relay cases.
    #[test]
    fn octet_prefixes_and_cidr() {
        assert!(matches("192.0.1.1", "192.0."));
        assert!(!matches("192.51.1.1", "192.0."));
        assert!(matches("192.0.1.5", "192.0.1.0/24"));
        assert!(matches("192.0.1.0", "192.0.1.0/24"));
        assert!(matches("192.0.1.255", "192.0.1.0/24"));
        assert!(!matches("192.0.2.1", "192.0.1.0/24"));
        assert!(matches("2001:db8::1", "2001:DB8::/32"));
        assert!(matches("2001:db8:0:0:1::5", "2001:db8::/64"));
        assert!(matches("2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001"));
        assert!(matches("2001:db8::1", "2001:0db8:"));
        assert!(matches("2001:db8:e431:ae06::9", "2001:db8:e431:ae06:"));
        assert!(matches("2001:db8:e431:ae06::9", "2001:DB8:E431:"));
        assert!(!matches("2001:db8:e431:ae07::9", "2001:db8:e431:ae06:"));
        assert!(matches("127.0.0.1", "127.0.0.1"));
        assert!(!matches("127.0.0.10", "127.0.0.1"));
        assert!(!matches("10.0.0.1", "garbage/33"));
    }

    #[test]
    fn v6_prefix_list() {
        let p = prefixes("2001:db8::1");
        assert!(p.contains(&"2001:0db8:0000:0000:0000:0000:0000:0001".to_string()));
        assert!(p.contains(&"2001:0db8:".to_string()));
        assert!(p.contains(&"2001:0db8".to_string()));
        assert!(p.contains(&"2001:0d".to_string()));
    }
}
