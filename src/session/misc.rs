//! RSET, NOOP, VRFY, HELP, QUIT and unrecognized commands (reference §3.6, §3.7).

use super::Session;
use crate::VERSION;
use crate::plugin::{Args, Hook, Verdict};
use crate::reply::Reply;

impl Session {
    /// RSET: new transaction; arguments are ignored and the greeting is kept.
    pub(super) fn rset(&mut self) {
        self.reset_transaction();
        self.reply(Reply::new(250, "2.0.0", "OK"));
    }

    /// NOOP: the `noop` hook may refuse it (e.g. `noop_counter`).
    pub(super) fn noop(&mut self) {
        let out = self.run(Hook::Noop, Args::None);
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => self.reply(Reply::from_plugin(
                500,
                "5.5.1",
                &out.msg,
                "Stop wasting my time.",
            )),
            Verdict::DenyDisconnect => {
                self.reply(Reply::from_plugin(
                    500,
                    "5.5.1",
                    &out.msg,
                    "Stop wasting my time.",
                ));
                self.disconnect();
            }
            Verdict::Ok | Verdict::Declined | Verdict::DenySoft | Verdict::DenySoftDisconnect => {
                self.reply(Reply::new(250, "2.0.0", "OK"))
            }
        }
    }

    /// VRFY: qpsmtpd never verifies addresses unless a plugin says so.
    pub(super) fn vrfy(&mut self, rest: &str) {
        let out = self.run(Hook::Vrfy, Args::Vrfy { arg: rest });
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => {
                self.reply(Reply::from_plugin(554, "5.7.1", &out.msg, "Access Denied"));
                self.reset_transaction();
            }
            Verdict::Ok => self.reply(Reply::from_plugin(250, "2.1.5", &out.msg, "User OK")),
            Verdict::Declined | Verdict::DenySoft | Verdict::DenyDisconnect | Verdict::DenySoftDisconnect => {
                self.reply(Reply::new(
                    252,
                    "2.5.2",
                    "Just try sending a mail and we'll see how it turns out ...",
                ))
            }
        }
    }

    /// HELP: the `help` plugin may answer; otherwise three lines about us.
    pub(super) fn help(&mut self, rest: &str) {
        let topic = (!rest.trim().is_empty()).then(|| rest.trim());
        let out = self.run(Hook::Help, Args::Help { topic });
        match out.verdict {
            Verdict::Done => {}
            Verdict::Deny => self.reply(Reply::from_plugin(
                500,
                "5.5.2",
                &out.msg,
                "Syntax error, command not recognized",
            )),
            Verdict::Ok
            | Verdict::Declined
            | Verdict::DenySoft
            | Verdict::DenyDisconnect
            | Verdict::DenySoftDisconnect => {
                let mut msg = out.msg;
                if msg.is_empty() {
                    msg = vec![
                        format!("This is qpsmtpd-rs {VERSION}"),
                        "Commands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT".to_string(),
                        "See the qpsmtpd-rs(8) manual page for details.".to_string(),
                    ];
                }
                self.reply(Reply::from_plugin(214, "2.0.0", &msg, ""));
            }
        }
    }

    /// QUIT: `221`, then the connection ends whatever the hook said.
    pub(super) fn quit(&mut self) {
        let out = self.run(Hook::Quit, Args::None);
        if out.verdict != Verdict::Done {
            let bye = format!("{} closing connection. Have a wonderful day.", self.settings.me);
            self.reply(Reply::from_plugin(221, "2.0.0", &out.msg, &bye));
        }
        if self.summary.outcome.is_empty() {
            self.summary.outcome = "quit".into();
        }
        self.disconnect();
    }

    /// Anything that is not a known verb (and empty lines).
    pub(super) fn unrecognized(&mut self, verb: &str, rest: &str) {
        let out = self.run(Hook::UnrecognizedCommand, Args::Unrecognized { cmd: verb, rest });
        match out.verdict {
            Verdict::Done => {}
            Verdict::DenyDisconnect => {
                self.reply(Reply::from_plugin(521, "5.5.1", &out.msg, "Closing connection"));
                self.summary.outcome = "too many unrecognized commands".into();
                self.disconnect();
            }
            Verdict::Deny => self.reply(Reply::from_plugin(500, "5.5.1", &out.msg, "Unrecognized command")),
            Verdict::Ok | Verdict::Declined | Verdict::DenySoft | Verdict::DenySoftDisconnect => {
                self.reply(Reply::new(500, "5.5.1", "Unrecognized command"))
            }
        }
    }
}
