//! rhsbl: refuses senders whose domain, or whose HELO name, is listed in right-hand-side
//! DNS blocklists (`rhsbl_zones`), at MAIL FROM. See README.md beside this file.

use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, Rdata, RecordType, Settings, Txt, is_listing, lists};
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values};

/// Longest listing text put into a reply.
const MAX_TEXT: usize = 400;

/// The plugin instance.
pub struct Rhsbl {
    reject: Reject,
    /// `dns_timeout` (or `timeout`): this plugin's own bound on its wait.
    limit: Option<Duration>,
}

/// A line of `rhsbl_zones`: `zone` (listed when it has a TXT record, which is the
/// reason) or `zone reason...` (listed when it has an A record; the words are the reason).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Zone {
    name: String,
    message: Option<String>,
}

/// `rhsbl [reject 0|1|naughty] [reject_type TYPE] [dns_timeout SECONDS]`, or the old form
/// `rhsbl disconnect`.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let kv = match spec.args.as_slice() {
        [one] if one.eq_ignore_ascii_case("disconnect") => vec![("reject_type".into(), "disconnect".into())],
        [_] => Vec::new(),
        _ => key_values(&spec.args)?,
    };
    // qpsmtpd sets reject_type perm when none is given, so that `naughty` refuses with
    // 550 and keeps the connection.
    let args = lists::check_args(kv, "perm", true)?;
    Settings::check(config)?;
    lists::check_lines(config, "rhsbl_zones", zone)?;
    Ok(Box::new(Rhsbl {
        reject: args.reject,
        limit: args.limit,
    }))
}

fn zone(line: &str) -> Result<Zone, String> {
    let (name, message) = match line.split_once(char::is_whitespace) {
        Some((n, m)) => (n, Some(m.trim().to_string())),
        None => (line, None),
    };
    Ok(Zone {
        name: lists::zone_name(name)?,
        message,
    })
}

impl Plugin for Rhsbl {
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
            cx.log(Level::Info, "pass, null sender");
            return Outcome::declined();
        }
        let zones = match zones(cx) {
            Ok(z) if z.is_empty() => {
                cx.log(Level::Info, "pass, no zones");
                return Outcome::declined();
            }
            Ok(z) => z,
            Err(out) => return out,
        };
        let hosts = hosts(addr.host(), cx.conn.hello_host());
        match self.first_listing(cx, &hosts, &zones) {
            Some(msg) => self.reject.outcome(cx, &msg),
            None => {
                cx.log(Level::Info, "pass");
                Outcome::declined()
            }
        }
    }
}

/// The names to check, in order: the sender's domain, then the HELO name (unless it is
/// the same). Address literals, names that are not ASCII domains and (for HELO) names
/// without a dot are left out.
fn hosts(sender: Option<&str>, hello: &str) -> Vec<(String, bool)> {
    let usable = |h: &str| h.is_ascii() && !h.starts_with('[') && crate::address::is_domain(h);
    let mut out = Vec::new();
    if let Some(domain) = sender
        .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
        .filter(|d| usable(d))
    {
        out.push((domain, false));
    }
    let hello = hello.trim_end_matches('.').to_ascii_lowercase();
    if usable(&hello) && hello.contains('.') && out.iter().all(|(d, _)| *d != hello) {
        out.push((hello, true));
    }
    out
}

impl Rhsbl {
    /// Asks every host in every zone at once; the reply text for the first listing in
    /// order (sender before HELO, zones in file order). Temporary failures let the
    /// sender through (logged).
    fn first_listing(&self, cx: &Context<'_>, hosts: &[(String, bool)], zones: &[Zone]) -> Option<String> {
        let pairs: Vec<(&(String, bool), &Zone)> = hosts
            .iter()
            .flat_map(|h| zones.iter().map(move |z| (h, z)))
            .collect();
        let names: Vec<String> = pairs
            .iter()
            .map(|((host, _), z)| format!("{host}.{}", z.name))
            .collect();
        let questions: Vec<(&str, RecordType)> = pairs
            .iter()
            .zip(&names)
            .map(|((_, z), n)| {
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
        for (((host, is_helo), zone), answer) in pairs.into_iter().zip(answers) {
            let reason = match answer {
                Answer::Records(records) => reason(cx, zone, records),
                Answer::TempFail(t) => {
                    cx.log(
                        Level::Error,
                        format_args!("{host}.{} query failed: {t}", zone.name),
                    );
                    None
                }
                _ => None,
            };
            if let (Some(reason), None) = (reason, &first) {
                cx.log(
                    Level::Info,
                    format_args!("fail, {host} in {}: {reason}", zone.name),
                );
                first = Some(if *is_helo {
                    format!("Mail from HELO {host} rejected because it {reason}")
                } else {
                    format!("Mail from {host} rejected because it {reason}")
                });
            }
        }
        first
    }
}

/// The reason a zone's records give: the TXT text, or the configured words when an A
/// record says "listed".
fn reason(cx: &Context<'_>, zone: &Zone, records: Vec<Rdata>) -> Option<String> {
    match &zone.message {
        None => records.into_iter().find_map(|r| match r {
            Rdata::Txt(t) => Some(t.printable(MAX_TEXT)).filter(|t| !t.is_empty()),
            _ => None,
        }),
        Some(message) => {
            let addrs: Vec<_> = records
                .into_iter()
                .filter_map(|r| if let Rdata::A(a) = r { Some(a) } else { None })
                .collect();
            if addrs.iter().any(|a| is_listing(*a)) {
                let text = Txt(vec![message.as_bytes().to_vec()]).printable(MAX_TEXT);
                return Some(if text.is_empty() {
                    format!("is listed in {}", zone.name)
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
    }
}

/// The zones, in file order; a line that is not a zone is skipped (logged).
fn zones(cx: &Context<'_>) -> Result<Vec<Zone>, Outcome> {
    let lines = cx.config("rhsbl_zones").map_err(Outcome::from)?;
    Ok(lines
        .iter()
        .filter_map(|line| match zone(line) {
            Ok(z) => Some(z),
            Err(e) => {
                cx.log(Level::Error, format_args!("rhsbl_zones: {e}"));
                None
            }
        })
        .collect())
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
