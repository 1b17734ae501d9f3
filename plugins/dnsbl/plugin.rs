//! dnsbl: refuses clients whose address is listed in DNS blocklists (`dnsbl_zones`),
//! all zones asked at once when the client connects. See README.md beside this file.

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{
    Answer, Rdata, RecordType, Settings, Txt, is_listing, lists, reverse_name,
};
use crate::plugin::{
    Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, Verdict, key_values,
};

/// Longest listing text put into a reply.
const MAX_TEXT: usize = 400;
/// Recipients a listed client may still write to (RFC 2142 and the like).
const SPECIAL: [&str; 4] = ["postmaster", "abuse", "mailer-daemon", "root"];

/// The plugin instance.
pub struct Dnsbl {
    reject: Reject,
    /// `timeout`: this plugin's own bound on its wait.
    limit: Option<Duration>,
    /// With `reject naughty`: the refusal this plugin deferred, held back while the
    /// recipient is a special account.
    deferred: RefCell<Option<String>>,
}

/// A line of `dnsbl_zones`: `zone` (listed when it has a TXT record, which is the
/// reply text) or `zone:message` (listed when it has an A record; the message, with
/// `%IP%` the client's address, is the text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    name: String,
    message: Option<String>,
}

/// `dnsbl [reject 0|1|naughty|connect] [reject_type TYPE] [timeout SECONDS]`, or the old
/// form `dnsbl TYPE`.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let kv = match spec.args.as_slice() {
        [one] => vec![("reject_type".to_string(), one.clone())],
        _ => key_values(&spec.args)?,
    };
    // qpsmtpd sets reject_type perm when none is given, so that `naughty` refuses with
    // 550 and keeps the connection.
    let args = lists::check_args(kv, "perm", true)?;
    Settings::check(config)?;
    lists::check_lines(config, "dnsbl_zones", zone)?;
    Ok(Box::new(Dnsbl {
        reject: args.reject,
        limit: args.limit,
        deferred: RefCell::new(None),
    }))
}

/// Reads a `dnsbl_zones` line.
fn zone(line: &str) -> Result<Zone, String> {
    let (name, message) = match line.split_once(':') {
        Some((n, m)) => (n, Some(m.trim().to_string())),
        None => (line, None),
    };
    Ok(Zone {
        name: lists::zone_name(name.trim())?,
        message,
    })
}

impl Plugin for Dnsbl {
    fn hooks(&self) -> Vec<Hook> {
        match self.reject {
            Reject::Naughty(_) => vec![Hook::Connect, Hook::Rcpt, Hook::DataPost],
            _ => vec![Hook::Connect],
        }
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        match (hook, args) {
            (Hook::Connect, _) => self.connect(cx),
            (Hook::Rcpt, Args::Address { addr, .. }) => {
                let special = is_special(addr.user());
                if special {
                    cx.log(
                        Level::Warn,
                        format_args!("skip, don't blacklist special account: {}", addr.user()),
                    );
                }
                self.hold_back(cx, special);
                Outcome::declined()
            }
            (Hook::DataPost, _) => {
                let all_special =
                    !cx.txn.recipients.is_empty() && cx.txn.recipients.iter().all(|r| is_special(r.user()));
                self.hold_back(cx, all_special);
                Outcome::declined()
            }
            _ => Outcome::declined(),
        }
    }
}

fn is_special(user: &str) -> bool {
    SPECIAL.iter().any(|s| user.eq_ignore_ascii_case(s))
}

impl Dnsbl {
    fn connect(&self, cx: &mut Context<'_>) -> Outcome {
        let Some(ip) = lists::client_ip(cx.conn) else {
            cx.log(Level::Info, "skip, no client address");
            return Outcome::declined();
        };
        if let Some(text) = cx.conn.rblsmtpd.clone() {
            return self.rblsmtpd(cx, ip, &text);
        }
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        match allowed(cx, ip) {
            Ok(true) => {
                cx.log(Level::Info, format_args!("skip, {ip} in dnsbl_allow"));
                return Outcome::declined();
            }
            Ok(false) => {}
            Err(out) => return out,
        }
        let zones = match zones(cx) {
            Ok(z) => z,
            Err(out) => return out,
        };
        if zones.is_empty() {
            cx.log(Level::Debug, "skip, no zones");
            return Outcome::declined();
        }
        match self.first_listing(cx, ip, &zones) {
            Some((zone, text)) => self.listed(cx, &zone, &text),
            None => {
                cx.log(Level::Info, "pass");
                Outcome::declined()
            }
        }
    }

    /// Asks every zone at once; the first zone in file order that lists the client, and
    /// the text. A temporary failure lets the client through (logged).
    fn first_listing(&self, cx: &Context<'_>, ip: IpAddr, zones: &[Zone]) -> Option<(String, String)> {
        let names: Vec<String> = zones.iter().map(|z| reverse_name(ip, Some(&z.name))).collect();
        let questions: Vec<(&str, RecordType)> = zones
            .iter()
            .zip(&names)
            .map(|(z, n)| {
                (
                    n.as_str(),
                    if z.message.is_some() {
                        RecordType::A
                    } else {
                        RecordType::Txt
                    },
                )
            })
            .collect();
        let answers = cx.dns().ask(&questions, self.limit);
        let mut first = None;
        for (zone, answer) in zones.iter().zip(answers) {
            let text = match (answer, &zone.message) {
                (Answer::Records(records), None) => records.into_iter().find_map(|r| match r {
                    Rdata::Txt(t) => Some(t.printable(MAX_TEXT)).map(|t| {
                        if t.is_empty() {
                            format!("Blocked by {}", zone.name)
                        } else {
                            t
                        }
                    }),
                    _ => None,
                }),
                (Answer::Records(records), Some(message)) => a_listing(cx, zone, records, message, ip),
                (Answer::TempFail(t), _) => {
                    cx.log(Level::Error, format_args!("{} query failed: {t}", zone.name));
                    None
                }
                (other, _) => {
                    cx.log(Level::Debug, format_args!("{}: {}", zone.name, other.summary()));
                    None
                }
            };
            if let (Some(text), None) = (text, &first) {
                first = Some((zone.name.clone(), text));
            }
        }
        first
    }

    fn listed(&self, cx: &mut Context<'_>, zone: &str, text: &str) -> Outcome {
        cx.log(Level::Info, format_args!("fail, {zone}"));
        if matches!(self.reject, Reject::Naughty(_)) {
            *self.deferred.borrow_mut() = Some(text.to_string());
        }
        self.reject.outcome(cx, text)
    }

    /// rblsmtpd's variable: empty = no checks; a text = refuse with it, permanently if
    /// it starts with `-`, else temporarily (README Differences 71).
    fn rblsmtpd(&self, cx: &mut Context<'_>, ip: IpAddr, text: &str) -> Outcome {
        if text.is_empty() {
            cx.log(
                Level::Info,
                format_args!("skip, RBLSMTPD set, but empty for {ip}"),
            );
            return Outcome::declined();
        }
        let (permanent, text) = match text.strip_prefix('-') {
            Some(t) => (true, t),
            None => (false, text),
        };
        let text = Txt(vec![text.replace("%IP%", &ip.to_string()).into_bytes()]).printable(MAX_TEXT);
        let msg = match cx.config_first("dnsbl_rejectmsg") {
            Ok(Some(m)) if !m.is_empty() => format!("{m} {text}"),
            Ok(_) => text,
            Err(e) => return e.into(),
        };
        cx.log(Level::Info, format_args!("RBLSMTPD for {ip}: {msg}"));
        let reject = match &self.reject {
            Reject::Now(_) => Reject::Now(if permanent {
                Verdict::Deny
            } else {
                Verdict::DenySoft
            }),
            Reject::Naughty(_) => Reject::Naughty(Some(if permanent { "perm" } else { "temp" }.into())),
            Reject::Tolerate => Reject::Tolerate,
        };
        if matches!(reject, Reject::Naughty(_)) {
            *self.deferred.borrow_mut() = Some(msg.clone());
        }
        reject.outcome(cx, &msg)
    }

    /// With `reject naughty`: takes this plugin's deferred refusal out of the `naughty`
    /// note while the recipient(s) are special accounts, and puts it back otherwise.
    fn hold_back(&self, cx: &mut Context<'_>, special: bool) {
        let Some(text) = self.deferred.borrow().clone() else {
            return;
        };
        let notes = &mut cx.conn.notes;
        match notes.get("naughty") {
            Some(n) if special && *n == text => {
                notes.remove("naughty");
            }
            None if !special => {
                notes.insert("naughty".into(), text);
            }
            _ => {}
        }
    }
}

/// An A answer for a `zone:message` line: the message if an address says "listed".
fn a_listing(
    cx: &Context<'_>,
    zone: &Zone,
    records: Vec<Rdata>,
    message: &str,
    ip: IpAddr,
) -> Option<String> {
    let addrs: Vec<_> = records
        .into_iter()
        .filter_map(|r| if let Rdata::A(a) = r { Some(a) } else { None })
        .collect();
    if addrs.iter().any(|a| is_listing(*a)) {
        let text = Txt(vec![message.replace("%IP%", &ip.to_string()).into_bytes()]).printable(MAX_TEXT);
        return Some(if text.is_empty() {
            format!("Blocked by {}", zone.name)
        } else {
            text
        });
    }
    cx.log(
        Level::Error,
        format_args!("{} answered {addrs:?}: not a listing address, ignored", zone.name),
    );
    None
}

/// Is the client in `dnsbl_allow`? Lines are qpsmtpd's address prefixes (`192.0.2.`,
/// `192.0.2.7`), or address blocks (`192.0.2.0/24`, `2001:db8::/32`).
fn allowed(cx: &Context<'_>, ip: IpAddr) -> Result<bool, Outcome> {
    let lines = cx.config("dnsbl_allow").map_err(Outcome::from)?;
    let dotted = format!("{ip}.");
    Ok(lines.iter().any(|line| match lists::in_block(ip, line) {
        Some(hit) => hit,
        None if line.contains('/') || line.contains(':') => false,
        None => {
            let prefix = if line.ends_with('.') {
                line.to_string()
            } else {
                format!("{line}.")
            };
            dotted.starts_with(&prefix)
        }
    }))
}

/// The zones, in file order; a line that is not a zone is skipped (logged).
fn zones(cx: &Context<'_>) -> Result<Vec<Zone>, Outcome> {
    let lines = cx.config("dnsbl_zones").map_err(Outcome::from)?;
    Ok(lines
        .iter()
        .filter_map(|line| match zone(line) {
            Ok(z) => Some(z),
            Err(e) => {
                cx.log(Level::Error, format_args!("dnsbl_zones: {e}"));
                None
            }
        })
        .collect())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
