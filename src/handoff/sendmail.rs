//! The `sendmail` command interface that Postfix, Exim, Sendmail, OpenSMTPD and others
//! share: `sendmail -i -f SENDER -- RCPT...` with the message on standard input, and a
//! sysexits(3) status. Used by queue/sendmail and queue/postfix-queue.

use std::process::Command;
use std::time::{Duration, Instant};

use super::{HandoffFailure, OUTPUT_LIMIT, clean_text};
use crate::address::Address;
use crate::child::{Exit, Fd, Spawn};
use crate::log::Level;
use crate::plugin::{Context, Outcome};

/// sysexits(3) codes that say the message or an address is bad for good: `EX_DATAERR`
/// (65), `EX_NOUSER` (67), `EX_NOHOST` (68). Every other non-zero status, `EX_TEMPFAIL`
/// (75) and configuration or permission trouble (`EX_CONFIG`, `EX_NOPERM`) included, is
/// temporary: it is ours to fix, and the client must keep the message meanwhile.
pub const PERMANENT_EXITS: [i32; 3] = [65, 67, 68];

/// One sendmail-style hand-off.
pub struct Sendmail<'a> {
    /// The program.
    pub program: &'a str,
    /// Arguments before ours (`-C DIR` for a Postfix instance).
    pub extra_args: &'a [String],
    /// How long the whole run may take.
    pub timeout: Duration,
}

impl Sendmail<'_> {
    /// Runs the program with the transaction's envelope and message.
    pub fn deliver(&self, cx: &mut Context<'_>) -> Outcome {
        match self.try_deliver(cx) {
            Ok(out) => out,
            Err(f) => {
                cx.log(
                    Level::Error,
                    format_args!("{} failed: {}", self.program, f.text()),
                );
                f.outcome()
            }
        }
    }

    fn try_deliver(&self, cx: &mut Context<'_>) -> Result<Outcome, HandoffFailure> {
        let mut cmd = Command::new(self.program);
        cmd.args(self.extra_args);
        // -i: a line with a single dot is message text, not the end (RFC 5321 is not in
        // play on a pipe). -f: the envelope sender, `<>` for the null sender. `--`: no
        // recipient can be taken for an option.
        // Each address in canonical form (a quoted local part when it is not a dot-string):
        // Postfix's and Exim's sendmail read every argument as an RFC 822 address list, so
        // `"a,b"@example.org` stays one recipient where `a,b@example.org` would be two.
        let sender = cx.txn.sender.as_ref().map(Address::mailbox).unwrap_or_default();
        cmd.arg("-i").arg("-f").arg(if sender.is_empty() {
            "<>".to_string()
        } else {
            sender
        });
        cmd.arg("--");
        cmd.args(cx.txn.recipients.iter().map(Address::mailbox));
        let msg_id = super::message_id(cx.txn);
        let stdin = super::message_reader(cx.txn)
            .map_err(|e| HandoffFailure::Broken(format!("reading the spooled message: {e}")))?;
        let done = Spawn::new(cmd)
            .fd(0, Fd::Feed(stdin))
            .fd(1, Fd::Read(OUTPUT_LIMIT))
            .fd(2, Fd::Read(OUTPUT_LIMIT))
            .run(Instant::now() + self.timeout)
            .map_err(|e| HandoffFailure::of_run("sendmail", e, self.timeout))?;
        let said = clean_text(&String::from_utf8_lossy(
            &[done.output(1), done.output(2)].concat(),
        ));
        if !said.is_empty() {
            cx.log(Level::Warn, format_args!("{} said: {said}", self.program));
        }
        match done.exit {
            Exit::Code(0) if done.input_complete => Ok(Outcome::ok_with(
                format!("Queued! {msg_id}").trim_end().to_string(),
            )),
            Exit::Code(0) => Err(HandoffFailure::Broken(
                "exited before reading the whole message".into(),
            )),
            Exit::Code(code) if PERMANENT_EXITS.contains(&code) => Err(HandoffFailure::Permanent(format!(
                "5.3.0 Message refused by the mail system (exit {code})"
            ))),
            Exit::Code(code) => Err(HandoffFailure::Temporary(format!(
                "4.3.0 Mail system unavailable (exit {code}); try again later"
            ))),
            Exit::Signal(sig) => Err(HandoffFailure::Broken(format!("killed by signal {sig}"))),
        }
    }
}
