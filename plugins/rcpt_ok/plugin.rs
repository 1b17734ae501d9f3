//! rcpt_ok: accepts recipients in our domains (`me`, `rcpthosts`, `morercpthosts.cdb`)
//! and, for relay clients, anywhere. See README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct RcptOk;

/// `rcpt_ok` takes no arguments.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            spec.args.join(" ")
        )));
    }
    Ok(Box::new(RcptOk))
}

impl Plugin for RcptOk {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Rcpt]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Address { addr, .. } = args else {
            return Outcome::declined();
        };
        if cx.is_immune() {
            cx.log(Level::Info, "pass, relay client or whitelisted");
            return Outcome::ok();
        }
        let host = match addr.host() {
            Some(h) => h.to_lowercase(),
            None if matches!(addr.user().to_ascii_lowercase().as_str(), "postmaster" | "abuse") => {
                cx.me().to_lowercase()
            }
            None => return Outcome::ok(),
        };
        match is_local(cx, &host) {
            Ok(true) => Outcome::ok(),
            Ok(false) => {
                cx.log(Level::Info, format_args!("fail, {host} not in rcpthosts"));
                Outcome::with(Verdict::Deny, "Relaying denied (#5.7.1)")
            }
            Err(out) => out,
        }
    }
}

/// `me` and each `rcpthosts` line match exactly (case-insensitively); a line starting
/// with `.` matches any subdomain; `morercpthosts.cdb` keys match exactly.
fn is_local(cx: &Context<'_>, host: &str) -> Result<bool, Outcome> {
    let hosts = cx.config("rcpthosts")?;
    for allowed in std::iter::once(cx.me()).chain(hosts.iter()) {
        if !allowed.is_empty() && matches(host, allowed) {
            cx.log(
                Level::Info,
                format_args!("pass, {host} in rcpthosts as {}", allowed.to_lowercase()),
            );
            return Ok(true);
        }
    }
    let Some(cdb) = cx.config_cdb("morercpthosts")? else {
        return Ok(false);
    };
    match cdb.contains(host.as_bytes()) {
        Ok(true) => {
            cx.log(Level::Info, format_args!("pass, {host} in morercpthosts"));
            Ok(true)
        }
        Ok(false) => Ok(false),
        Err(e) => Err(cx.cdb_failed("morercpthosts", e)),
    }
}

/// Does a lower-cased host match an `rcpthosts` line? Without a copy per line for the
/// ASCII lines a long list is made of: each recipient scans the whole list.
fn matches(host: &str, allowed: &str) -> bool {
    if !allowed.is_ascii() {
        let allowed = allowed.to_lowercase();
        return host == allowed || (allowed.starts_with('.') && host.ends_with(&allowed));
    }
    let tail = host
        .len()
        .checked_sub(allowed.len())
        .and_then(|at| host.get(at..));
    host.eq_ignore_ascii_case(allowed)
        || (allowed.starts_with('.') && tail.is_some_and(|t| t.eq_ignore_ascii_case(allowed)))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn rcpthosts_lines() {
        assert!(matches("example.org", "Example.ORG"));
        assert!(matches("mx.example.org", ".EXAMPLE.org"));
        assert!(!matches("example.org", ".example.org"));
        assert!(!matches("badexample.org", ".example.org"));
        assert!(!matches("example.org", "ample.org"));
        assert!(matches("bücher.example", "BÜCHER.example"));
        assert!(matches("a.bücher.example", ".bücher.example"));
        assert!(!matches("bü.example", ".example.orgx"));
        assert!(!matches("é", ".xx"));
    }
}
