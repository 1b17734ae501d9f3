//! queue/exim-bsmtp: hands the message to Exim as batched SMTP (`exim -bS`).
//! See README.md beside this file.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::address::Address;
use crate::child::{Exit, Fd, Spawn};
use crate::config::Config;
use crate::handoff::dot::DotStuffer;
use crate::handoff::{self, DEFAULT_TIMEOUT, HandoffFailure, OUTPUT_LIMIT, clean_text};
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, key_values};

/// The plugin instance.
pub struct EximBsmtp {
    exim: String,
    timeout: Duration,
}

/// `queue/exim-bsmtp [exim_path PATH] [timeout SECONDS]` (default `/usr/sbin/rsmtp`).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut exim = "/usr/sbin/rsmtp".to_string();
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT);
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "exim_path" => exim = v,
            "timeout" => timeout = handoff::parse_timeout(&v)?,
            _ => {
                return Err(PluginError::Args(format!(
                    "unknown argument {k:?} (queue/exim-bsmtp [exim_path PATH] [timeout N])"
                )));
            }
        }
    }
    Ok(Box::new(EximBsmtp { exim, timeout }))
}

impl Plugin for EximBsmtp {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        match self.enqueue(cx) {
            Ok(()) => {
                cx.log(Level::Info, format_args!("enqueued to exim via BSMTP"));
                Outcome::ok_with("Queued!")
            }
            Err(f) => {
                cx.log(Level::Error, format_args!("BSMTP enqueue failed: {}", f.text()));
                f.outcome()
            }
        }
    }
}

impl EximBsmtp {
    fn enqueue(&self, cx: &mut Context<'_>) -> Result<(), HandoffFailure> {
        // An unnamed file: removed by the kernel however this ends.
        let mut batch = tempfile::tempfile_in(handoff::spool_dir(cx))
            .map_err(|e| HandoffFailure::Broken(format!("cannot create the batch file: {e}")))?;
        write_batch(cx, &batch)
            .map_err(|e| HandoffFailure::Broken(format!("writing the batch file: {e}")))?;
        batch
            .seek(SeekFrom::Start(0))
            .map_err(|e| HandoffFailure::Broken(format!("rewinding the batch file: {e}")))?;
        let mut cmd = Command::new(&self.exim);
        cmd.arg("-bS");
        let done = Spawn::new(cmd)
            .fd(0, Fd::Feed(Box::new(batch)))
            .fd(1, Fd::Read(OUTPUT_LIMIT))
            .fd(2, Fd::Read(OUTPUT_LIMIT))
            .run(Instant::now() + self.timeout)
            .map_err(|e| HandoffFailure::of_run(&self.exim, e, self.timeout))?;
        // Exim is silent in BSMTP mode unless something went wrong; then it writes SMTP
        // error replies and exits non-zero (spec, "Batched SMTP input").
        let output = String::from_utf8_lossy(&[done.output(1), done.output(2)].concat()).into_owned();
        let mut code_reply = None;
        for line in output.lines() {
            cx.log(Level::Error, format_args!("exim: {}", clean_text(line)));
            if let Some((code, text)) = smtp_error(line) {
                code_reply = Some((code, text));
            }
        }
        match (done.exit, code_reply) {
            (Exit::Code(0), None) if done.input_complete => Ok(()),
            (_, Some((code, text))) if code >= 500 => Err(HandoffFailure::Permanent(text)),
            // A temporary error is about our side (spool, configuration): it is in the
            // log above; the client hears a plain text.
            (_, Some(_)) => Err(HandoffFailure::Temporary(TEMPORARY_TEXT.into())),
            (Exit::Code(0), None) => Err(HandoffFailure::Broken(
                "exim exited before reading the whole batch".into(),
            )),
            (Exit::Code(code), None) => Err(HandoffFailure::Broken(format!("exim -bS exited with {code}"))),
            (Exit::Signal(sig), None) => Err(HandoffFailure::Broken(format!("exim killed by signal {sig}"))),
        }
    }
}

/// Our client's text for a temporary error reply from Exim.
const TEMPORARY_TEXT: &str = "4.3.0 Mail system unavailable; try again later";

/// The batch: envelope commands, the dot-stuffed message with LF line ends, QUIT.
fn write_batch(cx: &mut Context<'_>, file: &File) -> io::Result<()> {
    let mut out = BufWriter::new(file);
    writeln!(out, "HELO {}", cx.me())?;
    let sender = cx
        .txn
        .sender
        .as_ref()
        .map_or_else(|| "<>".to_string(), Address::smtp_path);
    writeln!(out, "MAIL FROM:{sender}")?;
    for r in &cx.txn.recipients {
        writeln!(out, "RCPT TO:{}", r.smtp_path())?;
    }
    writeln!(out, "DATA")?;
    let mut stuffer = DotStuffer::new(out, false);
    cx.txn.write_message(&mut stuffer)?;
    let mut out = stuffer.finish()?;
    writeln!(out, "QUIT")?;
    out.flush()
}

/// A `4xx text` or `5xx text` line of Exim's error output.
fn smtp_error(line: &str) -> Option<(u16, String)> {
    let code: u16 = line.get(..3)?.parse().ok()?;
    let rest = line.get(3..)?;
    ((400..600).contains(&code) && (rest.starts_with(' ') || rest.starts_with('-')))
        .then(|| (code, clean_text(rest[1..].trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_lines() {
        assert_eq!(
            smtp_error("550 5.1.1 unknown"),
            Some((550, "5.1.1 unknown".into()))
        );
        assert_eq!(smtp_error("451-later"), Some((451, "later".into())));
        assert_eq!(smtp_error("exim: oops"), None);
        assert_eq!(smtp_error("250 ok"), None);
    }
}
