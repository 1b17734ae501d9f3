//! AUTH (RFC 4954) as `Qpsmtpd::Auth` does it (reference §8): PLAIN, LOGIN and CRAM-MD5,
//! the `auth-<mech>` hooks and then the generic `auth` hook, qpsmtpd's texts. Fixed here:
//! `*` cancels every mechanism with `501` (quirk 11), the mechanisms are listed in a fixed
//! order (quirk 12), a response that is not base64 gets `501`, a temporary failure of the
//! password store gets `454` instead of `535`, and repeated failures close the connection.
//! Every failure gets the same `535` (README Differences 82), user names and passwords
//! with control characters or empty passwords are refused for every mechanism (README
//! Differences 81), and a line too long for the exchange ends it (RFC 4954 §4).
//!
//! Continuation lines come from the driver through [`Session::auth_response`] while the
//! session wants [`super::Want::AuthResponse`]; they are never logged.

use super::{Session, State};
use crate::auth::{cram_challenge, decode, encode, split_plain, valid_name, valid_password};
use crate::config::{Config, ConfigError};
use crate::connection::AuthInfo;
use crate::log::{Level, Logger};
use crate::plugin::{Args, Chain, Hook, Outcome, Verdict};
use crate::reply::Reply;

/// The SASL mechanisms, in the order EHLO lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mech {
    Plain,
    Login,
    CramMd5,
}

impl Mech {
    const ALL: [Mech; 3] = [Mech::Plain, Mech::Login, Mech::CramMd5];

    fn name(self) -> &'static str {
        match self {
            Mech::Plain => "PLAIN",
            Mech::Login => "LOGIN",
            Mech::CramMd5 => "CRAM-MD5",
        }
    }

    fn hook(self) -> Hook {
        match self {
            Mech::Plain => Hook::AuthPlain,
            Mech::Login => Hook::AuthLogin,
            Mech::CramMd5 => Hook::AuthCramMd5,
        }
    }
}

/// Where an AUTH exchange stands while it waits for the client's next line.
#[derive(Debug)]
pub struct Exchange {
    mech: Mech,
    step: Step,
}

#[derive(Debug)]
enum Step {
    PlainResponse,
    LoginUser,
    LoginPassword { user: String },
    CramResponse { challenge: String },
}

/// AUTH settings and per-connection counters.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    /// Mechanisms the loaded plugins can check (empty: AUTH is never offered).
    mechs: Vec<Mech>,
    /// `tls_before_auth`: offer AUTH only on an encrypted connection (default yes).
    tls_before_auth: bool,
    /// `max_auth_failures`: failed attempts before the connection is closed.
    max_failures: u32,
    /// The last EHLO reply offered AUTH.
    pub(super) offered: bool,
    failures: u32,
    /// Was the client a relay client before AUTH made it one?
    relay_before: Option<bool>,
}

impl AuthState {
    /// The mechanisms from the registered hooks (a generic `auth` hook offers all three,
    /// as in qpsmtpd) and, only then, the two config items.
    pub(super) fn load(chain: &Chain, config: &Config, log: &Logger) -> Result<AuthState, ConfigError> {
        let mechs: Vec<Mech> = Mech::ALL
            .into_iter()
            .filter(|m| chain.has(Hook::Auth) || chain.has(m.hook()))
            .collect();
        if mechs.is_empty() {
            return Ok(AuthState::default());
        }
        let lines = chain.config("tls_before_auth", config, log)?;
        let tls_before_auth = lines.first().is_none_or(|v| v != "0");
        let lines = chain.config("max_auth_failures", config, log)?;
        let max_failures = match lines.entries().first() {
            None => 3,
            Some(e) => e.text.parse::<u32>().map_err(|_| ConfigError::Invalid {
                path: e.file.clone(),
                line: e.line,
                reason: format!("max_auth_failures must be a whole number, not {:?}", e.text),
            })?,
        };
        Ok(AuthState {
            mechs,
            tls_before_auth,
            max_failures,
            ..AuthState::default()
        })
    }
}

impl Session {
    /// The `AUTH ...` EHLO keyword, when AUTH may be offered now: an auth plugin is loaded
    /// and the connection is encrypted (unless `tls_before_auth` is 0).
    pub(super) fn auth_keyword(&self) -> Option<String> {
        if !self.auth_possible() || self.auth_needs_tls() {
            return None;
        }
        let names: Vec<&str> = self.auth.mechs.iter().map(|m| m.name()).collect();
        Some(format!("AUTH {}", names.join(" ")))
    }

    fn auth_possible(&self) -> bool {
        !self.auth.mechs.is_empty()
    }

    fn auth_needs_tls(&self) -> bool {
        self.auth.tls_before_auth && self.conn.tls.is_none()
    }

    /// AUTH when the last EHLO did not offer it: a client that tries it in clear text is
    /// told to STARTTLS first (RFC 3207 §4), when STARTTLS is there to use; otherwise it is
    /// an unknown command.
    pub(super) fn auth_not_offered(&mut self, verb: &str, rest: &str) {
        if self.auth_possible()
            && self.auth_needs_tls()
            && self.tls_available()
            && self.conn.hello.as_ref().is_some_and(|g| g.esmtp)
        {
            return self.reply(Reply::new(530, "5.7.0", "Must issue a STARTTLS command first"));
        }
        // Plugins hear the mechanism, not a credential that may follow it.
        let mechanism = rest
            .split(|c: char| c.is_ascii_whitespace())
            .find(|w| !w.is_empty())
            .unwrap_or_default();
        self.unrecognized(verb, mechanism)
    }

    /// `AUTH mechanism [initial-response]`.
    pub(super) fn auth_command(&mut self, rest: &str) {
        let words = match self.parse_with(Hook::AuthParse, rest, |r| {
            // Tabs separate too: otherwise `AUTH PLAIN<TAB>response` would be one
            // mechanism name, credential included, echoed in the 504 reply.
            Ok(r.split(|c: char| c.is_ascii_whitespace())
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect())
        }) {
            Ok(words) => words,
            Err(msg) => {
                return self.reply(Reply::from_plugin(
                    501,
                    "5.5.2",
                    &[msg],
                    "Syntax error in command",
                ));
            }
        };
        let mech_name = words.first().map(|m| m.to_lowercase()).unwrap_or_default();
        if self.conn.auth.is_some() {
            return self.reply(Reply::new(503, "5.5.1", "but you already said AUTH ..."));
        }
        if self.txn.sender.is_some() {
            // RFC 4954 §4: not during a mail transaction.
            return self.reply(Reply::new(
                503,
                "5.5.1",
                "AUTH not permitted during a mail transaction",
            ));
        }
        let Some(mech) = self
            .auth
            .mechs
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(&mech_name))
        else {
            // A client that sends its credential in place of the mechanism must not find
            // it in the reply, which is logged.
            let text = if mech_name.is_empty() || looks_like_a_mechanism(&mech_name) {
                format!("Unimplemented authentication mechanism: {mech_name}")
            } else {
                "Unimplemented authentication mechanism".to_string()
            };
            return self.reply(Reply::new(504, "5.5.4", text));
        };
        let initial = words.get(1).map(String::as_str);
        match (mech, initial) {
            (Mech::Plain, Some(ir)) => self.auth_plain(ir),
            (Mech::Plain, None) => self.auth_ask(mech, Step::PlainResponse, " ".to_string()),
            (Mech::Login, Some(ir)) => self.auth_login_user(ir),
            (Mech::Login, None) => self.auth_ask(mech, Step::LoginUser, encode(b"Username:")),
            // CRAM-MD5 is server-first (RFC 2195): an initial response is ignored.
            (Mech::CramMd5, _) => {
                let challenge = cram_challenge(&self.settings.me);
                let text = encode(challenge.as_bytes());
                self.auth_ask(mech, Step::CramResponse { challenge }, text)
            }
        }
    }

    /// Sends a `334` challenge and waits for the client's answer.
    fn auth_ask(&mut self, mech: Mech, step: Step, challenge: String) {
        self.reply(Reply::plain(334, challenge));
        self.state = State::Auth(Box::new(Exchange { mech, step }));
    }

    /// A continuation line of an AUTH exchange (never logged: it holds the password).
    pub fn auth_response(&mut self, line: &[u8]) {
        let State::Auth(exchange) = std::mem::replace(&mut self.state, State::Commands) else {
            return;
        };
        let line = String::from_utf8_lossy(line);
        if line.trim() == "*" {
            self.log.log(
                Level::Info,
                format_args!("AUTH {} canceled by the client", exchange.mech.name()),
            );
            return self.reply(Reply::new(501, "5.0.0", "Authentication canceled"));
        }
        match exchange.step {
            Step::PlainResponse => self.auth_plain(&line),
            Step::LoginUser => self.auth_login_user(&line),
            Step::LoginPassword { user } => self.auth_login_password(&line, &user),
            Step::CramResponse { challenge } => self.auth_cram(&line, &challenge),
        }
    }

    fn auth_undecodable(&mut self) {
        self.reply(Reply::new(501, "5.5.2", "Cannot decode response"));
    }

    fn auth_plain(&mut self, response: &str) {
        let Some(blob) = decode(response) else {
            return self.auth_undecodable();
        };
        let Some((authzid, user, password)) = split_plain(&blob) else {
            return self.auth_failed_early(Mech::Plain, "not three NUL-separated parts");
        };
        if !valid_name(&user) || !valid_password(&password) || authzid.chars().any(char::is_control) {
            return self.auth_failed_early(
                Mech::Plain,
                "empty, too long or control characters in the credentials",
            );
        }
        // qpsmtpd: acting for another user is not allowed.
        if !authzid.is_empty() && authzid != user {
            return self.auth_failed_early(Mech::Plain, "authorization id differs from the user");
        }
        self.auth_check(Mech::Plain, &user, Some(&password), None);
    }

    fn auth_login_user(&mut self, response: &str) {
        match decode_text(response) {
            Some(user) if valid_name(&user) => {
                self.auth_ask(Mech::Login, Step::LoginPassword { user }, encode(b"Password:"))
            }
            Some(_) => self.auth_failed_early(
                Mech::Login,
                "empty, too long or control characters in the user name",
            ),
            None => self.auth_undecodable(),
        }
    }

    fn auth_login_password(&mut self, response: &str, user: &str) {
        match decode_text(response) {
            Some(password) if valid_password(&password) => {
                self.auth_check(Mech::Login, user, Some(&password), None)
            }
            Some(_) => self.auth_failed_early(
                Mech::Login,
                "empty, too long or control characters in the password",
            ),
            None => self.auth_undecodable(),
        }
    }

    fn auth_cram(&mut self, response: &str, challenge: &str) {
        let Some(text) = decode_text(response) else {
            return self.auth_undecodable();
        };
        let mut parts = text.splitn(2, ' ');
        match (parts.next(), parts.next()) {
            (Some(user), Some(digest)) if !user.is_empty() && !digest.is_empty() => {
                if !valid_name(user) {
                    return self
                        .auth_failed_early(Mech::CramMd5, "too long or control characters in the user name");
                }
                let (user, digest) = (user.to_string(), digest.to_string());
                self.auth_check(Mech::CramMd5, &user, None, Some((&digest, challenge)));
            }
            _ => self.reply(Reply::new(504, "5.5.4", "Invalid authentication string")),
        }
    }

    /// Credentials refused before any plugin saw them (the log says why, the client gets
    /// the one failure reply); counts as a failure.
    fn auth_failed_early(&mut self, mech: Mech, why: &str) {
        self.log
            .log(Level::Notice, format_args!("AUTH {} failed: {why}", mech.name()));
        self.auth_count_failure(credentials_invalid());
    }

    /// A line longer than the command limit during an exchange: RFC 4954 §4 fails the AUTH
    /// command with `500 5.5.6`; the exchange is over, so the next line is a command again.
    pub(super) fn auth_line_too_long(&mut self) {
        if let State::Auth(exchange) = std::mem::replace(&mut self.state, State::Commands) {
            self.log.log(
                Level::Notice,
                format_args!("AUTH {} ended: response line too long", exchange.mech.name()),
            );
        }
        self.reply(Reply::new(
            500,
            "5.5.6",
            "Authentication Exchange line is too long",
        ));
    }

    /// Runs `auth-<mech>`, then `auth` if those declined, and answers.
    fn auth_check(&mut self, mech: Mech, user: &str, password: Option<&str>, cram: Option<(&str, &str)>) {
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

    fn auth_respond(&mut self, mech: Mech, user: &str, out: Outcome) {
        let text: Vec<&str> = out
            .msg
            .iter()
            .map(String::as_str)
            .filter(|m| !m.is_empty())
            .collect();
        let detail = if text.is_empty() {
            String::new()
        } else {
            printable(&format!(" - {}", text.join(" ")))
        };
        let name = mech.name();
        match out.verdict {
            Verdict::Ok => {
                // The name the password store answers for (`Alice@Example.com` logging in
                // as `alice`), when the plugin said; else the one the client gave.
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
                self.reply(Reply::new(
                    235,
                    "2.7.0",
                    format!("{name} authentication successful for {user}{detail}"),
                ));
            }
            Verdict::DenySoft | Verdict::DenySoftDisconnect => {
                self.log.log(
                    Level::Warn,
                    format_args!("AUTH {name} for {user}: temporary failure{detail}"),
                );
                self.reply(Reply::new(454, "4.7.0", "Temporary authentication failure"));
                if out.verdict == Verdict::DenySoftDisconnect {
                    self.disconnect();
                }
            }
            Verdict::Deny | Verdict::DenyDisconnect | Verdict::Declined | Verdict::Done => {
                // The reason (unknown user, wrong password) is for the log only: the
                // client gets the same reply either way (README Differences 82).
                self.log.log(
                    Level::Notice,
                    format_args!("AUTH {name} failed for {user}{detail}"),
                );
                self.auth_count_failure(credentials_invalid());
                if out.verdict == Verdict::DenyDisconnect {
                    self.disconnect();
                }
            }
        }
    }

    /// Sends a failure, or closes the connection once `max_auth_failures` is reached.
    fn auth_count_failure(&mut self, reply: Reply) {
        self.auth.failures += 1;
        if self.auth.max_failures > 0 && self.auth.failures >= self.auth.max_failures {
            self.log.log(
                Level::Notice,
                format_args!("{} failed AUTH attempts; closing connection", self.auth.failures),
            );
            self.summary.outcome = "too many AUTH failures".into();
            let me = self.settings.me.clone();
            self.reply(Reply::new(
                421,
                "4.7.0",
                format!("{me} Too many authentication failures; closing connection"),
            ));
            return self.disconnect();
        }
        self.reply(reply);
    }

    /// After STARTTLS: an earlier AUTH no longer counts (RFC 3207 §4.2).
    pub(super) fn auth_forget(&mut self) {
        if self.conn.auth.take().is_some()
            && let Some(relay) = self.auth.relay_before.take()
        {
            self.conn.relay_client = relay;
        }
    }
}

/// The one reply for every refused credential (RFC 4954 §6): nothing in it tells an
/// unknown user from a wrong password.
fn credentials_invalid() -> Reply {
    Reply::new(535, "5.7.8", "Authentication credentials invalid")
}

/// A base64 response as text.
fn decode_text(line: &str) -> Option<String> {
    String::from_utf8(decode(line)?).ok()
}

/// A client-chosen name as it may appear in replies, logs and headers: control
/// characters (a line break could add reply lines or header fields) become `?`.
fn printable(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// A command line as it may be logged and shown to plugins: for a line whose first word
/// is AUTH, however it is spaced (runs of spaces, tabs, a leading blank), `AUTH <mech>`
/// and nothing after it; `None` for every other line.
pub(super) fn redact(line: &str) -> Option<String> {
    let mut words = line
        .split(|c: char| c.is_ascii_whitespace())
        .filter(|w| !w.is_empty());
    let verb = words.next().filter(|v| v.eq_ignore_ascii_case("auth"))?;
    Some(match (words.next(), words.next()) {
        (Some(mech), Some(_)) if looks_like_a_mechanism(mech) => format!("{verb} {mech} <redacted>"),
        (Some(mech), None) if looks_like_a_mechanism(mech) => format!("{verb} {mech}"),
        (Some(_), _) => format!("{verb} <redacted>"),
        (None, _) => verb.to_string(),
    })
}

/// A SASL mechanism name (RFC 4422 §3.1: up to 20 of A-Z 0-9 - _, any case here), as
/// opposed to a credential a client sent in its place.
fn looks_like_a_mechanism(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 20
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}
