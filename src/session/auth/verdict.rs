//! Running the AUTH hooks and answering their verdict, as the `AUTH` row of the reply
//! table says; the plugin's text goes to the log only.

use crate::auth::valid_name;
use crate::connection::AuthInfo;
use crate::log::Level;
use crate::plugin::AuthMechanism;
use crate::plugin::{Args, Hook, Outcome, Verdict};
use crate::reply::Reply;
use crate::session::Session;
use crate::session::fixed::{AUTH_SUCCEEDED, TOO_MANY_AUTH_FAILURES};
use crate::session::refusals::{AUTH, Answer, answer};
use crate::session::summary::Ending;

impl Session {
    /// Runs `auth-<mech>`, then `auth` if those declined, and answers.
    pub(super) fn auth_check(
        &mut self,
        mech: AuthMechanism,
        user: &str,
        password: Option<&str>,
        cram: Option<(&str, &str)>,
    ) {
        let mechanism = mech.name().to_lowercase();
        let args = Args::Auth {
            mechanism: &mechanism,
            user,
            password,
            digest: cram.map(|c| c.0),
            ticket: cram.map(|c| c.1),
        };
        // A plugin that knows the canonical name (Dovecot's `user=`) leaves it here.
        self.conn.notes.remove("authuser");
        let mut out = self.run(mech.hook(), args);
        if out.verdict == Verdict::Declined {
            let generic = self.run(Hook::Auth, args);
            if generic.verdict != Verdict::Declined || !generic.msg.is_empty() {
                out = generic;
            }
        }
        self.auth_respond(mech, user, out);
    }

    fn auth_respond(&mut self, mech: AuthMechanism, user: &str, out: Outcome) {
        let detail = detail(&out);
        let name = mech.name();
        let temporary = matches!(out.verdict, Verdict::DenySoft | Verdict::DenySoftDisconnect);
        match answer(&AUTH, out, "") {
            Answer::Go(_) => self.auth_succeeded(mech, user, &detail),
            Answer::Reply(reply, then) => {
                if temporary {
                    self.log.log(
                        Level::Warn,
                        format_args!("AUTH {name} for {user}: temporary failure{detail}"),
                    );
                } else {
                    // The reason (unknown user, wrong password) is for the log only: the
                    // client gets the same reply either way (README Differences 56).
                    self.log.log(
                        Level::Notice,
                        format_args!("AUTH {name} failed for {user}{detail}"),
                    );
                }
                self.reply_then(reply, then);
            }
            Answer::Quiet => {}
        }
    }

    fn auth_succeeded(&mut self, mech: AuthMechanism, user: &str, detail: &str) {
        let name = mech.name();
        // The name the password store answers for (`Alice@Example.com` logging in as
        // `alice`), when the plugin said; else the one the client gave.
        let user = match self.conn.notes.get("authuser") {
            Some(canonical) if valid_name(canonical) => canonical.clone(),
            _ => user.to_string(),
        };
        self.log
            .log(Level::Notice, format_args!("AUTH {name} succeeded for {user}"));
        self.auth.relay_before = Some(self.conn.relay_client);
        self.conn.relay_client = true;
        // qpsmtpd: a good login clears what `naughty` held against the client.
        if self.conn.notes.remove("naughty").is_some() {
            self.log
                .log(Level::Info, format_args!("auth success cleared naughty"));
        }
        self.conn.notes.insert("authuser".into(), user.clone());
        self.conn.auth = Some(AuthInfo {
            user: user.clone(),
            mechanism: name.to_lowercase(),
        });
        self.reply(AUTH_SUCCEEDED.with(&[name, &user, detail]));
    }

    /// Sends a failure, or closes the connection once `max_auth_failures` is reached.
    pub(in crate::session) fn auth_count_failure(&mut self, reply: Reply) {
        self.auth.failures += 1;
        if self.auth.max_failures > 0 && self.auth.failures >= self.auth.max_failures {
            self.log.log(
                Level::Notice,
                format_args!("{} failed AUTH attempts; closing connection", self.auth.failures),
            );
            self.summary.end(Ending::TooManyAuthFailures);
            self.reply(TOO_MANY_AUTH_FAILURES.about(&self.settings.me));
            return self.disconnect();
        }
        self.reply(reply);
    }

    /// After STARTTLS: an earlier AUTH no longer counts (RFC 3207 §4.2).
    pub(in crate::session) fn auth_forget(&mut self) {
        if self.conn.auth.take().is_some()
            && let Some(relay) = self.auth.relay_before.take()
        {
            self.conn.relay_client = relay;
        }
    }
}

/// ` - ` and the plugin's message for the log (and the `235` reply), or nothing.
fn detail(out: &Outcome) -> String {
    let text: Vec<&str> = out
        .msg
        .iter()
        .map(String::as_str)
        .filter(|m| !m.is_empty())
        .collect();
    if text.is_empty() {
        String::new()
    } else {
        printable(&format!(" - {}", text.join(" ")))
    }
}

/// A client-chosen name as it may appear in replies, logs and headers: control
/// characters (a line break could add reply lines or header fields) become `?`.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}
