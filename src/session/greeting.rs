//! The greeting (qpsmtpd's `connect_respond`) and HELO/EHLO (its `helo` and `ehlo`).

use super::Session;
use super::fixed::{CONFIGURED_GREETING, EHLO_OK, GREETING, HELLO_NEEDS_DOMAIN, HELLO_SYNTAX_ERROR, HELO_OK};
use super::refusals::{CONNECT, EHLO, HELO};
use crate::connection::Greeting;
use crate::plugin::{Args, Hook, Outcome, Verdict};
use crate::reply::Reply;

impl Session {
    /// `connect` verdict → greeting or refusal.
    pub(super) fn connect_respond(&mut self, out: Outcome) {
        if self.respond(&CONNECT, out, "").is_some() {
            let reply = self.greeting();
            self.reply(reply);
        }
    }

    /// `smtpgreeting` with ` ESMTP` added unless it already says ESMTP, else the default.
    fn greeting(&self) -> Reply {
        match &self.settings.greeting {
            Some(g) if !g.is_empty() => {
                let says_esmtp = g
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| w == "ESMTP");
                if says_esmtp {
                    CONFIGURED_GREETING.about(g)
                } else {
                    CONFIGURED_GREETING.about(&format!("{g} ESMTP"))
                }
            }
            _ => GREETING.about(&self.settings.me),
        }
    }

    /// HELO (`esmtp = false`) or EHLO.
    pub(super) fn hello(&mut self, esmtp: bool, rest: &str) {
        let (parse_hook, hook, verb, row) = if esmtp {
            (Hook::EhloParse, Hook::Ehlo, "ehlo", &EHLO)
        } else {
            (Hook::HeloParse, Hook::Helo, "helo", &HELO)
        };
        let words = match self.parse_with(parse_hook, rest, |r| {
            Ok(r.split(' ')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect())
        }) {
            Ok(words) => words,
            Err(msg) => return self.reply(HELLO_SYNTAX_ERROR.or_plugin(&[msg])),
        };
        let Some((host, extra)) = words.split_first() else {
            return self.reply(HELLO_NEEDS_DOMAIN.about(verb));
        };
        let again = self.conn.hello.is_some();
        if esmtp {
            self.txn.capabilities.clear();
        }
        let out = self.run(hook, Args::Hello { host, extra });
        // A deny or DONE is the only reply (qpsmtpd 1.00 added a 451 after it).
        if self.respond(row, out, host).is_some() {
            self.greeted(esmtp, host, again);
        }
    }

    /// HELO or EHLO accepted. A later one is accepted too and, once accepted, resets the
    /// state as RSET does (RFC 5321 §4.1.4; qpsmtpd answered 503: README Differences 64);
    /// refused, it leaves the state as it was.
    fn greeted(&mut self, esmtp: bool, host: &str, again: bool) {
        if again {
            let capabilities = std::mem::take(&mut self.txn.capabilities);
            self.reset_transaction();
            self.txn.capabilities = capabilities;
        }
        self.conn.hello = Some(Greeting {
            esmtp,
            host: host.to_string(),
        });
        // STARTTLS and AUTH are commands only after an EHLO that offered them.
        self.tls.offered = esmtp && self.tls_available() && self.conn.tls.is_none();
        self.auth.offered = esmtp && self.auth_keyword().is_some();
        let facts = [
            self.settings.me.as_str(),
            self.conn.remote_info.as_str(),
            self.conn.remote_ip.as_str(),
        ];
        let reply = if esmtp {
            let mut lines = EHLO_OK.with(&facts).lines;
            lines.extend(self.ehlo_keywords());
            Reply::plain_lines(EHLO_OK.code, lines)
        } else {
            HELO_OK.with(&facts)
        };
        self.reply(reply);
    }

    /// The EHLO keywords: qpsmtpd's PIPELINING, 8BITMIME and SIZE, plus
    /// ENHANCEDSTATUSCODES and SMTPUTF8, then STARTTLS, what plugins offer for every
    /// client ([`crate::plugin::Offers::ehlo`]) and what their `ehlo` hooks added for this
    /// one, and AUTH last (qpsmtpd's order, the `tls` plugin loaded first).
    fn ehlo_keywords(&self) -> Vec<String> {
        let mut lines = vec!["PIPELINING".to_string(), "8BITMIME".to_string()];
        if self.settings.databytes > 0 {
            lines.push(format!("SIZE {}", self.settings.databytes));
        }
        lines.push("ENHANCEDSTATUSCODES".to_string());
        lines.push("SMTPUTF8".to_string());
        if self.tls.offered {
            lines.push("STARTTLS".to_string());
        }
        for keyword in self.offers.ehlo.iter().chain(&self.txn.capabilities) {
            if !lines.contains(keyword) {
                lines.push(keyword.clone());
            }
        }
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
                    return Err(out
                        .first_msg()
                        .unwrap_or(super::fixed::SYNTAX_ERROR.text)
                        .to_string());
                }
                _ => {}
            }
        }
        default(rest)
    }
}
