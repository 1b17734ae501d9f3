//! What the DNS plugins (dnsbl, rhsbl, uribl, dns_whitelist_soft, fcrdns, helo,
//! resolvable_fromhost) share: the client's address as lists know it, zone names from
//! config lines, config lists checked when a plugin is loaded, address blocks and
//! literals, and the rule that a temporary DNS failure refuses at most temporarily.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use super::normal_name;
use crate::config::{Config, ConfigError};
use crate::connection::Connection;
use crate::plugin::{PluginError, Reject, Verdict};

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
/// 37), the longest one hook call of the plugin waits for its answers.
pub fn timeout(v: &str) -> Result<Duration, PluginError> {
    match v.parse::<u64>() {
        Ok(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(PluginError::Args(format!(
            "timeout must be 1 to 3600 seconds, not {v:?}"
        ))),
    }
}

/// The arguments the DNS check plugins share (dnsbl, rhsbl, fcrdns, resolvable_fromhost):
/// `reject`, `reject_type` (`default_type`, each qpsmtpd plugin's own, when absent) and
/// `timeout` (rhsbl's doc spells it `dns_timeout`; both spellings are taken).
pub struct CheckArgs {
    /// What a failed check does.
    pub reject: Reject,
    /// The plugin's own limit on one hook call's DNS wait.
    pub limit: Option<Duration>,
}

/// Reads [`CheckArgs`] from key/value arguments; `default_reject` as in
/// [`Reject::from_args`].
pub fn check_args(
    mut kv: Vec<(String, String)>,
    default_type: &str,
    default_reject: bool,
) -> Result<CheckArgs, PluginError> {
    let mut limit = None;
    for (k, v) in &kv {
        match k.as_str() {
            "reject" | "reject_type" => {}
            "timeout" | "dns_timeout" => limit = Some(timeout(v)?),
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: reject, reject_type, timeout)"
                )));
            }
        }
    }
    if !kv.iter().any(|(k, _)| k == "reject_type") {
        kv.push(("reject_type".into(), default_type.into()));
    }
    let reject = Reject::from_args(&kv, default_reject)?;
    Ok(CheckArgs { reject, limit })
}

/// Does `ip` fall in the block `text` (`192.0.2.0/24`, `2001:db8::/32`, or one address)?
/// `None` if `text` is neither. An IPv4-mapped block (`::ffff:192.0.2.0/120`) is the
/// IPv4 block it maps (`192.0.2.0/24`), as an IPv4-mapped client is its IPv4 address.
pub fn in_block(ip: IpAddr, text: &str) -> Option<bool> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (text, None),
    };
    let written: IpAddr = addr.parse().ok()?;
    let net = written.to_canonical();
    let bits = match (written, net, bits) {
        // The prefix counts the 96 bits of `::ffff:` too; one shorter than that is not
        // an IPv4 block.
        (IpAddr::V6(_), IpAddr::V4(_), Some(b)) => Some(b.checked_sub(96)?),
        _ => bits,
    };
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

/// The address of an address literal (RFC 5321 §4.1.3): `[192.0.2.1]` or
/// `[IPv6:2001:db8::1]` (the tag in any case); `None` for anything else.
pub fn address_literal(text: &str) -> Option<IpAddr> {
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => inner[5..].parse::<Ipv6Addr>().ok().map(IpAddr::V6),
        _ => dotted_quad(inner).map(IpAddr::V4),
    }
}

/// `a.b.c.d`, four numbers of 1 to 3 digits, each at most 255.
pub fn dotted_quad(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    let ok = parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return None;
    }
    text.parse().ok().or_else(|| {
        // A leading zero (`192.0.2.01`) is refused by the standard parser; read it as
        // the decimal number it is.
        let n: Vec<u8> = parts
            .iter()
            .map(|p| p.parse::<u8>().ok())
            .collect::<Option<_>>()?;
        Some(Ipv4Addr::new(n[0], n[1], n[2], n[3]))
    })
}

/// The temporary form of a refusal: what a DNS lookup that failed temporarily may give at
/// most, never a `5xx` (`DENY` → `DENYSOFT`, `DENY_DISCONNECT` → `DENYSOFT_DISCONNECT`).
pub fn temporary(v: Verdict) -> Verdict {
    match v {
        Verdict::Deny => Verdict::DenySoft,
        Verdict::DenyDisconnect => Verdict::DenySoftDisconnect,
        other => other,
    }
}

/// The permanent form of a refusal (`DENYSOFT` → `DENY`, `DENYSOFT_DISCONNECT` →
/// `DENY_DISCONNECT`): for answers that are final whatever `reject_type` says.
pub fn permanent(v: Verdict) -> Verdict {
    match v {
        Verdict::DenySoft => Verdict::Deny,
        Verdict::DenySoftDisconnect => Verdict::DenyDisconnect,
        other => other,
    }
}

/// A plugin's `reject` policy for a check that could not be made because DNS failed
/// temporarily: a refusal now or a deferred one becomes temporary (see [`temporary`]),
/// `reject 0` stays as it is.
pub fn soften(reject: &Reject) -> Reject {
    match reject {
        Reject::Now(v) => Reject::Now(temporary(*v)),
        Reject::Naughty(t) => {
            let disconnect = t
                .as_deref()
                .and_then(crate::plugin::reject_type)
                .is_some_and(|v| matches!(v, Verdict::DenyDisconnect | Verdict::DenySoftDisconnect));
            Reject::Naughty(Some(
                if disconnect { "temp_disconnect" } else { "temp" }.to_string(),
            ))
        }
        Reject::Tolerate => Reject::Tolerate,
    }
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
        // An IPv4-mapped block is the IPv4 block it maps, its prefix counted in 128 bits.
        assert_eq!(in_block(ip("192.0.2.10"), "::ffff:192.0.2.0/120"), Some(true));
        assert_eq!(
            in_block(ip("::ffff:192.0.2.10"), "::ffff:192.0.2.0/120"),
            Some(true)
        );
        assert_eq!(in_block(ip("192.0.3.10"), "::ffff:192.0.2.0/120"), Some(false));
        assert_eq!(in_block(ip("10.9.9.9"), "::ffff:10.0.0.0/104"), Some(true));
        assert_eq!(in_block(ip("192.0.2.10"), "::ffff:0.0.0.0/96"), Some(true));
        assert_eq!(in_block(ip("10.9.9.9"), "::ffff:10.0.0.0/8"), None);
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
    fn literals() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(address_literal("[192.0.2.1]"), Some(ip("192.0.2.1")));
        assert_eq!(address_literal("[192.0.2.01]"), Some(ip("192.0.2.1")));
        assert_eq!(address_literal("[IPv6:2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(address_literal("[ipv6:2001:db8::1]"), Some(ip("2001:db8::1")));
        assert_eq!(address_literal("[2001:db8::1]"), None);
        assert_eq!(address_literal("[192.0.2.256]"), None);
        assert_eq!(address_literal("[192.0.2]"), None);
        assert_eq!(address_literal("192.0.2.1"), None);
        assert_eq!(address_literal("[IPv6:]"), None);
        assert_eq!(address_literal("["), None);
        assert_eq!(dotted_quad("1.2.3.4"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(dotted_quad("1.2.3.4.5"), None);
        assert_eq!(dotted_quad("1.2.3.x"), None);
    }

    #[test]
    fn dns_failures_refuse_temporarily_at_most() {
        assert_eq!(temporary(Verdict::Deny), Verdict::DenySoft);
        assert_eq!(temporary(Verdict::DenyDisconnect), Verdict::DenySoftDisconnect);
        assert_eq!(temporary(Verdict::DenySoft), Verdict::DenySoft);
        assert_eq!(permanent(Verdict::DenySoft), Verdict::Deny);
        assert_eq!(permanent(Verdict::DenySoftDisconnect), Verdict::DenyDisconnect);
        assert_eq!(
            soften(&Reject::Now(Verdict::Deny)),
            Reject::Now(Verdict::DenySoft)
        );
        assert_eq!(
            soften(&Reject::Naughty(None)),
            Reject::Naughty(Some("temp".into()))
        );
        assert_eq!(
            soften(&Reject::Naughty(Some("disconnect".into()))),
            Reject::Naughty(Some("temp_disconnect".into()))
        );
        assert_eq!(soften(&Reject::Tolerate), Reject::Tolerate);
    }

    #[test]
    fn zone_names() {
        assert_eq!(zone_name("Zen.Example."), Ok("zen.example".into()));
        assert!(zone_name("bad zone").is_err());
        assert!(zone_name("").is_err());
    }
}
