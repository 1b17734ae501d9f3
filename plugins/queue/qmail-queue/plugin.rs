//! queue/qmail-queue: hands the message to qmail-queue (or any program with its
//! interface: notqmail, s/qmail, simscan-style wrappers). See README.md beside this file.

use std::io::Cursor;
use std::process::Command;
use std::time::{Duration, Instant, UNIX_EPOCH};

use crate::child::{Exit, Fd, Spawn};
use crate::config::Config;
use crate::handoff::{self, DEFAULT_TIMEOUT, HandoffFailure, OUTPUT_LIMIT, clean_text};
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, key_values};

/// The plugin instance.
pub struct QmailQueue {
    program: String,
    timeout: Duration,
}

/// `queue/qmail-queue [PATH] [timeout SECONDS]`; `$QMAILQUEUE` wins over PATH, as in
/// qpsmtpd and qmail-smtpd; the default is `$QMAIL/bin/qmail-queue`.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut args = spec.args.as_slice();
    let mut program = None;
    if let Some(first) = args.first()
        && first != "timeout"
    {
        if !first.starts_with('/') {
            return Err(PluginError::Args(format!(
                "the qmail-queue program must be an absolute path, not {first:?}"
            )));
        }
        program = Some(first.clone());
        args = &args[1..];
    }
    let mut timeout = Duration::from_secs(DEFAULT_TIMEOUT);
    for (k, v) in key_values(args)? {
        match k.as_str() {
            "timeout" => timeout = handoff::parse_timeout(&v)?,
            _ => {
                return Err(PluginError::Args(format!(
                    "unknown argument {k:?} (queue/qmail-queue [PATH] [timeout N])"
                )));
            }
        }
    }
    let default = || {
        let qmail = std::env::var("QMAIL").ok().filter(|q| !q.is_empty());
        format!("{}/bin/qmail-queue", qmail.as_deref().unwrap_or("/var/qmail"))
    };
    let program = std::env::var("QMAILQUEUE")
        .ok()
        .filter(|q| !q.is_empty())
        .or(program)
        .unwrap_or_else(default);
    Ok(Box::new(QmailQueue { program, timeout }))
}

impl Plugin for QmailQueue {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        cx.log(Level::Info, format_args!("queuing to {}", self.program));
        match self.queue(cx) {
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
}

impl QmailQueue {
    fn queue(&self, cx: &mut Context<'_>) -> Result<Outcome, HandoffFailure> {
        let envelope = envelope(cx);
        let msg_id = handoff::message_id(cx.txn);
        let stdin = handoff::message_reader(cx.txn)
            .map_err(|e| HandoffFailure::Broken(format!("reading the spooled message: {e}")))?;
        // qmail-queue(8): the message on fd 0, the envelope on fd 1; the custom-error patch
        // writes its reply to fd 6.
        let done = Spawn::new(Command::new(&self.program))
            .fd(0, Fd::Feed(stdin))
            .fd(1, Fd::Feed(Box::new(Cursor::new(envelope))))
            .fd(2, Fd::Read(OUTPUT_LIMIT))
            .fd(6, Fd::Read(OUTPUT_LIMIT))
            .run(Instant::now() + self.timeout)
            .map_err(|e| HandoffFailure::of_run("qmail-queue", e, self.timeout))?;
        if !done.output(2).is_empty() {
            let text = clean_text(&String::from_utf8_lossy(done.output(2)));
            cx.log(Level::Warn, format_args!("qmail-queue said: {text}"));
        }
        match done.exit {
            Exit::Code(0) if done.input_complete => {
                let secs = cx.now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                let id = if msg_id.starts_with('<') && msg_id.ends_with('>') {
                    msg_id
                } else {
                    format!("<{msg_id}>")
                };
                Ok(Outcome::ok_with(format!("Queued! {secs} qp {} {id}", done.pid)))
            }
            Exit::Code(0) => Err(HandoffFailure::Broken(
                "qmail-queue exited before reading the whole message".into(),
            )),
            Exit::Code(code) => Err(exit_failure(code, done.output(6))),
            Exit::Signal(sig) => Err(HandoffFailure::Broken(format!(
                "qmail-queue killed by signal {sig}"
            ))),
        }
    }
}

/// `F<sender>\0T<rcpt>\0...\0` and the closing `\0` (qmail-queue(8)). Addresses are
/// written unquoted, as qmail-smtpd writes them; none can hold a NUL (see `Address`).
fn envelope(cx: &Context<'_>) -> Vec<u8> {
    let mut env = Vec::with_capacity(64 * (cx.txn.recipients.len() + 1));
    env.push(b'F');
    env.extend_from_slice(handoff::sender(cx.txn).as_bytes());
    env.push(0);
    for r in &cx.txn.recipients {
        env.push(b'T');
        env.extend_from_slice(r.address().as_bytes());
        env.push(0);
    }
    env.push(0);
    env
}

/// qmail-queue(8) exit codes: 11–40 permanent, the rest temporary, with qmail-smtpd's
/// texts. 82 is the custom-error patch (simscan and friends): the program wrote `D`
/// (permanent) or `Z` (temporary) and the reply text to fd 6.
fn exit_failure(code: i32, custom: &[u8]) -> HandoffFailure {
    if code == 82 && custom.len() > 1 {
        let text = clean_text(&String::from_utf8_lossy(&custom[1..]));
        match custom[0] {
            b'D' => return HandoffFailure::Permanent(text),
            b'Z' => return HandoffFailure::Temporary(text),
            _ => {}
        }
    }
    let text = match code {
        11 => "envelope address too long for qq (#5.1.3)",
        31 => "mail server permanently rejected message (#5.3.0)",
        12..=40 => "qq permanent problem (#5.3.0)",
        51 => "qq out of memory (#4.3.0)",
        52 => "qq timeout (#4.3.0)",
        53 => "qq write error or disk full (#4.3.0)",
        54 => "qq read error (#4.3.0)",
        55 => "qq unable to read configuration (#4.3.0)",
        56 => "qq trouble making network connection (#4.3.0)",
        61 => "qq trouble in home directory (#4.3.0)",
        62..=66 => "qq trouble creating files in queue (#4.3.0)",
        71 => "mail server temporarily rejected message (#4.3.0)",
        72 => "connection to mail server timed out (#4.4.1)",
        73 => "connection to mail server rejected (#4.4.1)",
        74 => "connection to mail server succeeded, but communication failed (#4.4.2)",
        81 => "qq internal bug (#4.3.0)",
        91 => "qq envelope format error (#4.3.0)",
        _ => "qq temporary problem (#4.3.0)",
    };
    let text = format!("{text} ({code})");
    if (11..=40).contains(&code) {
        HandoffFailure::Permanent(text)
    } else {
        HandoffFailure::Temporary(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_qmail_queue_8() {
        assert!(matches!(exit_failure(31, b""), HandoffFailure::Permanent(_)));
        assert!(matches!(exit_failure(11, b""), HandoffFailure::Permanent(_)));
        assert!(matches!(exit_failure(53, b""), HandoffFailure::Temporary(_)));
        assert!(matches!(exit_failure(41, b""), HandoffFailure::Temporary(_)));
        assert!(matches!(exit_failure(1, b""), HandoffFailure::Temporary(_)));
        assert_eq!(
            exit_failure(82, b"Dvirus found (#5.3.4)"),
            HandoffFailure::Permanent("virus found (#5.3.4)".into())
        );
        assert_eq!(
            exit_failure(82, b"Zlater"),
            HandoffFailure::Temporary("later".into())
        );
        assert!(matches!(exit_failure(82, b""), HandoffFailure::Temporary(_)));
    }

    /// Every status qmail-queue(8) names gets qmail-smtpd's text, and its class.
    #[test]
    fn each_exit_code_has_its_text() {
        let permanent = |t: &str| HandoffFailure::Permanent(t.to_string());
        let temporary = |t: &str| HandoffFailure::Temporary(t.to_string());
        let cases = [
            (11, permanent("envelope address too long for qq (#5.1.3) (11)")),
            (
                31,
                permanent("mail server permanently rejected message (#5.3.0) (31)"),
            ),
            (12, permanent("qq permanent problem (#5.3.0) (12)")),
            (40, permanent("qq permanent problem (#5.3.0) (40)")),
            (51, temporary("qq out of memory (#4.3.0) (51)")),
            (52, temporary("qq timeout (#4.3.0) (52)")),
            (53, temporary("qq write error or disk full (#4.3.0) (53)")),
            (54, temporary("qq read error (#4.3.0) (54)")),
            (55, temporary("qq unable to read configuration (#4.3.0) (55)")),
            (
                56,
                temporary("qq trouble making network connection (#4.3.0) (56)"),
            ),
            (61, temporary("qq trouble in home directory (#4.3.0) (61)")),
            (62, temporary("qq trouble creating files in queue (#4.3.0) (62)")),
            (66, temporary("qq trouble creating files in queue (#4.3.0) (66)")),
            (
                71,
                temporary("mail server temporarily rejected message (#4.3.0) (71)"),
            ),
            (72, temporary("connection to mail server timed out (#4.4.1) (72)")),
            (73, temporary("connection to mail server rejected (#4.4.1) (73)")),
            (
                74,
                temporary("connection to mail server succeeded, but communication failed (#4.4.2) (74)"),
            ),
            (81, temporary("qq internal bug (#4.3.0) (81)")),
            (91, temporary("qq envelope format error (#4.3.0) (91)")),
            (41, temporary("qq temporary problem (#4.3.0) (41)")),
            (67, temporary("qq temporary problem (#4.3.0) (67)")),
            (82, temporary("qq temporary problem (#4.3.0) (82)")),
        ];
        for (code, want) in cases {
            assert_eq!(exit_failure(code, b""), want, "{code}");
        }
        // The custom-error form needs a known first byte and a text.
        assert_eq!(
            exit_failure(82, b"Xodd"),
            temporary("qq temporary problem (#4.3.0) (82)")
        );
        assert_eq!(
            exit_failure(82, b"D"),
            temporary("qq temporary problem (#4.3.0) (82)")
        );
    }
}
