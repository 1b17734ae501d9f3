//! DNS lookups for plugins: typed answers that keep apart "no such name", "no such
//! record" and "no answer now", so that a DNS failure never turns into a refusal.
//!
//! The resolver itself (servers from `dns_servers` or `/etc/resolv.conf`, per-query
//! timeout and per-session budget, a cache for the session, several questions in flight
//! at once) comes with the DNS plugins; until then every lookup answers
//! [`Answer::TempFail`] with [`DnsTrouble::NotAvailable`], which plugins treat as any
//! other temporary failure.

use std::cell::Cell;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Config;
use crate::log::Logger;

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    /// The records of the type asked for (never empty).
    Records(Vec<T>),
    /// The name does not exist (`NXDOMAIN`): a definite "not listed".
    NxDomain,
    /// The name exists but has no records of this type.
    NoData,
    /// No answer could be had now; not a "no". A plugin lets the client through or
    /// defers it (`4xx`), as its README says, and never refuses it for good.
    TempFail(DnsTrouble),
}

/// Why a lookup has no answer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTrouble {
    /// This session has no resolver (none built in yet, or none configured).
    NotAvailable,
    /// No server answered within the per-query timeout.
    Timeout,
    /// The session's DNS time budget is spent: every further lookup fails at once.
    BudgetSpent,
    /// A server answered `SERVFAIL`, `REFUSED` or something that could not be read.
    ServerFailure,
    /// The name cannot be asked (an empty or over-long label, more than 255 bytes).
    BadName,
}

/// The record types plugins ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// IPv4 addresses.
    A,
    /// IPv6 addresses.
    Aaaa,
    /// Mail exchangers.
    Mx,
    /// Text records (DNSBL reasons, SPF, DKIM keys).
    Txt,
    /// Names of an address (reverse DNS).
    Ptr,
}

/// A type a lookup can return.
pub trait Record: Clone {
    /// The record type asked for.
    const TYPE: RecordType;
}

/// An MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mx {
    /// Lower is tried first.
    pub preference: u16,
    /// The exchanger's host name, without the trailing dot (`.` for a null MX, RFC 7505).
    pub exchange: String,
}

/// A TXT record: its character-strings as they came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txt(pub Vec<Vec<u8>>);

/// A PTR record: the host name, without the trailing dot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ptr(pub String);

impl Record for Ipv4Addr {
    const TYPE: RecordType = RecordType::A;
}

impl Record for Ipv6Addr {
    const TYPE: RecordType = RecordType::Aaaa;
}

impl Record for Mx {
    const TYPE: RecordType = RecordType::Mx;
}

impl Record for Txt {
    const TYPE: RecordType = RecordType::Txt;
}

impl Record for Ptr {
    const TYPE: RecordType = RecordType::Ptr;
}

impl Txt {
    /// The strings joined into one text (RFC 7208 §3.3), invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.concat()).into_owned()
    }
}

impl<T> Answer<T> {
    /// The records, or none.
    pub fn records(&self) -> &[T] {
        match self {
            Answer::Records(r) => r,
            _ => &[],
        }
    }

    /// Is this a temporary failure (not a definite answer)?
    pub fn is_temporary(&self) -> bool {
        matches!(self, Answer::TempFail(_))
    }

    /// The same answer with each record changed by `f`.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Answer<U> {
        match self {
            Answer::Records(r) => Answer::Records(r.into_iter().map(f).collect()),
            Answer::NxDomain => Answer::NxDomain,
            Answer::NoData => Answer::NoData,
            Answer::TempFail(t) => Answer::TempFail(t),
        }
    }
}

/// The session's resolver.
#[derive(Debug)]
pub struct Dns {
    /// Questions asked in this session (for the log, and the budget).
    asked: Cell<u64>,
}

impl Dns {
    /// Made on the first lookup of a session (see [`super::Services`]).
    pub fn new(_config: &Config, _log: &Logger) -> Dns {
        Dns { asked: Cell::new(0) }
    }

    /// How many questions the plugins of this session have asked.
    pub fn asked(&self) -> u64 {
        self.asked.get()
    }

    /// Looks up one name.
    pub fn lookup<R: Record>(&self, name: &str) -> Answer<R> {
        self.lookup_all::<R>(&[name])
            .pop()
            .unwrap_or(Answer::TempFail(DnsTrouble::NotAvailable))
    }

    /// Looks up several names at once (the questions are in flight together, so five
    /// DNSBL zones cost about one round trip); the answers in the order of `names`.
    pub fn lookup_all<R: Record>(&self, names: &[&str]) -> Vec<Answer<R>> {
        self.asked.set(self.asked.get() + names.len() as u64);
        names
            .iter()
            .map(|name| match check_name(name) {
                Err(trouble) => Answer::TempFail(trouble),
                Ok(()) => Answer::TempFail(DnsTrouble::NotAvailable),
            })
            .collect()
    }

    /// The IPv4 addresses of a name.
    pub fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.lookup(name)
    }

    /// The IPv6 addresses of a name.
    pub fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.lookup(name)
    }

    /// The mail exchangers of a domain.
    pub fn mx(&self, domain: &str) -> Answer<Mx> {
        self.lookup(domain)
    }

    /// The TXT records of a name.
    pub fn txt(&self, name: &str) -> Answer<Txt> {
        self.lookup(name)
    }

    /// The names of an address (its PTR records, under [`reverse_name`]).
    pub fn ptr(&self, ip: IpAddr) -> Answer<Ptr> {
        self.lookup(&reverse_name(ip, None))
    }
}

/// The name under which an address is listed: its reversed labels, then `zone`, or the
/// reverse zone (`in-addr.arpa`, `ip6.arpa`) without one. IPv4 addresses in IPv6 form
/// (`::ffff:192.0.2.1`) are written as IPv4; IPv6 in nibbles (RFC 3596 §2.5).
///
/// `192.0.2.1` with `zen.example` is `1.2.0.192.zen.example`.
pub fn reverse_name(ip: IpAddr, zone: Option<&str>) -> String {
    let mut name = String::with_capacity(80);
    let default_zone = match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            let _ = write!(name, "{d}.{c}.{b}.{a}");
            "in-addr.arpa"
        }
        IpAddr::V6(v6) => {
            for byte in v6.octets().iter().rev() {
                let _ = write!(name, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            name.pop();
            "ip6.arpa"
        }
    };
    name.push('.');
    name.push_str(zone.unwrap_or(default_zone).trim_end_matches('.'));
    name
}

/// A name that can be asked: at most 253 bytes written without the root dot, labels of
/// 1 to 63 bytes.
fn check_name(name: &str) -> Result<(), DnsTrouble> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels_ok = name.split('.').all(|l| (1..=63).contains(&l.len()));
    if name.is_empty() || name.len() > 253 || !labels_ok {
        return Err(DnsTrouble::BadName);
    }
    Ok(())
}
