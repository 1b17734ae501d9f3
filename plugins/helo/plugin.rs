//! helo: checks the HELO/EHLO name by qpsmtpd's policies (`lenient`, `rfc`, `strict`)
//! and adds `X-HELO` to each message. Also loaded as `check_spamhelo`. See README.md
//! beside this file.

use std::net::IpAddr;
use std::time::Duration;

use crate::pattern::Pattern;

use names::{forged_literal, invalid_localhost, not_fqdn, plain_ip};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, DnsTrouble, Rdata, RecordType, Settings, lists, reverse_name};
use crate::plugin::{
    Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values, reject_type,
};

/// The plugin instance.
pub struct Helo {
    policy: Policy,
    reject: Reject,
    /// `timeout` / `dns_timeout`: this plugin's own bound on its wait.
    limit: Option<Duration>,
}

/// Which tests run (qpsmtpd's `policy` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// badhelo, localhost, forged literal, plain IP.
    Lenient,
    /// Also: fully qualified, forward DNS, reverse DNS.
    Rfc,
    /// Also: no address literal, forward or reverse DNS matching the client.
    Strict,
}

/// A `badhelo` line: a name, or a pattern (a line with any of `{}[]()^$|*+?\!`), which a
/// leading `!` turns around.
#[derive(Debug, Clone)]
enum Bad {
    Name(String),
    Pattern {
        re: Pattern,
        negated: bool,
        text: String,
    },
}

/// Why a test failed: the reply text, the log text, and whether DNS failed temporarily.
struct Fail {
    text: String,
    log: String,
    temporary: bool,
}

impl Fail {
    fn new(text: impl Into<String>, log: impl Into<String>) -> Fail {
        Fail {
            text: text.into(),
            log: log.into(),
            temporary: false,
        }
    }
}

/// `helo [policy lenient|rfc|strict] [reject 0|1|naughty] [reject_type TYPE]
/// [timeout SECONDS]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut kv = key_values(&spec.args)?;
    let mut policy = Policy::Lenient;
    let mut limit = None;
    for (k, v) in &kv {
        match k.as_str() {
            "reject" => {}
            "reject_type" => {
                reject_type(v).ok_or_else(|| PluginError::Args(format!("unknown reject_type {v:?}")))?;
            }
            "policy" => {
                policy = match v.to_ascii_lowercase().as_str() {
                    "lenient" => Policy::Lenient,
                    "rfc" => Policy::Rfc,
                    "strict" => Policy::Strict,
                    _ => {
                        return Err(PluginError::Args(format!(
                            "policy must be lenient, rfc or strict, not {v:?}"
                        )));
                    }
                }
            }
            "timeout" | "dns_timeout" => limit = Some(lists::timeout(v)?),
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: policy, reject, reject_type, timeout)"
                )));
            }
        }
    }
    // qpsmtpd's helo refuses and closes the connection unless told otherwise.
    if !kv.iter().any(|(k, _)| k == "reject_type") {
        kv.push(("reject_type".into(), "disconnect".into()));
    }
    if policy != Policy::Lenient {
        Settings::check(config)?;
    }
    lists::check_lines(config, "badhelo", bad_line)?;
    Ok(Box::new(Helo {
        policy,
        reject: Reject::from_args(&kv, true)?,
        limit,
    }))
}

/// Reads a `badhelo` line.
fn bad_line(line: &str) -> Result<Bad, String> {
    if !line.contains([
        '{', '}', '[', ']', '(', ')', '^', '$', '|', '*', '+', '?', '\\', '!',
    ]) {
        return Ok(Bad::Name(line.to_ascii_lowercase()));
    }
    let (negated, pattern) = match line.strip_prefix('!') {
        Some(p) => (true, p),
        None => (false, line),
    };
    let re = Pattern::new(pattern, false).map_err(|e| format!("not a valid pattern: {pattern:?}: {e}"))?;
    Ok(Bad::Pattern {
        re,
        negated,
        text: pattern.to_string(),
    })
}

impl Plugin for Helo {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Helo, Hook::Ehlo, Hook::DataPost]
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        match (hook, args) {
            (Hook::DataPost, _) => {
                let host = cx.conn.hello_host().to_string();
                cx.txn.header.delete("X-HELO");
                cx.txn.header.add("X-HELO", &host, Some(0));
                Outcome::declined()
            }
            (_, Args::Hello { host, .. }) => self.hello(cx, host),
            _ => Outcome::declined(),
        }
    }
}

impl Helo {
    fn hello(&self, cx: &mut Context<'_>, host: &str) -> Outcome {
        cx.conn.notes.remove("helo_forward_match");
        cx.conn.notes.remove("helo_reverse_match");
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        match self.first_failure(cx, host) {
            Ok(None) => {
                cx.log(Level::Info, "pass");
                Outcome::declined()
            }
            Ok(Some(fail)) => {
                cx.log(Level::Info, format_args!("fail, {}", fail.log));
                if fail.temporary {
                    lists::soften(&self.reject).outcome(cx, &fail.text)
                } else {
                    self.reject.outcome(cx, &fail.text)
                }
            }
            Err(out) => out,
        }
    }

    /// The tests of the policy, in qpsmtpd's order; the first that fails.
    fn first_failure(&self, cx: &mut Context<'_>, host: &str) -> Result<Option<Fail>, Outcome> {
        let ip = lists::client_ip(cx.conn);
        let literal = lists::address_literal(host);
        // `localhost.` is `localhost` to DNS: the name checks look at the name without
        // its final dot, so that a dot cannot slip past them (README Differences 89).
        let name = host.strip_suffix('.').unwrap_or(host);
        if let Some(fail) = in_badhelo(cx, host, name)? {
            return Ok(Some(fail));
        }
        let cheap = [
            invalid_localhost(name, ip),
            forged_literal(literal, ip),
            plain_ip(name),
        ];
        if let Some(fail) = cheap.into_iter().flatten().next() {
            return Ok(Some(fail));
        }
        if self.policy == Policy::Lenient {
            return Ok(None);
        }
        if let Some(fail) = not_fqdn(host, literal) {
            return Ok(Some(fail));
        }
        let dns = self.lookups(cx, host, literal, ip);
        if literal.is_none()
            && let Some(fail) = forward_dns(cx, &dns, ip)
        {
            return Ok(Some(fail));
        }
        if let Some(fail) = reverse_dns(cx, &dns, host, ip) {
            return Ok(Some(fail));
        }
        if self.policy == Policy::Rfc {
            return Ok(None);
        }
        if literal.is_some() {
            return Ok(Some(Fail::new(
                "RFC 2821 allows an address literal, but we do not",
                "address literal",
            )));
        }
        let matched = |n: &str| cx.conn.notes.get(n).is_some_and(|v| v == "1");
        if matched("helo_forward_match") || matched("helo_reverse_match") {
            return Ok(None);
        }
        let mut fail = Fail::new(
            "That HELO hostname fails FCrDNS",
            "no forward or reverse DNS match",
        );
        // A forward lookup that failed might have found the client's network: the
        // refusal can only be temporary (README Differences 90).
        fail.temporary = dns.a.is_temporary() || dns.aaaa.is_temporary();
        Ok(Some(fail))
    }

    /// The name's A and AAAA records (none for a literal) and the client's PTR records,
    /// asked together: one round trip.
    fn lookups(&self, cx: &Context<'_>, host: &str, literal: Option<IpAddr>, ip: Option<IpAddr>) -> Lookups {
        let reverse = ip.map(|ip| reverse_name(ip, None));
        let mut questions: Vec<(&str, RecordType)> = Vec::new();
        if literal.is_none() {
            questions.push((host, RecordType::A));
            questions.push((host, RecordType::Aaaa));
        }
        if let Some(r) = &reverse {
            questions.push((r, RecordType::Ptr));
        }
        let mut answers = cx.dns().ask(&questions, self.limit).into_iter();
        let mut next = || answers.next().unwrap_or(Answer::NoData);
        let (a, aaaa) = if literal.is_none() {
            (next(), next())
        } else {
            (Answer::NoData, Answer::NoData)
        };
        let ptr = if reverse.is_some() { Some(next()) } else { None };
        Lookups { a, aaaa, ptr }
    }
}

/// What DNS said about the HELO name and the client.
struct Lookups {
    a: Answer<Rdata>,
    aaaa: Answer<Rdata>,
    /// `None` when the client's address is unknown.
    ptr: Option<Answer<Rdata>>,
}

/// badhelo: every line is checked (a name case-insensitively, a pattern against the name
/// in lower case), against `name`, the HELO name `host` without its final dot.
fn in_badhelo(cx: &Context<'_>, host: &str, name: &str) -> Result<Option<Fail>, Outcome> {
    let lines = cx.config("badhelo").map_err(Outcome::from)?;
    let lower = name.to_ascii_lowercase();
    for line in lines.iter() {
        match bad_line(line) {
            Ok(Bad::Name(bad)) if bad.strip_suffix('.').unwrap_or(&bad) == lower => {
                return Ok(Some(Fail::new(
                    format!("I do not believe you are {host}."),
                    "in badhelo",
                )));
            }
            Ok(Bad::Pattern { re, negated, text }) if re.is_match(&lower) != negated => {
                return Ok(Some(Fail::new(
                    "Your HELO hostname is not allowed",
                    format!("badhelo pattern match ({text})"),
                )));
            }
            Ok(_) => {}
            Err(e) => cx.log(Level::Error, format_args!("badhelo: {e}")),
        }
    }
    Ok(None)
}

/// The name must have an address; one in the client's network sets
/// `helo_forward_match`. A temporary failure skips the test.
fn forward_dns(cx: &mut Context<'_>, dns: &Lookups, ip: Option<IpAddr>) -> Option<Fail> {
    let addrs: Vec<IpAddr> = dns
        .a
        .records()
        .iter()
        .chain(dns.aaaa.records())
        .filter_map(|r| match r {
            Rdata::A(a) => Some(IpAddr::V4(*a)),
            Rdata::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect();
    if !addrs.is_empty() {
        if let Some(ip) = ip
            && addrs.iter().any(|a| same_network(*a, ip))
        {
            cx.log(Level::Debug, "forward network match");
            cx.conn.notes.insert("helo_forward_match".into(), "1".into());
        }
        return None;
    }
    if let Some(Answer::TempFail(t)) = [&dns.a, &dns.aaaa].into_iter().find(|a| a.is_temporary()) {
        cx.log(Level::Error, format_args!("skip, forward lookup failed: {t}"));
        return None;
    }
    // A name DNS cannot hold (an empty label, one over 63 bytes, over 253 in all) does
    // not exist, whatever a server would say (README Differences 88).
    if matches!(dns.a, Answer::NxDomain | Answer::TempFail(DnsTrouble::BadName)) {
        return Some(Fail::new("HELO hostname does not exist", "no such host"));
    }
    Some(Fail::new("HELO hostname did not resolve", "no forward DNS"))
}

/// The client must have reverse DNS; a name equal to the HELO name, or in the same
/// domain (last two labels), sets `helo_reverse_match`. A temporary failure is a
/// temporary refusal.
fn reverse_dns(cx: &mut Context<'_>, dns: &Lookups, host: &str, ip: Option<IpAddr>) -> Option<Fail> {
    let (Some(ptr), Some(ip)) = (&dns.ptr, ip) else {
        cx.log(Level::Info, "skip reverse DNS, client address unknown");
        return None;
    };
    match ptr {
        Answer::NxDomain => Some(Fail::new(format!("no rDNS for {ip}"), "no rDNS")),
        Answer::NoData => Some(Fail::new(format!("no reverse DNS for {ip}"), "no PTR")),
        Answer::TempFail(t) => Some(Fail {
            text: format!("error getting reverse DNS for {ip}"),
            log: format!("rDNS lookup failed: {t}"),
            temporary: true,
        }),
        Answer::Records(records) => {
            let helo = host.trim_end_matches('.').to_ascii_lowercase();
            let matched = records.iter().any(|r| match r {
                Rdata::Ptr(p) => name_match(&p.0.to_ascii_lowercase(), &helo),
                _ => false,
            });
            if matched {
                cx.log(Level::Debug, "reverse domain match");
                cx.conn.notes.insert("helo_reverse_match".into(), "1".into());
            }
            None
        }
    }
}

/// qpsmtpd's loose match: the same address, or the same /24 (IPv4); for IPv6 the same
/// /64, one subnet.
fn same_network(a: IpAddr, ip: IpAddr) -> bool {
    let net = match a.to_canonical() {
        IpAddr::V4(v4) => format!("{v4}/24"),
        IpAddr::V6(v6) => format!("{v6}/64"),
    };
    lists::in_block(ip, &net).unwrap_or(false)
}

/// A PTR name matches the HELO name when equal, or when both end in the same two labels.
fn name_match(ptr: &str, helo: &str) -> bool {
    let ptr = ptr.trim_end_matches('.');
    if ptr == helo {
        return true;
    }
    let last_two = |n: &str| {
        let labels: Vec<&str> = n.rsplit('.').take(2).collect();
        (labels.len() == 2).then(|| format!("{}.{}", labels[1], labels[0]))
    };
    matches!((last_two(ptr), last_two(helo)), (Some(a), Some(b)) if a == b)
}

#[path = "names.rs"]
mod names;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
