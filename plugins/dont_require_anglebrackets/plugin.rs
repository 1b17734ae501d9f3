//! dont_require_anglebrackets: accepts `MAIL FROM:user@host` and `RCPT TO:user@host`
//! without the `<>` RFC 5321 requires. See README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec};

/// The plugin instance.
pub struct DontRequireAngleBrackets;

/// Takes no arguments.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            spec.args.join(" ")
        )));
    }
    Ok(Box::new(DontRequireAngleBrackets))
}

impl Plugin for DontRequireAngleBrackets {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::MailPre, Hook::RcptPre]
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::PreAddress { addr, .. } = args else {
            return Outcome::declined();
        };
        if addr.starts_with('<') && addr.ends_with('>') {
            return Outcome::ok_with(addr);
        }
        let which = if hook == Hook::MailPre { "MAIL" } else { "RCPT" };
        cx.log(Level::Info, format_args!("fail, added {which} angle brackets"));
        Outcome::ok_with(format!("<{addr}>"))
    }
}
