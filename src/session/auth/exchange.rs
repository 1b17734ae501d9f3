//! The AUTH exchange: `334` challenges, the client's answers, and credentials refused
//! before any plugin sees them.

use crate::auth::{decode, encode, split_plain, valid_name, valid_password};
use crate::log::Level;
use crate::plugin::AuthMechanism;
use crate::session::fixed::{
    AUTH_CANCELED, AUTH_CHALLENGE, AUTH_INVALID_STRING, AUTH_LINE_TOO_LONG, AUTH_UNDECODABLE,
    CREDENTIALS_INVALID,
};
use crate::session::{Session, State};

/// Where an AUTH exchange stands while it waits for the client's next line.
#[derive(Debug)]
pub struct Exchange {
    mech: AuthMechanism,
    step: Step,
}

/// The answer the exchange waits for.
#[derive(Debug)]
pub enum Step {
    /// PLAIN's response.
    PlainResponse,
    /// LOGIN's user name.
    LoginUser,
    /// LOGIN's password, for this user.
    LoginPassword {
        /// The user name given before.
        user: String,
    },
    /// CRAM-MD5's user and digest, for this challenge.
    CramResponse {
        /// The challenge sent.
        challenge: String,
    },
}

impl Session {
    /// Sends a `334` challenge and waits for the client's answer.
    pub(super) fn auth_ask(&mut self, mech: AuthMechanism, step: Step, challenge: String) {
        self.reply(AUTH_CHALLENGE.about(&challenge));
        self.enter(State::Auth(Box::new(Exchange { mech, step })));
    }

    /// A continuation line of an AUTH exchange (never logged: it holds the password).
    pub(in crate::session) fn auth_response(&mut self, line: &[u8]) {
        let State::Auth(exchange) = self.enter(State::Commands) else {
            return;
        };
        let line = String::from_utf8_lossy(line);
        if line.trim() == "*" {
            self.log.log(
                Level::Info,
                format_args!("AUTH {} canceled by the client", exchange.mech.name()),
            );
            return self.reply(AUTH_CANCELED.reply());
        }
        match exchange.step {
            Step::PlainResponse => self.auth_plain(&line),
            Step::LoginUser => self.auth_login_user(&line),
            Step::LoginPassword { user } => self.auth_login_password(&line, &user),
            Step::CramResponse { challenge } => self.auth_cram(&line, &challenge),
        }
    }

    fn auth_undecodable(&mut self) {
        self.reply(AUTH_UNDECODABLE.reply());
    }

    pub(super) fn auth_plain(&mut self, response: &str) {
        let Some(blob) = decode(response) else {
            return self.auth_undecodable();
        };
        let Some((authzid, user, password)) = split_plain(&blob) else {
            return self.auth_failed_early(AuthMechanism::Plain, "not three NUL-separated parts");
        };
        if !valid_name(&user) || !valid_password(&password) || authzid.chars().any(char::is_control) {
            return self.auth_failed_early(
                AuthMechanism::Plain,
                "empty, too long or control characters in the credentials",
            );
        }
        // qpsmtpd: acting for another user is not allowed.
        if !authzid.is_empty() && authzid != user {
            return self.auth_failed_early(AuthMechanism::Plain, "authorization id differs from the user");
        }
        self.auth_check(AuthMechanism::Plain, &user, Some(&password), None);
    }

    pub(super) fn auth_login_user(&mut self, response: &str) {
        match decode_text(response) {
            Some(user) if valid_name(&user) => self.auth_ask(
                AuthMechanism::Login,
                Step::LoginPassword { user },
                encode(b"Password:"),
            ),
            Some(_) => self.auth_failed_early(
                AuthMechanism::Login,
                "empty, too long or control characters in the user name",
            ),
            None => self.auth_undecodable(),
        }
    }

    fn auth_login_password(&mut self, response: &str, user: &str) {
        match decode_text(response) {
            Some(password) if valid_password(&password) => {
                self.auth_check(AuthMechanism::Login, user, Some(&password), None)
            }
            Some(_) => self.auth_failed_early(
                AuthMechanism::Login,
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
                    return self.auth_failed_early(
                        AuthMechanism::CramMd5,
                        "too long or control characters in the user name",
                    );
                }
                let (user, digest) = (user.to_string(), digest.to_string());
                self.auth_check(AuthMechanism::CramMd5, &user, None, Some((&digest, challenge)));
            }
            _ => self.reply(AUTH_INVALID_STRING.reply()),
        }
    }

    /// Credentials refused before any plugin saw them (the log says why, the client gets
    /// the one failure reply); counts as a failure.
    fn auth_failed_early(&mut self, mech: AuthMechanism, why: &str) {
        self.log
            .log(Level::Notice, format_args!("AUTH {} failed: {why}", mech.name()));
        self.auth_count_failure(CREDENTIALS_INVALID.reply());
    }

    /// A line longer than the command limit during an exchange: RFC 4954 §4 fails the AUTH
    /// command with `500 5.5.6`; the exchange is over, so the next line is a command again.
    pub(in crate::session) fn auth_line_too_long(&mut self) {
        if let State::Auth(exchange) = self.enter(State::Commands) {
            self.log.log(
                Level::Notice,
                format_args!("AUTH {} ended: response line too long", exchange.mech.name()),
            );
        }
        self.reply(AUTH_LINE_TOO_LONG.reply());
    }
}

/// A base64 response as text.
fn decode_text(line: &str) -> Option<String> {
    String::from_utf8(decode(line)?).ok()
}
