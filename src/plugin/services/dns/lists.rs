//! What the DNS list plugins (dnsbl, rhsbl, uribl, dns_whitelist_soft) share: the
//! client's address as lists know it, zone names from config lines, config lists checked
//! when a plugin is loaded, address blocks.

use std::net::IpAddr;
use std::time::Duration;

use super::normal_name;
use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::plugin::PluginError;

/// The client's address as DNS lists know it: IPv4-mapped IPv6 as IPv4; none for an
/// unknown client (`0.0.0.0`, `::`) or one without an address.
pub fn client_ip(conn: &Connection) -> Option<IpAddr> {
    let ip = crate::peer::canonical_ip(&conn.remote_ip)?
        .parse::<IpAddr>()
        .ok()?;
    (!ip.is_unspecified()).then_some(ip)
}

/// A zone name from a config line: a DNS name we can ask under (see
/// [`normal_name`]), lower case, without the final dot.
pub fn zone_name(text: &str) -> Result<String, String> {
    match normal_name(text) {
        Ok(name) if name.len() <= 200 => Ok(name),
        _ => Err(format!("not a valid zone name: {text:?}")),
    }
}

/// Checks every line of a config list when the plugin is loaded: a line `parse` refuses
/// is a start-up error naming the file and line.
pub fn check_lines<T>(
    config: &Config,
    item: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, PluginError> {
    let lines = config.lines(item)?;
    let mut out = Vec::new();
    for entry in lines.entries() {
        let value = parse(&entry.text).map_err(|reason| {
            PluginError::from(ConfigError::Invalid {
                path: entry.file.clone(),
                line: entry.line,
                reason: format!("{item}: {reason}"),
            })
        })?;
        out.push(value);
    }
    Ok(out)
}

/// A DNS plugin's own `timeout` argument: whole seconds, 1 to 3600 (README Differences
/// 121), the longest one hook call of the plugin waits for its answers.
pub fn timeout(v: &str) -> Result<Duration, PluginError> {
    match v.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(PluginError::Args(format!(
            "timeout must be 1 to 3600 seconds, not {v:?}"
        ))),
    }
}

/// Does `ip` fall in the block `text` (`192.0.2.0/24`, `2001:db8::/32`, or one address)?
/// `None` if `text` is neither.
pub fn in_block(ip: IpAddr, text: &str) -> Option<bool> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (text, None),
    };
    let net: IpAddr = addr.parse::<IpAddr>().ok()?.to_canonical();
    let ip = ip.to_canonical();
    let (a, b, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        _ => return Some(false),
    };
    let bits = bits.unwrap_or(width);
    if bits > width {
        return None;
    }
    let shift = width - bits;
    Some(bits == 0 || a >> shift == b >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(in_block(ip("192.0.2.10"), "192.0.2.0/24"), Some(true));
        assert_eq!(in_block(ip("192.0.3.10"), "192.0.2.0/24"), Some(false));
        assert_eq!(in_block(ip("::ffff:192.0.2.10"), "192.0.2.10"), Some(true));
        assert_eq!(in_block(ip("2001:db8::10"), "2001:db8::/32"), Some(true));
        assert_eq!(in_block(ip("2001:db9::10"), "2001:db8::/32"), Some(false));
        assert_eq!(in_block(ip("192.0.2.10"), "2001:db8::/32"), Some(false));
        assert_eq!(in_block(ip("192.0.2.10"), "0.0.0.0/0"), Some(true));
        assert_eq!(in_block(ip("192.0.2.10"), "192.0.2.0/33"), None);
        assert_eq!(in_block(ip("192.0.2.10"), "192.0.2."), None);
    }

    #[test]
    fn client_addresses() {
        let conn = |ip: &str| Connection::new("1", ip);
        assert_eq!(
            client_ip(&conn("::ffff:192.0.2.1")),
            Some("192.0.2.1".parse().unwrap())
        );
        assert_eq!(
            client_ip(&conn("2001:db8::1")),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(client_ip(&conn("0.0.0.0")), None);
        assert_eq!(client_ip(&conn("")), None);
    }

    #[test]
    fn zone_names() {
        assert_eq!(zone_name("Zen.Example."), Ok("zen.example".into()));
        assert!(zone_name("bad zone").is_err());
        assert!(zone_name("").is_err());
    }
}
