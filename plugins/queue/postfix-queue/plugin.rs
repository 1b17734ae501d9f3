//! queue/postfix-queue: hands the message to a local Postfix through its `sendmail`
//! command (postdrop and the maildrop queue). See README.md beside this file for why
//! not the cleanup socket that qpsmtpd used.

use std::time::Duration;

use crate::config::Config;
use crate::handoff::sendmail::Sendmail;
use crate::handoff::{self, DEFAULT_TIMEOUT};
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec};

/// The plugin instance.
pub struct PostfixQueue {
    program: String,
    args: Vec<String>,
    timeout: Duration,
}

/// `queue/postfix-queue [FLAG_MASK_EXTERNAL] [sendmail PATH] [config_directory DIR]
/// [timeout SECONDS]`.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut program = "/usr/sbin/sendmail".to_string();
    let mut args = Vec::new();
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT);
    let mut rest = spec.args.iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            // What Postfix's pickup applies to locally submitted mail anyway.
            "FLAG_MASK_EXTERNAL" => {}
            w if w.starts_with('/') || w.contains(':') || w.starts_with("FLAG_") => {
                return Err(PluginError::Args(format!(
                    "{w}: cleanup sockets and cleanup flags are not supported; postfix-queue \
                     submits through Postfix's sendmail command (see its README)"
                )));
            }
            key => {
                let Some(value) = rest.next() else {
                    return Err(PluginError::Args(format!("{key} needs a value")));
                };
                match key {
                    "sendmail" => program = value.clone(),
                    "config_directory" => args = vec!["-C".to_string(), value.clone()],
                    "timeout" => timeout = handoff::parse_timeout(value)?,
                    _ => {
                        return Err(PluginError::Args(format!(
                            "unknown argument {key:?} (queue/postfix-queue [sendmail PATH] \
                             [config_directory DIR] [timeout N])"
                        )));
                    }
                }
            }
        }
    }
    Ok(Box::new(PostfixQueue {
        program,
        args,
        timeout,
    }))
}

impl Plugin for PostfixQueue {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        cx.log(
            Level::Info,
            format_args!("queuing to Postfix via {}", self.program),
        );
        Sendmail {
            program: &self.program,
            extra_args: &self.args,
            timeout: self.timeout,
        }
        .deliver(cx)
    }
}
