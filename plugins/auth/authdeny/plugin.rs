//! auth/authdeny: refuses every AUTH attempt (qpsmtpd's demonstration plugin). See
//! README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct AuthDeny;

/// `auth/authdeny` (no arguments).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            spec.args.join(" ")
        )));
    }
    Ok(Box::new(AuthDeny))
}

impl Plugin for AuthDeny {
    /// The generic `auth` hook: its presence offers all three mechanisms, as in qpsmtpd.
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Auth]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Auth { user, .. } = args else {
            return Outcome::declined();
        };
        cx.log(Level::Warn, "fail: cannot authenticate");
        Outcome::with(Verdict::Declined, format!("{user} is not free to abuse my relay"))
    }
}
