//! rcpt_ok: accepts recipients in our domains (`me`, `rcpthosts`, `morercpthosts.cdb`)
//! and, for relay clients, anywhere. See README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginSpec, Verdict};

/// The plugin instance.
pub struct RcptOk;

/// `rcpt_ok` takes no arguments.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, String> {
    if !spec.args.is_empty() {
        return Err(format!("takes no arguments, got {}", spec.args.join(" ")));
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
        let allowed = allowed.to_lowercase();
        if allowed.is_empty() {
            continue;
        }
        if host == allowed || (allowed.starts_with('.') && host.ends_with(&allowed)) {
            cx.log(
                Level::Info,
                format_args!("pass, {host} in rcpthosts as {allowed}"),
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
