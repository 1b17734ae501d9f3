//! fcrdns: forward-confirmed reverse DNS of the client (the "iprev" check, RFC 8601 §3),
//! recorded as `iprev=` in the message's Authentication-Results header. See README.md
//! beside this file.

use std::net::IpAddr;
use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::services::dns::{Answer, Ptr, Rdata, RecordType, Settings, lists, reverse_name};
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values};

/// PTR names whose addresses are looked up, at most (RFC 8601 §3 leaves the limit to
/// the verifier; ten bounds the work a hostile reverse zone can cause).
const MAX_NAMES: usize = 10;

/// The plugin instance.
pub struct Fcrdns {
    reject: Reject,
    /// `timeout` / `dns_timeout`: this plugin's own bound on each wait.
    limit: Option<Duration>,
}

/// The iprev result (RFC 8601 §2.7.3).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Iprev {
    /// A name of the address has the address: the name.
    Pass(String),
    /// Names, but none of them has the address.
    Fail,
    /// No PTR record (NXDOMAIN or no data).
    PermError,
    /// A lookup failed temporarily.
    TempError,
}

impl Iprev {
    fn word(&self) -> &'static str {
        match self {
            Iprev::Pass(_) => "pass",
            Iprev::Fail => "fail",
            Iprev::PermError => "permerror",
            Iprev::TempError => "temperror",
        }
    }
}

/// `fcrdns [reject 0|1|naughty] [reject_type TYPE] [timeout SECONDS]`
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    // qpsmtpd's fcrdns only records the result unless `reject` says otherwise, and then
    // defers.
    let args = lists::check_args(key_values(&spec.args)?, "temp", false)?;
    Settings::check(config)?;
    Ok(Box::new(Fcrdns {
        reject: args.reject,
        limit: args.limit,
    }))
}

impl Plugin for Fcrdns {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Connect]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        let Some(ip) = lists::client_ip(cx.conn) else {
            cx.log(Level::Info, "skip, no client address");
            return Outcome::declined();
        };
        let result = self.iprev(cx, ip);
        let mut entry = format!("iprev={} policy.iprev={ip}", result.word());
        if let Iprev::Pass(name) = &result
            && is_host_name(name)
        {
            entry.push_str(&format!(" ({name})"));
        }
        let notes = &mut cx.conn.notes;
        let joined = match notes.get("authentication_results") {
            Some(prev) if !prev.is_empty() => format!("{prev}; {entry}"),
            _ => entry,
        };
        notes.insert("authentication_results".into(), joined);
        match result {
            Iprev::Pass(name) => {
                cx.log(Level::Info, format_args!("pass, {ip} is {name}"));
                Outcome::declined()
            }
            Iprev::TempError => {
                cx.log(Level::Info, "skip, DNS failed temporarily (iprev=temperror)");
                Outcome::declined()
            }
            other => {
                let text = format!(
                    "No forward-confirmed reverse DNS for {ip} (iprev={})",
                    other.word()
                );
                self.reject.outcome(cx, &text)
            }
        }
    }
}

impl Fcrdns {
    /// The PTR names of the address, then the A and AAAA records of each (all asked
    /// together): pass when one of them is the address itself.
    fn iprev(&self, cx: &Context<'_>, ip: IpAddr) -> Iprev {
        let names: Vec<Ptr> = match cx
            .dns()
            .ask(&[(&reverse_name(ip, None), RecordType::Ptr)], self.limit)
            .pop()
            .map(Answer::typed::<Ptr>)
        {
            Some(Answer::Records(names)) => names,
            Some(Answer::NxDomain | Answer::NoData) => return Iprev::PermError,
            Some(Answer::TempFail(t)) => {
                cx.log(Level::Info, format_args!("PTR lookup failed: {t}"));
                return Iprev::TempError;
            }
            None => return Iprev::TempError,
        };
        let names: Vec<&str> = names.iter().take(MAX_NAMES).map(|p| p.0.as_str()).collect();
        let questions: Vec<(&str, RecordType)> = names
            .iter()
            .flat_map(|n| [(*n, RecordType::A), (*n, RecordType::Aaaa)])
            .collect();
        let answers = cx.dns().ask(&questions, self.limit);
        let mut temporary = false;
        for (pair, name) in answers.chunks(2).zip(&names) {
            for answer in pair {
                temporary |= answer.is_temporary();
                let found = answer.records().iter().any(|r| match r {
                    Rdata::A(a) => IpAddr::V4(*a) == ip,
                    Rdata::Aaaa(a) => IpAddr::V6(*a) == ip,
                    _ => false,
                });
                if found {
                    return Iprev::Pass(name.to_string());
                }
            }
        }
        if temporary { Iprev::TempError } else { Iprev::Fail }
    }
}

/// Letters, digits, hyphens and dots only: safe inside a header comment.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
