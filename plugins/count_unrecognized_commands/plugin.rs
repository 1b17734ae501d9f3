//! count_unrecognized_commands: closes the connection after N unknown commands.
//! See README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct CountUnrecognized {
    max: u64,
}

/// `count_unrecognized_commands [N]` (default 4).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let max = match spec.args.as_slice() {
        [] => 4,
        [n] => n
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("the limit must be a positive number, not {n:?}"))?,
        more => {
            return Err(PluginError::Args(format!(
                "takes one argument (the limit), got {}",
                more.join(" ")
            )));
        }
    };
    Ok(Box::new(CountUnrecognized { max }))
}

impl Plugin for CountUnrecognized {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::UnrecognizedCommand]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let cmd = match args {
            Args::Unrecognized { cmd, .. } => cmd,
            _ => "",
        };
        let count = cx
            .conn
            .notes
            .get("unrec_cmd_count")
            .and_then(|c| c.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        cx.conn.notes.insert("unrec_cmd_count".into(), count.to_string());
        if count < self.max {
            cx.log(Level::Info, format_args!("'{cmd}', ({count})"));
            return Outcome::declined();
        }
        cx.log(Level::Info, format_args!("fail, '{cmd}' ({count})"));
        Outcome::with(
            Verdict::DenyDisconnect,
            format!("Closing connection, {count} unrecognized commands. Perhaps you should read RFC 2821?"),
        )
    }
}
