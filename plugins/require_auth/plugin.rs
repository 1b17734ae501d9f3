//! require_auth: refuses MAIL from a client that has not authenticated, for message
//! submission (RFC 6409 §4.3: an MSA must require authentication by default). See
//! README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};
use crate::reply::Reply;

/// The plugin instance.
pub struct RequireAuth;

/// `require_auth` takes no arguments.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            spec.args.join(" ")
        )));
    }
    Ok(Box::new(RequireAuth))
}

impl Plugin for RequireAuth {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Mail]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        if cx.conn.auth.is_some() {
            return Outcome::declined();
        }
        // Neither a relay client (relayclients, RELAYCLIENT) nor a loopback address is
        // enough: a proxy on the same host would make every client one.
        cx.log(Level::Info, "fail: MAIL before AUTH");
        cx.respond(Reply::new(530, "5.7.0", "Authentication required"));
        Outcome::new(Verdict::Done)
    }
}
