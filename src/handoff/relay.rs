//! Forwarding at RCPT time, shared by queue/smtp-forward and queue/lmtp.
//!
//! qpsmtpd's smtp-forward opened the next hop only in the `queue` hook, after our client
//! had been told `250` for every recipient; a recipient the next hop refused then failed
//! the whole message with `451`, and the client retried until its queue lifetime ran out
//! (qpsmtpd issue #150). Here the next hop is asked at RCPT time instead:
//!
//! - `rcpt_post` (after our own policy accepted the recipient): connect if needed, send
//!   MAIL once per transaction, then RCPT. The next hop's `5xx` becomes our `550`, its
//!   `4xx` our `450`, a failure to reach it `450`; only a `2xx` lets our `250` go out.
//! - `queue`: DATA and the message on the same session. If the session died while our
//!   client was sending the message (the next hop's idle timeout), or another plugin's
//!   answer made the envelopes differ, the envelope is sent again on a fresh session; a
//!   recipient refused in that second round fails the whole message with a `4xx` (nothing
//!   was delivered, and the client will then hear the refusal at RCPT time).
//! - `reset_transaction`: RSET downstream when a transaction is abandoned;
//!   `disconnect`: QUIT.
//!
//! SMTP gives one reply after the final dot. LMTP gives one per recipient (RFC 2033
//! §4.2); how those are folded into our single reply is in [`super::lmtp::verdict`].

use std::cell::RefCell;
use std::time::Duration;

use super::smtp::{Client, Options, Target, Tls};
use super::{DEFAULT_TIMEOUT, Failure, clean_text};
use crate::address::Address;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Verdict};

/// The settings of one forwarding plugin instance.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to.
    pub target: Target,
    /// Timeouts, LMTP or SMTP, TLS.
    pub options: Options,
    /// Send XCLIENT (Postfix) with the original client's facts.
    pub xclient: bool,
}

/// The open downstream transaction.
struct Session {
    client: Client,
    /// MAIL was accepted in the current transaction.
    mail_sent: bool,
    /// Recipients the next hop accepted in the current transaction, in order.
    accepted: Vec<String>,
}

/// One forwarding plugin's state for this connection.
pub struct Relay {
    settings: Settings,
    session: RefCell<Option<Session>>,
}

impl Relay {
    /// A relay that has not connected yet (no network at start).
    pub fn new(settings: Settings) -> Relay {
        Relay {
            settings,
            session: RefCell::new(None),
        }
    }

    /// The per-hand-off timeout.
    pub fn timeout(&self) -> Duration {
        self.settings.options.timeout
    }

    /// `rcpt_post`: ask the next hop about this recipient.
    pub fn rcpt(&self, cx: &mut Context<'_>, rcpt: &Address) -> Outcome {
        match self.try_rcpt(cx, rcpt) {
            Ok(()) => Outcome::declined(),
            Err(f) => {
                let level = if matches!(f, Failure::Broken(_)) {
                    Level::Error
                } else {
                    Level::Info
                };
                cx.log(
                    level,
                    format_args!("{rcpt} not accepted by the next hop: {}", f.text()),
                );
                match f {
                    Failure::Permanent(m) => Outcome::with(Verdict::Deny, m),
                    Failure::Temporary(m) => Outcome::with(Verdict::DenySoft, m),
                    Failure::Broken(_) => {
                        *self.session.borrow_mut() = None;
                        Outcome::with(
                            Verdict::DenySoft,
                            "4.4.1 Temporary failure reaching the next hop; try again later",
                        )
                    }
                }
            }
        }
    }

    fn try_rcpt(&self, cx: &mut Context<'_>, rcpt: &Address) -> Result<(), Failure> {
        let mut slot = self.session.borrow_mut();
        if slot.is_none() {
            *slot = Some(self.open(cx)?);
        }
        let Some(s) = slot.as_mut() else {
            return Err(Failure::Broken("no session".into()));
        };
        if !s.mail_sent {
            let reply = s.client.command(&mail_command(cx, &s.client))?;
            if let Some(f) = reply.failure() {
                return Err(f);
            }
            s.mail_sent = true;
        }
        let reply = s.client.command(&format!("RCPT TO:<{}>", rcpt.mailbox()))?;
        if let Some(f) = reply.failure() {
            return Err(f);
        }
        s.accepted.push(rcpt.mailbox());
        Ok(())
    }

    /// Connects and greets; XCLIENT if configured.
    fn open(&self, cx: &mut Context<'_>) -> Result<Session, Failure> {
        let s = &self.settings;
        cx.log(Level::Info, format_args!("connecting to {}", s.target));
        let mut opts = s.options.clone();
        if opts.helo.is_empty() {
            opts.helo = cx.me().to_string();
        }
        let mut client = Client::connect(&s.target, &opts)?;
        if s.xclient {
            super::xclient::xclient(cx, &mut client, &opts)?;
        }
        Ok(Session {
            client,
            mail_sent: false,
            accepted: Vec::new(),
        })
    }

    /// `queue`: DATA and the message; the reply (or replies, LMTP) decide.
    pub fn queue(&self, cx: &mut Context<'_>) -> Outcome {
        let result = self.try_queue(cx);
        let mut slot = self.session.borrow_mut();
        if let Some(s) = slot.as_mut() {
            s.mail_sent = false;
            s.accepted.clear();
        }
        match result {
            Ok(out) => out,
            Err(f) => {
                if matches!(f, Failure::Broken(_)) {
                    *slot = None;
                }
                cx.log(Level::Error, format_args!("forwarding failed: {}", f.text()));
                f.outcome()
            }
        }
    }

    fn try_queue(&self, cx: &mut Context<'_>) -> Result<Outcome, Failure> {
        let wanted: Vec<String> = cx.txn.recipients.iter().map(Address::mailbox).collect();
        let mut slot = self.session.borrow_mut();
        let usable = slot.as_ref().is_some_and(|s| s.mail_sent && s.accepted == wanted);
        let mut data = if usable {
            self.data_command(&mut slot)
        } else {
            Err(None)
        };
        if let Err(Some(f)) = data {
            return Err(f);
        }
        if data.is_err() {
            // No usable session: the next hop timed us out during the upload, or the
            // envelopes differ. Start over once.
            cx.log(
                Level::Info,
                format_args!("sending the envelope again on a fresh session"),
            );
            *slot = None;
            drop(slot);
            self.replay(cx, &wanted)?;
            slot = self.session.borrow_mut();
            data = self.data_command(&mut slot);
        }
        if let Err(f) = data {
            return Err(f.unwrap_or_else(|| Failure::Broken("the next hop closed the session".into())));
        }
        let Some(s) = slot.as_mut() else {
            return Err(Failure::Broken("no session".into()));
        };
        let txn = &mut *cx.txn;
        s.client.send_message(&mut |w| txn.write_message(w).map(|_| ()))?;
        if self.settings.options.lmtp {
            let mut replies = Vec::new();
            for rcpt in &s.accepted {
                replies.push((rcpt.clone(), s.client.read_reply()?));
            }
            Ok(super::lmtp::verdict(cx, &replies))
        } else {
            let reply = s.client.read_reply()?;
            if let Some(f) = reply.failure() {
                return Err(f);
            }
            let id = reply
                .lines
                .last()
                .and_then(|l| l.split(' ').next_back())
                .unwrap_or("");
            Ok(Outcome::ok_with(
                format!("Queued! queued as {}", clean_text(id))
                    .trim_end()
                    .to_string(),
            ))
        }
    }

    /// DATA on the current session: `Ok` on 354; `Err(None)` when the session is gone
    /// (worth one retry); `Err(Some(f))` for a real refusal.
    fn data_command(&self, slot: &mut Option<Session>) -> Result<(), Option<Failure>> {
        let Some(s) = slot.as_mut() else { return Err(None) };
        match s.client.command("DATA") {
            Ok(r) if r.code == 354 => Ok(()),
            Ok(r) if r.code == 421 => Err(None),
            Ok(r) => Err(Some(
                r.failure().unwrap_or_else(|| s.client.unexpected("DATA", &r)),
            )),
            Err(_) => Err(None),
        }
    }

    /// A fresh session with exactly our recipients; any refusal now fails the message.
    fn replay(&self, cx: &mut Context<'_>, wanted: &[String]) -> Result<(), Failure> {
        let mut s = self.open(cx)?;
        let reply = s.client.command(&mail_command(cx, &s.client))?;
        if let Some(f) = reply.failure() {
            return Err(second_round(f));
        }
        s.mail_sent = true;
        for rcpt in wanted {
            let reply = s.client.command(&format!("RCPT TO:<{rcpt}>"))?;
            if let Some(f) = reply.failure() {
                return Err(second_round(f));
            }
            s.accepted.push(rcpt.clone());
        }
        *self.session.borrow_mut() = Some(s);
        Ok(())
    }

    /// `reset_transaction`: abandon a downstream transaction (RSET).
    pub fn reset(&self) {
        let mut slot = self.session.borrow_mut();
        let Some(s) = slot.as_mut() else { return };
        if !s.mail_sent {
            return;
        }
        s.mail_sent = false;
        s.accepted.clear();
        if !s.client.command("RSET").is_ok_and(|r| r.code == 250) {
            *slot = None;
        }
    }

    /// `disconnect`: QUIT.
    pub fn close(&self) {
        if let Some(s) = self.session.borrow_mut().take() {
            s.client.quit();
        }
    }
}

/// After our client was told `250` for every recipient, a refusal can only fail the whole
/// message, temporarily: nothing was delivered, and the retry gets the refusal at RCPT time.
fn second_round(f: Failure) -> Failure {
    Failure::Temporary(format!(
        "4.4.0 The next hop changed its answer ({}); try again later",
        f.text()
    ))
}

/// `MAIL FROM:<sender>` with the parameters the next hop understands.
fn mail_command(cx: &Context<'_>, client: &Client) -> String {
    let sender = cx.txn.sender.as_ref().map(Address::mailbox).unwrap_or_default();
    let mut line = format!("MAIL FROM:<{sender}>");
    if let Some(Some(body)) = cx.txn.mail_param("body")
        && client.offers("8BITMIME")
    {
        line.push_str(&format!(" BODY={}", body.to_ascii_uppercase()));
    }
    if cx.txn.smtputf8 && client.offers("SMTPUTF8") {
        line.push_str(" SMTPUTF8");
    }
    line
}

/// The flags and keys shared with queue/lmtp.
pub fn parse_options(args: &[String], target: Target, lmtp: bool, host: &str) -> Result<Settings, String> {
    let mut xclient = false;
    let mut tls_mode = "off".to_string();
    let mut ca = None;
    let mut name = None;
    let mut timeout = std::time::Duration::from_secs(DEFAULT_TIMEOUT);
    let mut it = args.iter();
    while let Some(word) = it.next() {
        if word.eq_ignore_ascii_case("xclient") {
            xclient = true;
            continue;
        }
        let Some(value) = it.next() else {
            return Err(format!("{word} needs a value"));
        };
        match word.as_str() {
            "tls" => tls_mode = value.clone(),
            "tls_ca" => ca = Some(std::path::PathBuf::from(value)),
            "tls_name" => name = Some(value.clone()),
            "timeout" => timeout = super::parse_timeout(value)?,
            _ => return Err(format!("unknown argument {word:?}")),
        }
    }
    let tls = match tls_mode.as_str() {
        "off" | "none" => Tls::Off,
        "may" => Tls::May,
        "verify" | "require" => Tls::Verify {
            ca_file: ca.unwrap_or_else(|| super::tls::SYSTEM_ROOTS.into()),
            name: name.unwrap_or_else(|| host.to_string()),
        },
        other => return Err(format!("tls must be off, may or verify, not {other:?}")),
    };
    if tls != Tls::Off && matches!(target, Target::Unix(_)) {
        return Err("STARTTLS over a Unix socket makes no sense; use tls off".into());
    }
    Ok(Settings {
        target,
        options: Options {
            timeout,
            lmtp,
            helo: String::new(),
            tls,
        },
        xclient,
    })
}

/// Routes the hooks to the relay (shared with queue/lmtp).
pub fn dispatch(relay: &Relay, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
    match (hook, args) {
        (Hook::RcptPost, Args::Address { addr, .. }) => {
            let addr: Address = addr.clone();
            relay.rcpt(cx, &addr)
        }
        (Hook::Queue, _) => relay.queue(cx),
        (Hook::ResetTransaction, _) => {
            relay.reset();
            Outcome::declined()
        }
        (Hook::Disconnect, _) => {
            relay.close();
            Outcome::declined()
        }
        _ => Outcome::declined(),
    }
}
