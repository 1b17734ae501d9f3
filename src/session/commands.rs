//! A command line: logged (AUTH credentials redacted), checked, and handed to its verb
//! (qpsmtpd's `dispatch`).

use super::auth::redact;
use super::fixed::{LINE_REFUSED, LINE_TOO_LONG};
use super::{Session, State};
use crate::command::{self, CommandLine, Verb};
use crate::log::Level;

impl Session {
    /// Handles one command line (without its line end).
    pub(super) fn command_line(&mut self, raw: &[u8]) {
        let checked = command::check_line(raw).map(|_| ());
        let line = String::from_utf8_lossy(raw).into_owned();
        let cmd = command::split(&line);
        // An AUTH line may carry the password (initial response): keep it out of logs
        // and notes.
        let redacted = redact(&line);
        // A line that only a lenient eye reads as AUTH (a leading blank, a tab after the
        // verb) is an unknown command, and unrecognized_command plugins hear of it
        // without what follows the verb.
        let unknown = match &redacted {
            Some(_) if cmd.verb.is_empty() => ("", ""),
            Some(_) => ("auth", ""),
            None => (cmd.verb.as_str(), cmd.rest),
        };
        let shown = redacted.unwrap_or_else(|| line.clone());
        if self.log.enabled(Level::Info) {
            self.log.log(Level::Info, format_args!("dispatching {shown}"));
        }
        self.conn.notes.insert("original_string".into(), shown);
        if cmd.verb.is_empty() {
            return self.unrecognized("", unknown.1);
        }
        self.conn.command_count += 1;
        // A known verb acts on its arguments: only UTF-8 without control characters gets
        // that far (README Differences 62). Unknown verbs are refused anyway, by the
        // `unrecognized_command` hook that counts them.
        if let (Some(_), Err(e)) = (cmd.known, checked) {
            self.log
                .log(Level::Info, format_args!("refused {}: {}", cmd.verb, e.text()));
            return self.reply(LINE_REFUSED.about(e.text()));
        }
        self.dispatch(&cmd, unknown);
    }

    /// Hands a checked command to its verb; `unknown` is what `unrecognized_command`
    /// plugins hear if it is not one.
    fn dispatch(&mut self, cmd: &CommandLine<'_>, unknown: (&str, &str)) {
        match cmd.known {
            Some(Verb::Helo) => self.hello(false, cmd.rest),
            Some(Verb::Ehlo) => self.hello(true, cmd.rest),
            Some(Verb::Mail) => self.mail(cmd.rest),
            Some(Verb::Rcpt) => self.rcpt(cmd.rest),
            Some(Verb::Data) => self.data(),
            Some(Verb::Rset) => self.rset(),
            Some(Verb::Noop) => self.noop(),
            Some(Verb::Vrfy) => self.vrfy(cmd.rest),
            Some(Verb::Help) => self.help(cmd.rest),
            Some(Verb::Quit) => self.quit(),
            // AUTH and STARTTLS are only verbs while offered; until then they are unknown.
            Some(Verb::Auth) if self.auth.offered => self.auth_command(cmd.rest),
            Some(Verb::Auth) => self.auth_not_offered(&cmd.verb, cmd.rest),
            Some(Verb::Starttls) if self.starttls_offered() => self.starttls(cmd.rest),
            Some(Verb::Starttls) | None => self.unrecognized(unknown.0, unknown.1),
        }
    }

    /// A line longer than the limit was read and thrown away.
    pub(super) fn line_too_long(&mut self) {
        if matches!(self.state, State::Auth(_)) {
            return self.auth_line_too_long();
        }
        self.reply(LINE_TOO_LONG.reply());
    }
}
