//! DNS lookups for plugins: typed answers that keep apart "no such name", "no such
//! record" and "no answer now", so that a DNS failure never turns into a refusal.
//!
//! ```text
//! mod.rs       the answer types plugins see; reverse_name
//! resolver.rs  Dns: the session's resolver (cache, time budget, batches)
//! client.rs    the poll loop: queries in flight together, replies matched, TCP retry
//! wire.rs      DNS messages: the query we send, the reply we read (bounded, fuzzed)
//! settings.rs  dns_servers, dns_timeout, dns_budget, /etc/resolv.conf
//! lists.rs     what the DNS list plugins share (client address, zone names, blocks)
//! ```
//!
//! The resolver is blocking and has no runtime: a batch of questions goes out at once
//! over one UDP socket and one `poll` loop collects the replies, so a plugin that asks
//! five DNSBL zones waits about one round trip. It is made when a plugin first asks
//! (see [`super::Services`]), so a session whose plugins use no DNS opens no socket.

mod client;
#[cfg(test)]
pub(crate) mod fake;
pub mod lists;
mod resolver;
pub mod settings;
pub mod wire;

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use client::Stats;
pub use resolver::{Dns, answer_from};
pub use settings::Settings;

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
    /// defers it (`4xx`), as its README says, and never refuses it for good. (Except
    /// [`DnsTrouble::BadName`]: see [`Answer::is_temporary`].)
    TempFail(DnsTrouble),
}

/// Why a lookup has no answer now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsTrouble {
    /// This session has no resolver: `dns_servers` is invalid, or no server could be
    /// reached at all.
    NotAvailable,
    /// No server answered within the per-query timeout (or the plugin's own limit).
    Timeout,
    /// The session's DNS time budget is spent: every further lookup fails at once.
    BudgetSpent,
    /// A server answered `SERVFAIL`, `REFUSED` or something that could not be read.
    ServerFailure,
    /// The name cannot be asked (an empty or over-long label, more than 253 bytes, a
    /// blank, a control character or a backslash). Such a name has no records now or
    /// later: [`Answer::is_temporary`] is false for it.
    BadName,
}

impl std::fmt::Display for DnsTrouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DnsTrouble::NotAvailable => "no DNS server available",
            DnsTrouble::Timeout => "timed out",
            DnsTrouble::BudgetSpent => "DNS time budget spent",
            DnsTrouble::ServerFailure => "server failure",
            DnsTrouble::BadName => "not a valid name",
        })
    }
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

impl RecordType {
    /// The type's number on the wire.
    pub fn number(self) -> u16 {
        match self {
            RecordType::A => wire::rtype::A,
            RecordType::Aaaa => wire::rtype::AAAA,
            RecordType::Mx => wire::rtype::MX,
            RecordType::Txt => wire::rtype::TXT,
            RecordType::Ptr => wire::rtype::PTR,
        }
    }
}

/// A record of any of the types plugins ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rdata {
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
    /// A mail exchanger.
    Mx(Mx),
    /// A text record.
    Txt(Txt),
    /// A host name.
    Ptr(Ptr),
}

/// A type a lookup can return.
pub trait Record: Clone {
    /// The record type asked for.
    const TYPE: RecordType;
    /// This type's record, if `r` is one.
    fn from_rdata(r: Rdata) -> Option<Self>;
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
    fn from_rdata(r: Rdata) -> Option<Self> {
        match r {
            Rdata::A(a) => Some(a),
            _ => None,
        }
    }
}

impl Record for Ipv6Addr {
    const TYPE: RecordType = RecordType::Aaaa;
    fn from_rdata(r: Rdata) -> Option<Self> {
        match r {
            Rdata::Aaaa(a) => Some(a),
            _ => None,
        }
    }
}

impl Record for Mx {
    const TYPE: RecordType = RecordType::Mx;
    fn from_rdata(r: Rdata) -> Option<Self> {
        match r {
            Rdata::Mx(m) => Some(m),
            _ => None,
        }
    }
}

impl Record for Txt {
    const TYPE: RecordType = RecordType::Txt;
    fn from_rdata(r: Rdata) -> Option<Self> {
        match r {
            Rdata::Txt(t) => Some(t),
            _ => None,
        }
    }
}

impl Record for Ptr {
    const TYPE: RecordType = RecordType::Ptr;
    fn from_rdata(r: Rdata) -> Option<Self> {
        match r {
            Rdata::Ptr(p) => Some(p),
            _ => None,
        }
    }
}

impl Txt {
    /// The strings joined into one text (RFC 7208 §3.3), invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.concat()).into_owned()
    }

    /// The text fit for a reply or a header: the strings joined, every byte that is not
    /// printable ASCII a `?`, runs of blanks one space, at most `max` bytes.
    pub fn printable(&self, max: usize) -> String {
        let mut out = String::new();
        for &b in self.0.concat().iter() {
            let c = if (b' '..=b'~').contains(&b) {
                b as char
            } else {
                '?'
            };
            if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
                continue;
            }
            if out.len() == max {
                break;
            }
            out.push(c);
        }
        out.trim_end().to_string()
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

    /// Is this a temporary failure (not a definite answer)? A name that cannot be asked
    /// ([`DnsTrouble::BadName`]) is not: it will not have records later either, so a
    /// hostile PTR or MX name, or a HELO name with an empty label, cannot pass a check
    /// as a DNS failure would (README Differences 88).
    pub fn is_temporary(&self) -> bool {
        matches!(self, Answer::TempFail(t) if *t != DnsTrouble::BadName)
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

    /// A short word for the log: `NXDOMAIN`, `NODATA`, the trouble, or the count.
    pub fn summary(&self) -> String {
        match self {
            Answer::Records(r) => format!("{} records", r.len()),
            Answer::NxDomain => "NXDOMAIN".into(),
            Answer::NoData => "NODATA".into(),
            Answer::TempFail(t) => t.to_string(),
        }
    }
}

impl Answer<Rdata> {
    /// The records of type `R` (an answer to a question of `R::TYPE`).
    pub fn typed<R: Record>(self) -> Answer<R> {
        match self {
            Answer::Records(r) => {
                let r: Vec<R> = r.into_iter().filter_map(R::from_rdata).collect();
                if r.is_empty() {
                    Answer::NoData
                } else {
                    Answer::Records(r)
                }
            }
            Answer::NxDomain => Answer::NxDomain,
            Answer::NoData => Answer::NoData,
            Answer::TempFail(t) => Answer::TempFail(t),
        }
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

/// A name as it is asked and cached: lower case, without the final dot. At most 253
/// bytes, labels of 1 to 63 bytes of printable ASCII other than `\` (so that the name
/// on the wire and its text are the same bytes).
pub fn normal_name(name: &str) -> Result<String, DnsTrouble> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok =
        |l: &str| (1..=63).contains(&l.len()) && l.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'\\');
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(DnsTrouble::BadName);
    }
    Ok(name.to_ascii_lowercase())
}

/// Is `a` an address a DNS list uses to say "listed" (RFC 5782 §2.1: within
/// 127.0.0.0/8), and not one its operators use for errors: `127.0.0.1` (RFC 5782 §5;
/// URIBL's "query refused") and `127.255.255.0/24` (Spamhaus' "query through a public
/// resolver", "typing error in the zone name")? README Differences 69.
pub fn is_listing(a: Ipv4Addr) -> bool {
    let [first, second, third, _] = a.octets();
    first == 127 && a != Ipv4Addr::new(127, 0, 0, 1) && !(second == 255 && third == 255)
}

#[cfg(test)]
mod tests;
