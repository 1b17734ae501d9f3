//! Forwarding at RCPT time, shared by queue/smtp-forward and queue/lmtp.
//!
//! qpsmtpd's smtp-forward opened the next hop only in the `queue` hook, after our client
//! had been told `250` for every recipient; a recipient the next hop refused then failed
//! the whole message with `451`, and the client retried until its queue lifetime ran out
//! (qpsmtpd issue #150). Here the next hop is asked at RCPT time instead:
//!
//! - `rcpt_post` (after our own policy accepted the recipient): connect if needed, send
//!   MAIL once per transaction, then RCPT. The next hop's refusal reaches our client with
//!   its class kept ([`rcpt_code`]); a failure to reach it or an answer out of protocol is
//!   a `450`; only `250`/`251` lets our `250` go out.
//! - `queue`: DATA and the message on the same session. If that session cannot take DATA
//!   any more (the next hop's idle timeout closed it while our client was sending the
//!   message, it sent something nobody asked for), or another plugin's answer made the
//!   envelopes differ, the envelope is sent again on a fresh session; a recipient refused
//!   in that second round fails the whole message with a `4xx` (nothing was delivered,
//!   and the client will then hear the refusal at RCPT time). Only a `250` to the final
//!   dot (LMTP: one per recipient) gives our client `250`; a refusal keeps its class
//!   ([`dot_code`]); anything else is a `451`.
//! - After anything but a clean `250` in the DATA phase, after a `421`, an unexpected code
//!   or unsolicited input, the connection is not used again (README Differences 44).
//! - `reset_transaction`: RSET downstream when a transaction is abandoned;
//!   `disconnect`: QUIT.
//!
//! SMTP gives one reply after the final dot. LMTP gives one per recipient (RFC 2033
//! §4.2); how those are folded into our single reply is in [`super::lmtp::verdict`].

use std::cell::RefCell;
use std::time::Duration;

use super::smtp::{Client, Error};
use super::wire::Trouble;
use crate::address::Address;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Verdict};

mod after_dot;
mod codes;
mod failure;
mod settings;

use after_dot::{lmtp_replies, smtp_reply};
pub use codes::{dot_code, rcpt_code, refusal};
pub use failure::ForwardFailure;
use failure::{DataFailure, gone_between_messages, more_than_asked, second_round};
pub use settings::{Settings, parse_options};

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
        let result = self.try_rcpt(cx, rcpt);
        self.drop_if_unusable();
        let Err(f) = result else {
            return Outcome::declined();
        };
        let level = match f {
            ForwardFailure::Refused(_) => Level::Info,
            ForwardFailure::Temporary(..) => Level::Error,
        };
        cx.log(
            level,
            format_args!("{rcpt} not accepted by the next hop: {}", f.describe()),
        );
        match f {
            ForwardFailure::Refused(r) => refusal(cx, rcpt_code(r.code), &r),
            ForwardFailure::Temporary(text, _) => Outcome::with(Verdict::DenySoft, text),
        }
    }

    fn try_rcpt(&self, cx: &mut Context<'_>, rcpt: &Address) -> Result<(), ForwardFailure> {
        let mut slot = self.session.borrow_mut();
        let kept = slot.is_some();
        if !kept {
            *slot = Some(self.open(cx)?);
        }
        let Some(s) = slot.as_mut() else {
            return Err(ForwardFailure::Temporary(
                Trouble::Local.client_text(),
                "no session".into(),
            ));
        };
        if !s.mail_sent {
            match s.client.command(&mail_command(cx, &s.client), &[250]) {
                Ok(_) => {}
                // A connection kept from the last message that went stale meanwhile (the
                // next hop's idle timeout, a late reply): no transaction is open on it,
                // so a fresh connection is safe.
                Err(e) if kept && gone_between_messages(&e) => {
                    cx.log(
                        Level::Info,
                        format_args!(
                            "the kept connection is unusable ({}); opening a fresh one",
                            e.describe()
                        ),
                    );
                    *s = self.open(cx)?;
                    s.client.command(&mail_command(cx, &s.client), &[250])?;
                }
                Err(e) => return Err(e.into()),
            }
            s.mail_sent = true;
        }
        s.client
            .command(&format!("RCPT TO:<{}>", rcpt.mailbox()), &[250, 251])?;
        s.accepted.push(rcpt.mailbox());
        Ok(())
    }

    /// A session that broke is not kept for the next command.
    fn drop_if_unusable(&self) {
        let mut slot = self.session.borrow_mut();
        if slot.as_ref().is_some_and(|s| !s.client.usable()) {
            *slot = None;
        }
    }

    /// Connects and greets; XCLIENT if configured. A refusal here is about us, not about
    /// the message: temporary.
    fn open(&self, cx: &mut Context<'_>) -> Result<Session, ForwardFailure> {
        let s = &self.settings;
        cx.log(Level::Info, format_args!("connecting to {}", s.target));
        let mut opts = s.options.clone();
        if opts.helo.is_empty() {
            opts.helo = cx.me().to_string();
        }
        let refused = |e: Error| match e {
            Error::Refused(r) => ForwardFailure::Temporary(
                "4.4.0 Next hop refused the session; try again later",
                format!("{}: refused the session: {}", s.target, r.describe()),
            ),
            other => other.into(),
        };
        let mut client = Client::connect(&s.target, &opts).map_err(refused)?;
        if let Some(r) = &client.starttls_refused {
            cx.log(
                Level::Warn,
                format_args!(
                    "{}: STARTTLS refused ({}); going on without TLS (tls may)",
                    s.target,
                    r.describe()
                ),
            );
        }
        if s.xclient {
            super::xclient::xclient(cx, &mut client, &opts).map_err(refused)?;
        }
        Ok(Session {
            client,
            mail_sent: false,
            accepted: Vec::new(),
        })
    }

    /// `queue`: DATA and the message; the reply (or replies, LMTP) decide. Whatever
    /// happened, the next hop's transaction is over; after anything but a clean `250` its
    /// connection is closed, never used for the next message.
    pub fn queue(&self, cx: &mut Context<'_>) -> Outcome {
        let result = self.try_queue(cx);
        let clean = matches!(result, Ok((_, true)));
        let mut slot = self.session.borrow_mut();
        match slot.as_mut() {
            Some(s) if clean && s.client.usable() => {
                s.mail_sent = false;
                s.accepted.clear();
            }
            _ => {
                if let Some(s) = slot.take() {
                    s.client.quit();
                }
            }
        }
        drop(slot);
        match result {
            Ok((out, _)) => out,
            Err(ForwardFailure::Refused(r)) => {
                cx.log(
                    Level::Info,
                    format_args!("the next hop refused the message: {}", r.describe()),
                );
                refusal(cx, dot_code(r.code), &r)
            }
            Err(ForwardFailure::Temporary(text, detail)) => {
                cx.log(Level::Error, format_args!("forwarding failed: {detail}"));
                Outcome::with(Verdict::Declined, text)
            }
        }
    }

    /// The outcome, and whether the next hop's connection is clean for another message.
    fn try_queue(&self, cx: &mut Context<'_>) -> Result<(Outcome, bool), ForwardFailure> {
        self.start_data(cx)?;
        let mut slot = self.session.borrow_mut();
        let Some(s) = slot.as_mut() else {
            return Err(ForwardFailure::Temporary(
                Trouble::Local.client_text(),
                "no session".into(),
            ));
        };
        let txn = &mut *cx.txn;
        s.client.send_message(&mut |w| txn.write_message(w).map(|_| ()))?;
        if self.settings.options.lmtp {
            let (replies, clean) = lmtp_replies(cx, s)?;
            drop(slot);
            Ok((super::lmtp::verdict(cx, &replies), clean))
        } else {
            Ok((smtp_reply(cx, s)?, true))
        }
    }

    /// DATA with `354`: on the session that has exactly this message's recipients, or,
    /// when that session is gone with nothing delivered on it, once more on a fresh one.
    fn start_data(&self, cx: &mut Context<'_>) -> Result<(), ForwardFailure> {
        let wanted: Vec<String> = cx.txn.recipients.iter().map(Address::mailbox).collect();
        let usable = self
            .session
            .borrow()
            .as_ref()
            .is_some_and(|s| s.mail_sent && s.accepted == wanted && s.client.usable());
        let mut data = if usable {
            self.data_command()
        } else {
            Err(DataFailure::Gone(ForwardFailure::Temporary(
                Trouble::Closed.client_text(),
                "no session with exactly these recipients".into(),
            )))
        };
        if let Err(DataFailure::Gone(why)) = &data {
            cx.log(
                Level::Info,
                format_args!(
                    "sending the envelope again on a fresh session ({})",
                    why.describe()
                ),
            );
            if let Some(old) = self.session.borrow_mut().take() {
                old.client.quit();
            }
            self.replay(cx, &wanted)?;
            data = self.data_command();
        }
        data.map_err(|(DataFailure::Gone(f) | DataFailure::Final(f))| f)
    }

    /// DATA on the current session, which must answer `354`.
    fn data_command(&self) -> Result<(), DataFailure> {
        let mut slot = self.session.borrow_mut();
        let Some(s) = slot.as_mut() else {
            return Err(DataFailure::Gone(ForwardFailure::Temporary(
                Trouble::Closed.client_text(),
                "no session".into(),
            )));
        };
        match s.client.command("DATA", &[354]) {
            Ok(_) => Ok(()),
            Err(Error::Refused(r)) if r.code == 421 => Err(DataFailure::Gone(ForwardFailure::Refused(r))),
            Err(e @ Error::Refused(_)) => Err(DataFailure::Final(e.into())),
            Err(Error::Broken(b)) if matches!(b.trouble, Trouble::Timeout | Trouble::Terminated) => {
                Err(DataFailure::Final(Error::Broken(b).into()))
            }
            Err(e) => Err(DataFailure::Gone(e.into())),
        }
    }

    /// A fresh session with exactly our recipients; any refusal now fails the message.
    fn replay(&self, cx: &mut Context<'_>, wanted: &[String]) -> Result<(), ForwardFailure> {
        let mut s = self.open(cx)?;
        s.client
            .command(&mail_command(cx, &s.client), &[250])
            .map_err(second_round)?;
        s.mail_sent = true;
        for rcpt in wanted {
            s.client
                .command(&format!("RCPT TO:<{rcpt}>"), &[250, 251])
                .map_err(second_round)?;
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
        if s.client.command("RSET", &[250]).is_err()
            && let Some(s) = slot.take()
        {
            s.client.quit();
        }
    }

    /// `disconnect`: QUIT.
    pub fn close(&self) {
        if let Some(s) = self.session.borrow_mut().take() {
            s.client.quit();
        }
    }
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
