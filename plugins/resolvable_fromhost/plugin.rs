//! resolvable_fromhost: refuses senders whose domain has no usable MX or address (MX
//! first, then A/AAAA), a null MX (RFC 7505), or only addresses in refused networks. A
//! lookup that fails temporarily defers the sender (`4xx`), never refuses it for good.
//! See README.md beside this file.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, Mx, Rdata, RecordType, Settings, lists};
use crate::plugin::{
    Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, Verdict, key_values, reject_type,
};

/// Mail exchangers looked at, at most (lowest preference first).
const MAX_EXCHANGES: usize = 10;

/// The plugin instance.
pub struct ResolvableFromhost {
    reject: Reject,
    /// `timeout` / `dns_timeout`: this plugin's own bound on each wait.
    limit: Option<Duration>,
}

/// What the sender's domain came to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Found {
    /// Usable: the transaction note (`mx`, `a`, `ip`) and a log line.
    Pass(&'static str, String),
    /// Definitely not usable: why, and the transaction note.
    Bad(Bad, String),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail, so it sends none.
    NullMx,
    /// DNS did not answer now: what failed.
    Temporary(String),
}

/// Why a sender's domain is not usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bad {
    /// No domain in the address (`<postmaster>`).
    NoDomain,
    /// Mail exchangers, none with a usable address.
    InvalidMx,
    /// The domain does not exist (`NXDOMAIN`).
    NoSuchDomain,
    /// The domain exists but has no MX, A or AAAA record.
    NoAddress,
    /// Every address (or the address literal) is in `invalid_resolvable_fromhost`.
    Refused,
}

impl Bad {
    /// The reply text; qpsmtpd's where qpsmtpd refused the same thing.
    fn text(self) -> &'static str {
        match self {
            Bad::NoDomain | Bad::InvalidMx => "FQDN required in the envelope sender",
            Bad::NoSuchDomain => "Sender domain does not exist",
            Bad::NoAddress => "Sender domain has no MX or address records",
            Bad::Refused => "Sender domain resolves only to refused addresses",
        }
    }
}

/// `resolvable_fromhost [reject 0|1|naughty] [reject_type TYPE] [timeout SECONDS]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    // qpsmtpd defers (`soft`) unless told otherwise.
    let args = lists::check_args(key_values(&spec.args)?, "soft", true)?;
    Settings::check(config)?;
    lists::check_lines(config, "invalid_resolvable_fromhost", block)?;
    Ok(Box::new(ResolvableFromhost {
        reject: args.reject,
        limit: args.limit,
    }))
}

/// An `invalid_resolvable_fromhost` line: an address block (`10.0.0.0/8`, `fc00::/7`) or
/// one address; words after it are a comment.
fn block(line: &str) -> Result<String, String> {
    let word = line.split_whitespace().next().unwrap_or_default();
    match lists::in_block(IpAddr::from([0, 0, 0, 0]), word) {
        Some(_) => Ok(word.to_string()),
        None => Err(format!("not an address block: {word:?}")),
    }
}

impl Plugin for ResolvableFromhost {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Mail]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Address { addr, .. } = args else {
            return Outcome::declined();
        };
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        if addr.is_null() {
            cx.txn.notes.insert("resolvable_fromhost".into(), "null".into());
            cx.log(Level::Info, "pass, null sender");
            return Outcome::declined();
        }
        let refused = match cx.config("invalid_resolvable_fromhost") {
            Ok(lines) => lines.iter().filter_map(|l| block(l).ok()).collect::<Vec<_>>(),
            Err(e) => return e.into(),
        };
        let found = match addr.host() {
            None => Found::Bad(Bad::NoDomain, "unparsable host".into()),
            Some(host) => {
                cx.txn
                    .notes
                    .insert("resolvable_fromhost_host".into(), host.to_string());
                self.check(cx, host, &refused)
            }
        };
        self.answer(cx, found)
    }
}

impl ResolvableFromhost {
    /// The sender's domain: an address literal, or MX (then A/AAAA) in DNS.
    fn check(&self, cx: &Context<'_>, host: &str, refused: &[String]) -> Found {
        let usable = |ip: IpAddr| !refused.iter().any(|b| lists::in_block(ip, b) == Some(true));
        if let Some(ip) = lists::address_literal(host) {
            return if usable(ip) {
                Found::Pass("ip", format!("skip, {host} is an IP"))
            } else {
                Found::Bad(Bad::Refused, format!("refused address {host}"))
            };
        }
        if !host.is_ascii() {
            // A U-label would have to be looked up as its A-label (IDNA); without that,
            // let the sender through rather than refuse a domain that may be fine.
            return Found::Pass("a", format!("skip, {host} is not an ASCII domain"));
        }
        let first = cx.dns().ask(
            &[
                (host, RecordType::Mx),
                (host, RecordType::A),
                (host, RecordType::Aaaa),
            ],
            self.limit,
        );
        let mut answers = first.into_iter();
        let mut next = || answers.next().unwrap_or(Answer::NoData);
        let (mx, a, aaaa) = (next().typed::<Mx>(), next(), next());
        match mx {
            Answer::Records(records) => self.exchanges(cx, host, records, &usable),
            Answer::NxDomain => Found::Bad(Bad::NoSuchDomain, format!("no such domain {host}")),
            other => addresses(host, &other, &a, &aaaa, &usable),
        }
    }

    /// The mail exchangers: usable if one of them has a usable address.
    fn exchanges(
        &self,
        cx: &Context<'_>,
        host: &str,
        mut records: Vec<Mx>,
        usable: &dyn Fn(IpAddr) -> bool,
    ) -> Found {
        records.sort_by_key(|m| m.preference);
        let names: Vec<String> = records
            .into_iter()
            .map(|m| m.exchange)
            .filter(|x| x != "." && !x.is_empty())
            .take(MAX_EXCHANGES)
            .collect();
        if names.is_empty() {
            return Found::NullMx;
        }
        let mut questions: Vec<(&str, RecordType)> = Vec::new();
        for name in names.iter().filter(|n| n.parse::<IpAddr>().is_err()) {
            questions.push((name, RecordType::A));
            questions.push((name, RecordType::Aaaa));
        }
        let answers = cx.dns().ask(&questions, self.limit);
        let mut answers = answers.into_iter();
        let mut temporary = None;
        for name in &names {
            let addrs: Vec<IpAddr> = match name.parse::<IpAddr>() {
                Ok(ip) => vec![ip],
                Err(_) => {
                    let (a, aaaa) = (answers.next(), answers.next());
                    for answer in [&a, &aaaa].into_iter().flatten() {
                        if let Answer::TempFail(t) = answer
                            && answer.is_temporary()
                        {
                            temporary.get_or_insert_with(|| format!("{name}: {t}"));
                        }
                    }
                    [a, aaaa].into_iter().flatten().flat_map(|x| ips(&x)).collect()
                }
            };
            if addrs.into_iter().any(usable) {
                return Found::Pass("mx", format!("pass, {host} has MX at {name}"));
            }
        }
        match temporary {
            Some(why) => Found::Temporary(why),
            None => Found::Bad(Bad::InvalidMx, format!("invalid MX for {host}")),
        }
    }

    /// Turns the result into the answer: a note, a log line, and a refusal as `reject`
    /// says (a temporary one for a DNS failure, a permanent one for a null MX).
    fn answer(&self, cx: &mut Context<'_>, found: Found) -> Outcome {
        let (note, reject, text) = match found {
            Found::Pass(note, log) => {
                cx.txn.notes.insert("resolvable_fromhost".into(), note.into());
                cx.log(Level::Info, log);
                return Outcome::declined();
            }
            Found::Temporary(why) => {
                cx.log(Level::Error, format_args!("lookup failed: {why}"));
                let reject = lists::soften(&self.reject);
                let text = format!("Temporary address resolution failure (#{}.4.3)", class(&reject));
                ("temporary failure".to_string(), reject, text)
            }
            Found::NullMx => {
                let reject = harden(&self.reject);
                let text = format!("Sender address has null MX (#{}.7.27)", class(&reject));
                ("null MX".to_string(), reject, text)
            }
            Found::Bad(bad, note) => {
                let text = format!("{} (#{}.1.8)", bad.text(), class(&self.reject));
                (note, self.reject.clone(), text)
            }
        };
        cx.txn.notes.insert("resolvable_fromhost".into(), note.clone());
        cx.log(Level::Info, format_args!("fail, {note}"));
        reject.outcome(cx, &text)
    }
}

/// No MX: the domain's own addresses (RFC 5321 §5.1), if they are usable.
fn addresses(
    host: &str,
    mx: &Answer<Mx>,
    a: &Answer<Rdata>,
    aaaa: &Answer<Rdata>,
    usable: &dyn Fn(IpAddr) -> bool,
) -> Found {
    let addrs: Vec<IpAddr> = ips(a).into_iter().chain(ips(aaaa)).collect();
    if addrs.iter().any(|ip| usable(*ip)) {
        return Found::Pass("a", format!("pass, found an address for {host}"));
    }
    // Only refused addresses settle nothing while a lookup failed: it might have found
    // an exchanger or a usable address (a DNS failure is never a 5xx).
    if let Some(t) = [mx.is_temporary(), a.is_temporary(), aaaa.is_temporary()]
        .into_iter()
        .position(|t| t)
    {
        let what = ["MX", "A", "AAAA"][t];
        return Found::Temporary(format!("{what} of {host}"));
    }
    if !addrs.is_empty() {
        return Found::Bad(Bad::Refused, format!("refused address for {host}"));
    }
    if matches!(a, Answer::NxDomain) {
        return Found::Bad(Bad::NoSuchDomain, format!("no such domain {host}"));
    }
    Found::Bad(Bad::NoAddress, format!("no address for {host}"))
}

/// The addresses in an A or AAAA answer.
fn ips(answer: &Answer<Rdata>) -> Vec<IpAddr> {
    answer
        .records()
        .iter()
        .filter_map(|r| match r {
            Rdata::A(a) => Some(IpAddr::V4(*a)),
            Rdata::Aaaa(a) => Some(IpAddr::V6(*a)),
            _ => None,
        })
        .collect()
}

/// The first digit of the status code a refusal by `reject` gets: `4` for the
/// temporary ones, else `5`.
fn class(reject: &Reject) -> char {
    let verdict = match reject {
        Reject::Now(v) => Some(*v),
        Reject::Naughty(t) => t.as_deref().and_then(reject_type),
        Reject::Tolerate => None,
    };
    match verdict {
        Some(Verdict::DenySoft | Verdict::DenySoftDisconnect) => '4',
        _ => '5',
    }
}

/// `reject` made permanent: a null MX is the domain's own final word (RFC 7505 §4.2).
fn harden(reject: &Reject) -> Reject {
    match reject {
        Reject::Now(v) => Reject::Now(lists::permanent(*v)),
        Reject::Naughty(t) => {
            let v = t.as_deref().and_then(reject_type).unwrap_or(Verdict::Deny);
            let name = match lists::permanent(v) {
                Verdict::DenyDisconnect => "disconnect",
                _ => "perm",
            };
            Reject::Naughty(Some(name.into()))
        }
        Reject::Tolerate => Reject::Tolerate,
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
