//! badmailfrom (also loaded as `check_badmailfrom`): refuses senders listed in the
//! `badmailfrom` config file. See README.md beside this file.

use crate::addrlist;
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values};

/// The plugin instance.
pub struct BadMailFrom {
    reject: Reject,
}

/// `badmailfrom [reject 0|1|naughty] [reject_type perm|temp|disconnect|temp_disconnect]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let kv = key_values(&spec.args)?;
    for (k, _) in &kv {
        if !matches!(k.as_str(), "reject" | "reject_type") {
            return Err(PluginError::Args(format!(
                "unknown argument {k:?} (known: reject, reject_type)"
            )));
        }
    }
    Ok(Box::new(BadMailFrom {
        reject: Reject::from_args(&kv, true)?,
    }))
}

impl Plugin for BadMailFrom {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Mail]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Address { addr, .. } = args else {
            return Outcome::declined();
        };
        if cx.is_immune() {
            return Outcome::declined();
        }
        let list = match cx.config("badmailfrom") {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        let (hit, skipped) = addrlist::find(list.iter(), addr, false);
        for s in skipped {
            cx.log(
                Level::Warn,
                format_args!("badmailfrom: skipping {:?}: {}", s.entry, s.why),
            );
        }
        match hit {
            Some(hit) => {
                let msg = hit
                    .reason
                    .unwrap_or_else(|| "Your envelope sender is in my badmailfrom list".to_string());
                self.reject.outcome(cx, &msg)
            }
            None => {
                cx.log(Level::Info, "pass");
                Outcome::declined()
            }
        }
    }
}
