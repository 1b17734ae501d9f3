//! uribl: looks up the domains and addresses of URIs in a message in URI blocklists
//! (`uribl_zones`) at the end of DATA, and tags, refuses or logs a listed message. See
//! README.md beside this file.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, Rdata, RecordType, Settings, is_listing, lists};
use crate::plugin::{
    Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values, truthy,
};

#[path = "psl.rs"]
mod psl;
#[path = "scan.rs"]
mod scan;

use psl::Psl;
use scan::Found;

/// Longest TXT text put into a header or reply.
const MAX_TEXT: usize = 300;
/// The mask that takes every list of a combined zone (qpsmtpd's default).
const ALL_LISTS: u32 = 0x00ff_ffff;
/// The header a match adds with `action add-header`.
pub const HEADER: &str = "X-URIBL-Match";

/// What to do with a match.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    AddHeader,
    Deny,
    DenySoft,
    Log,
}

fn action(v: &str) -> Result<Action, String> {
    match v {
        "add-header" => Ok(Action::AddHeader),
        "deny" => Ok(Action::Deny),
        "denysoft" => Ok(Action::DenySoft),
        "log" => Ok(Action::Log),
        other => Err(format!(
            "action must be add-header, deny, denysoft or log, not {other:?}"
        )),
    }
}

/// A line of `uribl_zones`: `zone [mask[,mask...]] [action]` (or `zone action`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    name: String,
    mask: Option<u32>,
    action: Option<Action>,
}

fn zone(line: &str) -> Result<Zone, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if words.len() > 3 {
        return Err(format!("more than zone, mask and action: {line:?}"));
    }
    let name = lists::zone_name(words.first().copied().unwrap_or(""))?;
    // `zone action` without a mask is taken too (qpsmtpd refused it).
    if let [_, word] = words[..]
        && let Ok(a) = action(word)
    {
        return Ok(Zone {
            name,
            mask: None,
            action: Some(a),
        });
    }
    let mask = match words.get(1) {
        None => None,
        Some(m) => Some(mask(m)?),
    };
    let action = words.get(2).map(|a| action(a)).transpose()?;
    Ok(Zone { name, mask, action })
}

/// qpsmtpd's masks: decimal numbers separated by commas, OR'ed; a negative one (or 0,
/// which qpsmtpd took as "none given") means every list.
fn mask(text: &str) -> Result<u32, String> {
    let mut mask = 0;
    for part in text.split(',') {
        let n: i64 = part.parse().map_err(|_| format!("malformed mask {part:?}"))?;
        mask |= if n <= 0 {
            ALL_LISTS
        } else {
            u32::try_from(n).map_err(|_| format!("mask {n} too large"))?
        };
    }
    Ok(mask)
}

/// The plugin instance.
pub struct Uribl {
    action: Action,
    limit: Duration,
    check_headers: bool,
}

/// `uribl [action add-header|deny|denysoft|log] [timeout SECONDS] [check-headers 1]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut plugin = Uribl {
        action: Action::AddHeader,
        limit: Duration::from_secs(30),
        check_headers: false,
    };
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "action" => plugin.action = action(&v)?,
            "timeout" => plugin.limit = lists::timeout(&v)?,
            "check-headers" | "scan-headers" => plugin.check_headers = truthy(&v),
            // qpsmtpd read it and never used it.
            "mask" => {}
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: action, timeout, check-headers, scan-headers, mask)"
                )));
            }
        }
    }
    Settings::check(config)?;
    lists::check_lines(config, "uribl_zones", zone)?;
    Ok(Box::new(plugin))
}

impl Plugin for Uribl {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::DataPost]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        let zones = match config_list(cx, "uribl_zones", zone) {
            Ok(z) if z.is_empty() => return Outcome::declined(),
            Ok(z) => z,
            Err(out) => return out,
        };
        let names = match self.names(cx) {
            Ok(n) if n.is_empty() => {
                cx.log(Level::Info, "pass, No URIs found in mail");
                return Outcome::declined();
            }
            Ok(n) => n,
            Err(out) => return out,
        };
        let start = Instant::now();
        let matches = self.matches(cx, &names, &zones);
        cx.log(
            Level::Info,
            format_args!(
                "{} lookups finished in {:.2} sec ({} matches)",
                names.len() * zones.len(),
                start.elapsed().as_secs_f64(),
                matches.len()
            ),
        );
        for (action, desc) in matches {
            cx.log(Level::Warn, &desc);
            match action {
                Action::AddHeader => cx.txn.header.add(HEADER, &desc, Some(0)),
                Action::Deny => return Outcome::with(Verdict::Deny, desc),
                Action::DenySoft => return Outcome::with(Verdict::DenySoft, desc),
                Action::Log => {}
            }
        }
        Outcome::declined()
    }
}

impl Uribl {
    /// The names to look up: reversed addresses, and registrable domains of host names
    /// whose top-level domain is known and that are not whitelisted.
    fn names(&self, cx: &mut Context<'_>) -> Result<Vec<String>, Outcome> {
        let mut found = Found::default();
        if self.check_headers {
            scan::scan(cx.txn.header.as_bytes(), &mut found);
        }
        let unreadable = match cx.txn.body_reader() {
            Ok(body) => {
                scan::scan(body, &mut found);
                None
            }
            Err(e) => Some(e),
        };
        if let Some(e) = unreadable {
            cx.log(Level::Error, format_args!("cannot read the message: {e}"));
        }
        let whitelist: Vec<String> = config_list(cx, "uribl_whitelist_domains", |l| {
            Ok(l.trim_end_matches('.').to_ascii_lowercase())
        })?;
        let psl = public_suffixes(cx)?;
        let mut names: Vec<String> = found
            .ips
            .iter()
            .map(|ip| {
                let [a, b, c, d] = ip.octets();
                format!("{d}.{c}.{b}.{a}")
            })
            .collect();
        for host in &found.hosts {
            let tld = host.rsplit('.').next().unwrap_or("");
            if !psl.knows_tld(tld) {
                continue;
            }
            let parents = host.match_indices('.').map(|(i, _)| &host[i + 1..]);
            if whitelist
                .iter()
                .any(|w| w == host || parents.clone().any(|p| p == w))
            {
                cx.log(
                    Level::Info,
                    format_args!("Skipping whitelist URI domain '{host}'"),
                );
                continue;
            }
            if let Some(domain) = psl.registrable(host).filter(|d| !names.contains(d)) {
                cx.log(
                    Level::Debug,
                    format_args!("URIBL: checking {domain} (for {host})"),
                );
                names.push(domain);
            }
        }
        Ok(names)
    }

    /// Every name in every zone, asked at once; the matches (action, description) in
    /// order of the names, then of the zones. A temporary failure is no match.
    fn matches(&self, cx: &Context<'_>, names: &[String], zones: &[Zone]) -> Vec<(Action, String)> {
        let pairs: Vec<(&String, &Zone)> = names
            .iter()
            .flat_map(|n| zones.iter().map(move |z| (n, z)))
            .collect();
        let queried: Vec<String> = pairs.iter().map(|(n, z)| format!("{n}.{}", z.name)).collect();
        let questions: Vec<(&str, RecordType)> =
            queried.iter().map(|q| (q.as_str(), RecordType::A)).collect();
        let answers = cx.dns().ask(&questions, Some(self.limit));
        let mut hits = Vec::new();
        for (i, ((name, zone), answer)) in pairs.iter().zip(answers).enumerate() {
            match answer {
                Answer::Records(records) => {
                    if let Some(a) = listed(cx, zone, &records) {
                        hits.push((i, *name, *zone, a));
                    }
                }
                Answer::TempFail(t) => cx.log(Level::Error, format_args!("{} query failed: {t}", queried[i])),
                _ => {}
            }
        }
        // The reasons, for the matches only: one more round trip, and only then.
        let txt_questions: Vec<(&str, RecordType)> = hits
            .iter()
            .map(|h| (queried[h.0].as_str(), RecordType::Txt))
            .collect();
        let texts = cx.dns().ask(&txt_questions, Some(self.limit));
        hits.into_iter()
            .zip(texts)
            .map(|((_, name, zone, a), txt)| {
                let reason = txt.records().iter().find_map(|r| match r {
                    Rdata::Txt(t) => Some(t.printable(MAX_TEXT)).filter(|t| !t.is_empty()),
                    _ => None,
                });
                let desc = format!(
                    "{name} in {}: {}",
                    zone.name,
                    reason.unwrap_or_else(|| a.to_string())
                );
                (zone.action.unwrap_or(self.action), desc)
            })
            .collect()
    }
}

/// The address of a zone's answer that matches its mask, if one does and is a listing.
fn listed(cx: &Context<'_>, zone: &Zone, records: &[Rdata]) -> Option<Ipv4Addr> {
    let mask = zone.mask.unwrap_or(ALL_LISTS);
    let addrs: Vec<Ipv4Addr> = records
        .iter()
        .filter_map(|r| if let Rdata::A(a) = r { Some(*a) } else { None })
        .collect();
    if let Some(bad) = addrs.iter().find(|a| !is_listing(**a)) {
        cx.log(
            Level::Error,
            format_args!("{} answered {bad}: not a listing address, ignored", zone.name),
        );
    }
    addrs
        .into_iter()
        .find(|a| is_listing(*a) && u32::from(*a) & mask != 0)
}

/// A config list read in the hook, a line `parse` refuses skipped (logged).
fn config_list<T>(
    cx: &Context<'_>,
    item: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, Outcome> {
    let lines = cx.config(item).map_err(Outcome::from)?;
    Ok(lines
        .iter()
        .filter_map(|line| match parse(line) {
            Ok(v) => Some(v),
            Err(e) => {
                cx.log(Level::Error, format_args!("{item}: {e}"));
                None
            }
        })
        .collect())
}

/// `public_suffix_list` from the config, else the list shipped with the plugin.
fn public_suffixes(cx: &Context<'_>) -> Result<Psl, Outcome> {
    let lines = cx.config("public_suffix_list").map_err(Outcome::from)?;
    if lines.is_empty() {
        Ok(Psl::parse(psl::DEFAULT.lines()))
    } else {
        Ok(Psl::parse(lines.iter()))
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
