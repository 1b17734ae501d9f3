//! Where the resolver asks and how long it waits: the config items `dns_servers`,
//! `dns_timeout` and `dns_budget`, else the `nameserver` lines of `/etc/resolv.conf`.
//!
//! Read when a plugin first looks something up, never at start; the DNS plugins also
//! read them when they are loaded (without `/etc/resolv.conf`), so that a typo is a
//! start-up error naming the file and line rather than a session without DNS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use crate::config::{Config, ConfigError};

/// The system's resolver configuration, used when `dns_servers` is empty.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Servers used at most (glibc uses 3).
pub const MAX_SERVERS: usize = 8;
/// Default wait for one server's answer to one question.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default time one session may spend waiting for DNS answers in all.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(30);
/// The largest `dns_timeout` and `dns_budget` (README Differences 37).
pub const MAX_SECONDS: u64 = 3600;

/// The resolver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The servers, asked in this order (the next one when one fails or does not answer).
    pub servers: Vec<SocketAddr>,
    /// How long one server gets to answer one question.
    pub timeout: Duration,
    /// How long the session may wait for DNS in all.
    pub budget: Duration,
}

impl Settings {
    /// The settings from the config items, with `/etc/resolv.conf` (or `resolv_conf`'s
    /// text) for the servers when `dns_servers` names none. No servers at all is not an
    /// error here: every lookup then fails temporarily.
    pub fn read(config: &Config, resolv_conf: Option<&str>) -> Result<Settings, ConfigError> {
        let mut settings = Settings::check(config)?;
        if settings.servers.is_empty() {
            let text = match resolv_conf {
                Some(t) => t.to_string(),
                None => std::fs::read_to_string(RESOLV_CONF).unwrap_or_default(),
            };
            settings.servers = resolv_conf_servers(&text);
        }
        Ok(settings)
    }

    /// The config items alone (servers empty unless `dns_servers` names some): what the
    /// DNS plugins check when they are loaded.
    pub fn check(config: &Config) -> Result<Settings, ConfigError> {
        let lines = config.lines("dns_servers")?;
        let mut servers = Vec::new();
        for entry in lines.entries() {
            let invalid = |reason: String| ConfigError::Invalid {
                path: entry.file.clone(),
                line: entry.line,
                reason,
            };
            if servers.len() == MAX_SERVERS {
                return Err(invalid(format!("dns_servers: more than {MAX_SERVERS} servers")));
            }
            let addr = server_address(&entry.text).ok_or_else(|| {
                invalid(format!(
                    "dns_servers: not IP, IP:PORT or [IPv6]:PORT: {:?}",
                    entry.text
                ))
            })?;
            servers.push(addr);
        }
        Ok(Settings {
            servers,
            timeout: seconds(config, "dns_timeout", DEFAULT_TIMEOUT, false)?,
            budget: seconds(config, "dns_budget", DEFAULT_BUDGET, true)?,
        })
    }
}

/// `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:5353`.
pub fn server_address(text: &str) -> Option<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return (addr.port() != 0).then_some(addr);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, 53))
}

/// The `nameserver` lines of a resolv.conf (resolv.conf(5)), at most [`MAX_SERVERS`]; a
/// link-local IPv6 address may carry its interface (`fe80::1%eth0`). None: the local
/// host, as glibc does.
pub fn resolv_conf_servers(text: &str) -> Vec<SocketAddr> {
    let mut out: Vec<SocketAddr> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => nameserver(addr),
                _ => None,
            }
        })
        .take(MAX_SERVERS)
        .collect();
    if out.is_empty() {
        out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 53));
        out.push(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 53));
    }
    out
}

fn nameserver(text: &str) -> Option<SocketAddr> {
    let (addr, scope) = match text.split_once('%') {
        Some((a, s)) => (a, Some(s)),
        None => (text, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    match (ip, scope) {
        (IpAddr::V6(v6), Some(scope)) => {
            let index = scope
                .parse::<u32>()
                .ok()
                .or_else(|| nix::net::if_::if_nametoindex(scope).ok())?;
            Some(SocketAddr::V6(SocketAddrV6::new(v6, 53, 0, index)))
        }
        (_, Some(_)) => None,
        (ip, None) => Some(SocketAddr::new(ip, 53)),
    }
}

/// A number of seconds with up to three decimals (`5`, `0.5`), at most [`MAX_SECONDS`];
/// zero only where `zero_ok` (a budget of 0 turns DNS off).
fn seconds(config: &Config, name: &str, default: Duration, zero_ok: bool) -> Result<Duration, ConfigError> {
    let lines = config.lines(name)?;
    let Some(entry) = lines.entries().first() else {
        return Ok(default);
    };
    match parse_seconds(&entry.text) {
        Some(d) if d <= Duration::from_secs(MAX_SECONDS) && (zero_ok || !d.is_zero()) => Ok(d),
        _ => Err(ConfigError::Invalid {
            path: entry.file.clone(),
            line: entry.line,
            reason: format!(
                "{name} must be a number of seconds ({} to {MAX_SECONDS}, up to 3 decimals), not {:?}",
                if zero_ok { "0" } else { "0.001" },
                entry.text
            ),
        }),
    }
}

/// `12`, `0.25`, `1.5`: whole seconds and up to three decimals.
pub fn parse_seconds(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 6 || frac.len() > 3 || !digits(whole) || !digits(frac) {
        return None;
    }
    if text.ends_with('.') {
        return None;
    }
    let secs: u64 = whole.parse().ok()?;
    let millis: u64 = format!("{frac:0<3}").parse().ok()?;
    Some(Duration::from_secs(secs) + Duration::from_millis(millis))
}
