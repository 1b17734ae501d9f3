//! badrcptto (also loaded as `check_badrcptto`): refuses recipients listed in the
//! `badrcptto` config file. See README.md beside this file.

use crate::addrlist;
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct BadRcptTo;

/// `badrcptto` takes no arguments (besides `loglevel`, which every plugin takes).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    match spec.args.as_slice() {
        [] => Ok(Box::new(BadRcptTo)),
        other => Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            other.join(" ")
        ))),
    }
}

impl Plugin for BadRcptTo {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Rcpt]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Address { addr, .. } = args else {
            return Outcome::declined();
        };
        if cx.is_immune() {
            return Outcome::declined();
        }
        let list = match cx.config("badrcptto") {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        let (hit, skipped) = addrlist::find(list.iter(), addr, true);
        for s in skipped {
            cx.log(
                Level::Warn,
                format_args!("badrcptto: skipping {:?}: {}", s.entry, s.why),
            );
        }
        let Some(hit) = hit else {
            return Outcome::declined();
        };
        cx.log(Level::Info, format_args!("fail, {} matches {}", addr, hit.entry));
        let msg = match hit.reason {
            Some(reason) => reason,
            None => format!("mail to {} not accepted here (#5.1.1)", hit.entry),
        };
        Outcome::with(Verdict::Deny, msg)
    }
}
