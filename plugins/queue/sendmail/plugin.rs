//! queue/sendmail: hands the message to any MTA's sendmail-compatible command.
//! See README.md beside this file.

use std::time::Duration;

use crate::config::Config;
use crate::handoff::sendmail::Sendmail;
use crate::handoff::{self, DEFAULT_TIMEOUT};
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, key_values};

/// The plugin instance.
pub struct SendmailQueue {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

/// `queue/sendmail [PATH] [timeout SECONDS] [arg ARG]...` (default `/usr/sbin/sendmail`).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut args = spec.args.as_slice();
    let mut program = "/usr/sbin/sendmail".to_string();
    if let Some(first) = args.first()
        && first.starts_with('/')
    {
        program = first.clone();
        args = &args[1..];
    }
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT);
    let mut extra = Vec::new();
    for (k, v) in key_values(args)? {
        match k.as_str() {
            "timeout" => timeout = handoff::parse_timeout(&v)?,
            "arg" => extra.push(v),
            _ => {
                return Err(PluginError::Args(format!(
                    "unknown argument {k:?} (queue/sendmail [PATH] [timeout N] [arg ARG]...)"
                )));
            }
        }
    }
    Ok(Box::new(SendmailQueue {
        program,
        args: extra,
        timeout,
    }))
}

impl Plugin for SendmailQueue {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        cx.log(Level::Info, format_args!("queuing to {}", self.program));
        Sendmail {
            program: &self.program,
            extra_args: &self.args,
            timeout: self.timeout,
        }
        .deliver(cx)
    }
}
