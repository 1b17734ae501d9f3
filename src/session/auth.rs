//! AUTH (RFC 4954) as qpsmtpd's Qpsmtpd::Auth does it: PLAIN, LOGIN and CRAM-MD5, the
//! `auth-<mech>` hooks and then the generic `auth` hook, qpsmtpd's texts. Fixed here:
//! `*` cancels every mechanism with `501` (Perl: no reply for LOGIN, `504` for CRAM-MD5),
//! the mechanisms are listed in a fixed order (Perl: hash order, random per process), a
//! response that is not base64 gets `501`, a temporary failure of the password store gets
//! `454` instead of `535`, and repeated failures close the connection. Every failure gets
//! the same `535` (README Differences 56), user names and passwords with control
//! characters or empty passwords are refused for every mechanism (README Differences 55),
//! and a line too long for the exchange ends it (RFC 4954 §4).
//!
//! The exchange itself (challenges and answers) is in `auth/exchange.rs`, the verdicts in
//! `auth/verdict.rs`. Continuation lines come from the driver as [`super::Input::Line`]
//! while the session wants [`super::Want::AuthResponse`]; they are never logged.

mod exchange;
mod verdict;

use super::Session;
use super::fixed::{
    AUTH_ALREADY, AUTH_IN_TRANSACTION, MECHANISM_UNKNOWN, MECHANISM_UNKNOWN_UNNAMED, STARTTLS_FIRST,
    SYNTAX_ERROR,
};
use crate::auth::{cram_challenge, encode};
use crate::config::{Config, ConfigError};
use crate::log::Logger;
use crate::plugin::{AuthMechanism, Chain, Hook};
use crate::reply::Reply;

pub(super) use exchange::{Exchange, Step};

/// AUTH settings and per-connection counters.
#[derive(Debug, Default)]
pub(super) struct AuthState {
    /// Mechanisms the loaded plugins can check, in EHLO order (empty: AUTH is never
    /// offered).
    mechs: Vec<AuthMechanism>,
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
    /// The mechanisms the plugins offer ([`crate::plugin::Chain::offers`]: by default
    /// those whose hooks they register, all three with the generic `auth` hook, as in
    /// qpsmtpd) and, only when there are any, the two config items.
    pub(super) fn load(
        mechs: &[AuthMechanism],
        chain: &Chain,
        config: &Config,
        log: &Logger,
    ) -> Result<AuthState, ConfigError> {
        let mechs = mechs.to_vec();
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
            return self.reply(STARTTLS_FIRST.reply());
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
            Err(msg) => return self.reply(SYNTAX_ERROR.or_plugin(&[msg])),
        };
        let mech_name = words.first().map(|m| m.to_lowercase()).unwrap_or_default();
        if let Err(reply) = self.auth_allowed() {
            return self.reply(reply);
        }
        match self.mechanism(&mech_name) {
            Ok(mech) => self.auth_start(mech, words.get(1).map(String::as_str)),
            Err(reply) => self.reply(reply),
        }
    }

    /// Not a second AUTH, and not during a mail transaction (RFC 4954 §4).
    fn auth_allowed(&self) -> Result<(), Reply> {
        if self.conn.auth.is_some() {
            return Err(AUTH_ALREADY.reply());
        }
        if self.txn.sender.is_some() {
            return Err(AUTH_IN_TRANSACTION.reply());
        }
        Ok(())
    }

    /// The mechanism the client asked for, if we offer it.
    fn mechanism(&self, name: &str) -> Result<AuthMechanism, Reply> {
        if let Some(mech) = self
            .auth
            .mechs
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(name))
        {
            return Ok(mech);
        }
        // A client that sends its credential in place of the mechanism must not find it
        // in the reply, which is logged.
        if name.is_empty() || looks_like_a_mechanism(name) {
            Err(MECHANISM_UNKNOWN.about(name))
        } else {
            Err(MECHANISM_UNKNOWN_UNNAMED.reply())
        }
    }

    /// The first step of a mechanism, with the initial response if the client sent one.
    fn auth_start(&mut self, mech: AuthMechanism, initial: Option<&str>) {
        match (mech, initial) {
            (AuthMechanism::Plain, Some(ir)) => self.auth_plain(ir),
            (AuthMechanism::Plain, None) => self.auth_ask(mech, Step::PlainResponse, " ".to_string()),
            (AuthMechanism::Login, Some(ir)) => self.auth_login_user(ir),
            (AuthMechanism::Login, None) => self.auth_ask(mech, Step::LoginUser, encode(b"Username:")),
            // CRAM-MD5 is server-first (RFC 2195): an initial response is ignored.
            (AuthMechanism::CramMd5, _) => {
                let challenge = cram_challenge(&self.settings.me, self.now());
                let text = encode(challenge.as_bytes());
                self.auth_ask(mech, Step::CramResponse { challenge }, text)
            }
        }
    }
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
