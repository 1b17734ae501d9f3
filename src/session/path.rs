//! MAIL and RCPT (qpsmtpd's `mail` and `rcpt`), with ESMTP parameter checks qpsmtpd lacked:
//! `SIZE` over `databytes` is refused at MAIL (RFC 1870 §6.2), unknown parameters get
//! `555` (RFC 5321 §4.1.1.11), non-ASCII addresses need `SMTPUTF8` (RFC 6531 §3.4).

use super::Session;
use super::fixed::{
    CONFIG_PROBLEM, HELLO_FIRST, MAIL_BEFORE_RCPT, PARAMETER_SYNTAX, RECIPIENT_OK, RECIPIENT_UNPARSEABLE,
    ROUTING_REFUSED, SENDER_OK, SENDER_UNPARSEABLE, SIZE_OVER_ANY_LIMIT, SIZE_OVER_LIMIT, SYNTAX_ERROR,
    TOO_MANY_RECIPIENTS, UNSUPPORTED_PARAMETER, UTF8_REQUIRED,
};
use super::refusals::{MAIL, RCPT, RCPT_POST};
use crate::address::Address;
use crate::command::{PathArgs, PathCommand, parse_path};
use crate::log::Level;
use crate::plugin::{Args, Hook, Outcome, Verdict, truthy};
use crate::reply::Reply;
use crate::transaction::Params;

impl Session {
    /// MAIL FROM: always starts a new transaction first (a second MAIL restarts it).
    pub(super) fn mail(&mut self, rest: &str) {
        self.reset_transaction();
        if self.conn.hello.is_none() {
            return self.reply(HELLO_FIRST.reply());
        }
        self.conn.notes.insert("envelope_from".into(), rest.to_string());
        let args = match self.parse_path_args(Hook::MailParse, PathCommand::Mail, rest) {
            Ok(args) => args,
            Err(reply) => return self.reply(reply),
        };
        let params = lower_params(&args.params);
        if let Err(reply) = self.check_mail_params(&params) {
            return self.reply(reply);
        }
        let smtputf8 = params.iter().any(|(k, _)| k == "smtputf8");
        let addr = self.pre_address(Hook::MailPre, args.addr, &params);
        // qmail's double-bounce sender is the null sender, as in qpsmtpd. qpsmtpd's other
        // special case, anything with `[undefined]` in it, is refused (README Differences
        // 61): an unparseable sender must not become a bounce that skips badmailfrom.
        let from = if addr == "<#@[]>" {
            Some(Address::null())
        } else {
            Address::parse(&addr)
        };
        let Some(from) = from else {
            return self.reply(SENDER_UNPARSEABLE.reply());
        };
        if !from.is_ascii() && !smtputf8 {
            return self.reply(UTF8_REQUIRED.reply());
        }
        let out = self.run(
            Hook::Mail,
            Args::Address {
                addr: &from,
                params: &params,
            },
        );
        self.mail_respond(out, from, params, smtputf8);
    }

    fn mail_respond(&mut self, out: Outcome, from: Address, params: Params, smtputf8: bool) {
        let sender = from.to_string();
        if self.respond(&MAIL, out, &sender).is_none() {
            return;
        }
        self.reply(SENDER_OK.about(&sender));
        self.summary.last_sender = Some(sender);
        self.summary.last_recipients.clear();
        self.txn.sender = Some(from);
        self.txn.mail_params = params;
        self.txn.smtputf8 = smtputf8;
    }

    /// RCPT TO: parse errors come before the sequence check, as in qpsmtpd.
    pub(super) fn rcpt(&mut self, rest: &str) {
        self.conn.notes.insert("envelope_rcpt".into(), rest.to_string());
        let args = match self.parse_path_args(Hook::RcptParse, PathCommand::Rcpt, rest) {
            Ok(args) => args,
            Err(reply) => return self.reply(reply),
        };
        if self.txn.sender.is_none() {
            return self.reply(MAIL_BEFORE_RCPT.reply());
        }
        let params = lower_params(&args.params);
        if let Some((key, _)) = params.first() {
            return self.reply(UNSUPPORTED_PARAMETER.about(&key.to_ascii_uppercase()));
        }
        if self.txn.recipients.len() >= self.settings.max_recipients {
            return self.reply(TOO_MANY_RECIPIENTS.reply());
        }
        let addr = self.pre_address(Hook::RcptPre, args.addr, &params);
        let Some(to) = Address::parse(&addr).filter(|a| !a.is_null()) else {
            return self.reply(RECIPIENT_UNPARSEABLE.reply());
        };
        if !to.is_ascii() && !self.txn.smtputf8 {
            return self.reply(UTF8_REQUIRED.reply());
        }
        if to.has_routing()
            && let Err(reply) = self.may_route(&to)
        {
            return self.reply(reply);
        }
        let out = self.run(
            Hook::Rcpt,
            Args::Address {
                addr: &to,
                params: &params,
            },
        );
        self.rcpt_respond(out, to);
    }

    fn rcpt_respond(&mut self, out: Outcome, to: Address) {
        if self.respond(&RCPT, out, "").is_none() {
            return;
        }
        if self.chain.has(Hook::RcptPost) && !self.rcpt_post(&to) {
            return;
        }
        let recipient = to.to_string();
        self.reply(RECIPIENT_OK.about(&recipient));
        self.summary.last_recipients.push(recipient);
        self.txn.recipients.push(to);
    }

    /// `rcpt_post` (not in qpsmtpd): the recipient was accepted; a queue plugin that
    /// forwards at RCPT time (smtp-forward, lmtp) asks the next hop now, so its per-recipient
    /// answer reaches our client. `true` = keep the recipient and answer `250`.
    fn rcpt_post(&mut self, to: &Address) -> bool {
        let params = Params::new();
        let out = self.run(
            Hook::RcptPost,
            Args::Address {
                addr: to,
                params: &params,
            },
        );
        self.respond(&RCPT_POST, out, "").is_some()
    }

    /// May this client use sender-specified routing (`%`, `!` or a quoted `@` in a local
    /// part)? Clients that may relay anyway, and every client when the
    /// `allow_untrusted_routing` config item is `1` (README Differences 63). Postfix's
    /// `allow_untrusted_routing = no` is the model: a downstream MTA that honours the
    /// percent hack or a bang path would otherwise relay for anyone. `Err` is the refusal;
    /// a config file that cannot be read is a temporary failure, never a guess.
    fn may_route(&self, to: &Address) -> Result<(), Reply> {
        let note = |v: Option<&String>| v.is_some_and(|v| truthy(v));
        if self.conn.relay_client
            || self.conn.auth.is_some()
            || note(self.conn.notes.get("whitelisthost"))
            || note(self.txn.notes.get("whitelistsender"))
        {
            return Ok(());
        }
        match self.config.first("allow_untrusted_routing") {
            Ok(v) if v.as_deref().is_some_and(truthy) => Ok(()),
            Ok(_) => {
                self.log.log(
                    Level::Info,
                    format_args!("refused {to}: sender-specified routing from a client that may not relay"),
                );
                Err(ROUTING_REFUSED.about(&to.to_string()))
            }
            Err(e) => {
                self.log.log(Level::Error, format_args!("{e}"));
                Err(CONFIG_PROBLEM.reply())
            }
        }
    }

    /// The `*_parse` hook or qpsmtpd's parser; a failure is the `501` reply.
    fn parse_path_args(&mut self, hook: Hook, cmd: PathCommand, rest: &str) -> Result<PathArgs, Reply> {
        let parts = self.parse_with(hook, rest, |r| {
            parse_path(cmd, r)
                .map(|a| std::iter::once(a.addr).chain(a.params).collect())
                .map_err(str::to_string)
        });
        match parts {
            Ok(mut parts) if !parts.is_empty() => {
                let addr = parts.remove(0);
                Ok(PathArgs { addr, params: parts })
            }
            Ok(_) => Err(SYNTAX_ERROR.reply()),
            // qpsmtpd's "Syntax error in address" is about the mailbox (RFC 3463 X.1.3);
            // the other parser texts are about the command's syntax or parameters.
            Err(msg) => {
                let status = match (msg == "Syntax error in address", cmd) {
                    (true, PathCommand::Mail) => "5.1.7",
                    (true, PathCommand::Rcpt) => "5.1.3",
                    (false, _) => "5.5.4",
                };
                Err(Reply::from_plugin(
                    SYNTAX_ERROR.code,
                    status,
                    &[msg],
                    SYNTAX_ERROR.text,
                ))
            }
        }
    }

    /// `mail_pre` / `rcpt_pre`: a plugin answering `OK` replaces the address string
    /// (this is how `dont_require_anglebrackets` adds the brackets).
    fn pre_address(&mut self, hook: Hook, addr: String, params: &Params) -> String {
        if !self.chain.has(hook) {
            return addr;
        }
        let out = self.run(hook, Args::PreAddress { addr: &addr, params });
        match (out.verdict, out.msg.into_iter().next()) {
            (Verdict::Ok, Some(new)) => new,
            _ => addr,
        }
    }

    /// MAIL parameters we implement: SIZE, BODY, SMTPUTF8, AUTH.
    fn check_mail_params(&self, params: &Params) -> Result<(), Reply> {
        for (key, value) in params {
            match (key.as_str(), value.as_deref()) {
                ("size", Some(v)) => {
                    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                        return Err(PARAMETER_SYNTAX.reply());
                    }
                    // A number too large for any integer is larger than any limit,
                    // "no limit" included (RFC 1870 §6.2: 552).
                    let size = v.parse::<u64>().unwrap_or(u64::MAX);
                    let max = self.settings.databytes;
                    if max > 0 && size > max {
                        return Err(SIZE_OVER_LIMIT.about(&max.to_string()));
                    }
                    if size == u64::MAX {
                        return Err(SIZE_OVER_ANY_LIMIT.reply());
                    }
                }
                ("body", Some(v)) if v.eq_ignore_ascii_case("7bit") || v.eq_ignore_ascii_case("8bitmime") => {
                }
                ("smtputf8", None) => {}
                // RFC 4954 §5: AUTH=<mailbox> is accepted and, unless trusted, ignored.
                ("auth", Some(_)) => {}
                _ => return Err(UNSUPPORTED_PARAMETER.about(&key.to_ascii_uppercase())),
            }
        }
        Ok(())
    }
}

/// `KEY=VALUE` strings → pairs with lower-cased keys (qpsmtpd passes `%param` that way).
fn lower_params(raw: &[String]) -> Params {
    raw.iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (p.to_ascii_lowercase(), None),
        })
        .collect()
}
