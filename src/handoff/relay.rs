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
//!   or unsolicited input, the connection is not used again (README Differences 60).
//! - `reset_transaction`: RSET downstream when a transaction is abandoned;
//!   `disconnect`: QUIT.
//!
//! SMTP gives one reply after the final dot. LMTP gives one per recipient (RFC 2033
//! §4.2); how those are folded into our single reply is in [`super::lmtp::verdict`].

use std::cell::RefCell;
use std::time::Duration;

use super::smtp::{Client, Error, Options, Reply, Target, Tls};
use super::wire::Trouble;
use super::{DEFAULT_TIMEOUT, clean_text};
use crate::address::Address;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, PluginError, Verdict};

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

/// Why a step failed, as our client is to hear it.
#[derive(Debug)]
pub enum ForwardFailure {
    /// The next hop refused (4xx/5xx); our reply keeps the class.
    Refused(Reply),
    /// Nothing definite: our own temporary text, and what happened for the log.
    Temporary(&'static str, String),
}

impl From<Error> for ForwardFailure {
    fn from(e: Error) -> ForwardFailure {
        match e {
            Error::Refused(r) => ForwardFailure::Refused(r),
            Error::Broken(b) => ForwardFailure::Temporary(b.trouble.client_text(), b.detail),
        }
    }
}

impl ForwardFailure {
    /// What happened, for the log.
    pub fn describe(&self) -> String {
        match self {
            ForwardFailure::Refused(r) => r.describe(),
            ForwardFailure::Temporary(_, detail) => detail.clone(),
        }
    }
}

/// What a failure during DATA means for the retry on a fresh session.
enum DataFailure {
    /// The session cannot take DATA (closed, `421`, unsolicited input, an answer out of
    /// protocol): nothing was delivered on it, so a fresh session may be tried.
    Gone(ForwardFailure),
    /// A refusal or a timeout: final.
    Final(ForwardFailure),
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
            // Nothing was delivered on the old session: start over once.
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
        match data {
            Ok(()) => {}
            Err(DataFailure::Gone(f) | DataFailure::Final(f)) => return Err(f),
        }
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
            let mut replies = Vec::new();
            for rcpt in &s.accepted {
                let reply = s.client.read_reply()?;
                match s.client.judge("the final dot", reply, &[250]) {
                    Ok(r) | Err(Error::Refused(r)) => replies.push((rcpt.clone(), r)),
                    Err(e) => return Err(e.into()),
                }
            }
            let clean = replies.iter().all(|(_, r)| r.code == 250);
            if let Err(e) = s.client.nothing_more() {
                return Err(more_than_asked(cx, e, clean));
            }
            drop(slot);
            Ok((super::lmtp::verdict(cx, &replies), clean))
        } else {
            let reply = s.client.read_reply()?;
            let reply = s.client.judge("the final dot", reply, &[250])?;
            if let Err(e) = s.client.nothing_more() {
                return Err(more_than_asked(cx, e, true));
            }
            let id = reply
                .lines
                .last()
                .and_then(|l| l.split(' ').next_back())
                .unwrap_or("");
            let out = Outcome::ok_with(
                format!("Queued! queued as {}", clean_text(id))
                    .trim_end()
                    .to_string(),
            );
            Ok((out, true))
        }
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

/// The next hop answered the final dot and then sent more: its replies cannot be
/// trusted to belong to this message, so the client is told to try again, which may
/// deliver a second copy where the next hop had taken it.
fn more_than_asked(cx: &Context<'_>, e: Error, said_250: bool) -> ForwardFailure {
    if said_250 {
        cx.log(
            Level::Warn,
            format_args!(
                "the next hop accepted the message but then sent more ({}); answering 4xx, so the retry may deliver it twice",
                e.describe()
            ),
        );
    }
    e.into()
}

/// Did MAIL fail because the connection went away (closed, `421`, out of step), rather
/// than because the next hop refused the sender or is slow?
fn gone_between_messages(e: &Error) -> bool {
    match e {
        Error::Refused(r) => r.code == 421,
        Error::Broken(b) => !matches!(b.trouble, Trouble::Timeout | Trouble::Terminated),
    }
}

/// After our client was told `250` for every recipient, a refusal can only fail the whole
/// message, temporarily: nothing was delivered, and the retry gets the refusal at RCPT time.
fn second_round(e: Error) -> ForwardFailure {
    match e {
        Error::Refused(r) => ForwardFailure::Temporary(
            "4.4.0 The next hop changed its answer; try again later",
            format!("refused on the second try: {}", r.describe()),
        ),
        broken => broken.into(),
    }
}

/// Our reply code at RCPT for the next hop's refusal of MAIL or RCPT: the codes RFC 5321
/// §4.3.2 allows there are kept, any other permanent one is `550`, any other temporary
/// one (`421` included) `450`. (README, "What the client hears from a next hop".)
pub fn rcpt_code(code: u16) -> u16 {
    match code {
        450..=452 | 550..=553 => code,
        500..=599 => 550,
        _ => 450,
    }
}

/// Our reply code after the final dot for the next hop's refusal of DATA or of the
/// message: `450`-`452`, `550`, `552` and `554` are kept, any other permanent one is
/// `554`, any other temporary one (`421` included) `451`.
pub fn dot_code(code: u16) -> u16 {
    match code {
        450..=452 | 550 | 552 | 554 => code,
        500..=599 => 554,
        _ => 451,
    }
}

/// Sends the next hop's refusal as our reply with `code`, its text and enhanced status
/// kept; `DONE`, so the session sends it as it is.
pub fn refusal(cx: &mut Context<'_>, code: u16, reply: &Reply) -> Outcome {
    let status = if code >= 500 { "5.0.0" } else { "4.0.0" };
    cx.respond(crate::reply::Reply::from_plugin(
        code,
        status,
        &[reply.text()],
        "Refused by the next hop",
    ));
    Outcome::new(Verdict::Done)
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
pub fn parse_options(
    args: &[String],
    target: Target,
    lmtp: bool,
    host: &str,
) -> Result<Settings, PluginError> {
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
            return Err(PluginError::Args(format!("{word} needs a value")));
        };
        match word.as_str() {
            "tls" => tls_mode = value.clone(),
            "tls_ca" => ca = Some(std::path::PathBuf::from(value)),
            "tls_name" => name = Some(value.clone()),
            "timeout" => timeout = super::parse_timeout(value)?,
            _ => return Err(PluginError::Args(format!("unknown argument {word:?}"))),
        }
    }
    let tls = match tls_mode.as_str() {
        "off" | "none" => Tls::Off,
        "may" => Tls::May,
        "verify" | "require" => Tls::Verify {
            ca_file: ca.unwrap_or_else(|| super::tls::SYSTEM_ROOTS.into()),
            name: name.unwrap_or_else(|| host.to_string()),
        },
        other => {
            return Err(PluginError::Args(format!(
                "tls must be off, may or verify, not {other:?}"
            )));
        }
    };
    if tls != Tls::Off && matches!(target, Target::Unix(_)) {
        return Err(PluginError::Args(
            "STARTTLS over a Unix socket makes no sense; use tls off".into(),
        ));
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
