//! The greeting (connect hook) and HELO/EHLO (reference §3.1, §3.2).

use super::Session;
use crate::VERSION;
use crate::connection::Greeting;
use crate::plugin::{Args, Hook, Outcome, Verdict};
use crate::reply::Reply;

impl Session {
    /// `connect` verdict → greeting or refusal.
    pub(super) fn connect_respond(&mut self, out: Outcome) {
        match out.verdict {
            Verdict::Deny | Verdict::DenyDisconnect => {
                self.summary.outcome = "refused at connect".into();
                self.reply(Reply::from_plugin(
                    550,
                    "5.7.1",
                    &out.msg,
                    "Connection from you denied, bye bye.",
                ));
                self.disconnect();
            }
            Verdict::DenySoft | Verdict::DenySoftDisconnect => {
                self.summary.outcome = "deferred at connect".into();
                self.reply(Reply::from_plugin(
                    450,
                    "4.7.1",
                    &out.msg,
                    "Connection from you temporarily denied, bye bye.",
                ));
                self.disconnect();
            }
            Verdict::Done => {}
            Verdict::Ok | Verdict::Declined => {
                let text = self.greeting_text();
                self.reply(Reply::plain(220, text));
            }
        }
    }

    /// `smtpgreeting` with ` ESMTP` added unless it already says ESMTP, else the default.
    fn greeting_text(&self) -> String {
        match &self.settings.greeting {
            Some(g) if !g.is_empty() => {
                let says_esmtp = g
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == "ESMTP");
                if says_esmtp {
                    g.clone()
                } else {
                    format!("{g} ESMTP")
                }
            }
            _ => format!(
                "{} ESMTP qpsmtpd-rs {VERSION} ready; send us your mail, but not your spam.",
                self.settings.me
            ),
        }
    }

    /// HELO (`esmtp = false`) or EHLO.
    pub(super) fn hello(&mut self, esmtp: bool, rest: &str) {
        let (parse_hook, hook, verb) = if esmtp {
            (Hook::EhloParse, Hook::Ehlo, "ehlo")
        } else {
            (Hook::HeloParse, Hook::Helo, "helo")
        };
        let words = match self.parse_with(parse_hook, rest, |r| {
            Ok(r.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect())
        }) {
            Ok(words) => words,
            Err(msg) => return self.reply(Reply::from_plugin(501, "5.5.2", &[msg], "Syntax error")),
        };
        let Some((host, extra)) = words.split_first() else {
            return self.reply(Reply::new(
                501,
                "5.5.4",
                format!("{verb} requires domain/address - see RFC-2821 4.1.1.1"),
            ));
        };
        // A later HELO or EHLO is accepted and, once accepted, resets the state as RSET
        // does (RFC 5321 §4.1.4; qpsmtpd answered 503: README Differences 43). Refused, it
        // leaves the state as it was.
        let again = self.conn.hello.is_some();
        if esmtp {
            self.txn.capabilities.clear();
        }
        let out = self.run(hook, Args::Hello { host, extra });
        // Quirk 1 fixed: a deny or DONE is the only reply (Perl 1.00 added a 451).
        let denied = format!("{host}: {} denied", verb.to_uppercase());
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => self.reply(Reply::from_plugin(550, "5.7.1", &out.msg, &denied)),
            Verdict::DenySoft => self.reply(Reply::from_plugin(450, "4.7.1", &out.msg, &denied)),
            Verdict::DenyDisconnect => {
                self.reply(Reply::from_plugin(550, "5.7.1", &out.msg, &denied));
                self.disconnect();
            }
            Verdict::DenySoftDisconnect => {
                self.reply(Reply::from_plugin(450, "4.7.1", &out.msg, &denied));
                self.disconnect();
            }
            Verdict::Ok | Verdict::Declined => {
                if again {
                    let capabilities = std::mem::take(&mut self.txn.capabilities);
                    self.reset_transaction();
                    self.txn.capabilities = capabilities;
                }
                self.conn.hello = Some(Greeting {
                    esmtp,
                    host: host.clone(),
                });
                // STARTTLS and AUTH are commands only after an EHLO that offered them.
                self.tls.offered = esmtp && self.tls_available() && self.conn.tls.is_none();
                self.auth.offered = esmtp && self.auth_keyword().is_some();
                let first = format!(
                    "{} Hi {} [{}]",
                    self.settings.me, self.conn.remote_info, self.conn.remote_ip
                );
                if esmtp {
                    let lines = self.ehlo_lines(first);
                    self.reply(Reply::plain_lines(250, lines));
                } else {
                    self.reply(Reply::plain(250, format!("{first}; I am so happy to meet you.")));
                }
            }
        }
    }

    /// The EHLO keywords: qpsmtpd's PIPELINING, 8BITMIME and SIZE, plus
    /// ENHANCEDSTATUSCODES and SMTPUTF8, then STARTTLS, what plugins added, and AUTH last
    /// (qpsmtpd's order, the `tls` plugin loaded first).
    fn ehlo_lines(&self, first: String) -> Vec<String> {
        let mut lines = vec![first, "PIPELINING".to_string(), "8BITMIME".to_string()];
        if self.settings.databytes > 0 {
            lines.push(format!("SIZE {}", self.settings.databytes));
        }
        lines.push("ENHANCEDSTATUSCODES".to_string());
        lines.push("SMTPUTF8".to_string());
        if self.tls.offered {
            lines.push("STARTTLS".to_string());
        }
        lines.extend(self.txn.capabilities.iter().cloned());
        if self.auth.offered
            && let Some(keyword) = self.auth_keyword()
        {
            lines.push(keyword);
        }
        lines
    }

    /// Runs a `*_parse` hook: a plugin may parse the arguments itself (`OK` with the
    /// parts as message lines) or refuse them (`DENY` with the 501 text). Otherwise the
    /// default parser runs.
    pub(super) fn parse_with(
        &mut self,
        hook: Hook,
        rest: &str,
        default: impl FnOnce(&str) -> Result<Vec<String>, String>,
    ) -> Result<Vec<String>, String> {
        if self.chain.has(hook) {
            let out = self.run(hook, Args::Parse { line: rest });
            match out.verdict {
                Verdict::Ok => return Ok(out.msg),
                v if v.is_deny() => {
                    return Err(out.first_msg().unwrap_or("Syntax error in command").to_string());
                }
                _ => {}
            }
        }
        default(rest)
    }
}
