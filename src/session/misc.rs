//! RSET, NOOP, VRFY, HELP, QUIT and unrecognized commands (qpsmtpd's `rset`, `noop`,
//! `vrfy`, `help`, `quit` and `unrecognized_command_respond`).

use super::Session;
use super::fixed::OK;
use super::refusals::{HELP, NOOP, QUIT, UNRECOGNIZED_COMMAND, VRFY};
use super::summary::Ending;
use crate::plugin::{Args, Hook};

impl Session {
    /// RSET: new transaction; arguments are ignored and the greeting is kept.
    pub(super) fn rset(&mut self) {
        self.reset_transaction();
        self.reply(OK.reply());
    }

    /// NOOP: the `noop` hook may refuse it (e.g. `noop_counter`).
    pub(super) fn noop(&mut self) {
        let out = self.run(Hook::Noop, Args::None);
        self.respond(&NOOP, out, "");
    }

    /// VRFY: qpsmtpd never verifies addresses unless a plugin says so.
    pub(super) fn vrfy(&mut self, rest: &str) {
        let out = self.run(Hook::Vrfy, Args::Vrfy { arg: rest });
        self.respond(&VRFY, out, "");
    }

    /// HELP: the `help` plugin may answer; otherwise three lines about us.
    pub(super) fn help(&mut self, rest: &str) {
        let topic = (!rest.trim().is_empty()).then(|| rest.trim());
        let out = self.run(Hook::Help, Args::Help { topic });
        self.respond(&HELP, out, "");
    }

    /// QUIT: `221`, then the connection ends whatever the hook said.
    pub(super) fn quit(&mut self) {
        let out = self.run(Hook::Quit, Args::None);
        // Before the reply: a refusal answered earlier in the same pipelined group is not
        // why the connection ends.
        self.summary.end_unless_known(Ending::Quit);
        let me = self.settings.me.clone();
        self.respond(&QUIT, out, &me);
        self.disconnect();
    }

    /// Anything that is not a known verb (and empty lines).
    pub(super) fn unrecognized(&mut self, verb: &str, rest: &str) {
        let out = self.run(Hook::UnrecognizedCommand, Args::Unrecognized { cmd: verb, rest });
        self.respond(&UNRECOGNIZED_COMMAND, out, "");
    }
}
