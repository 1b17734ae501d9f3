//! The reply each verdict of each hook gives, as one table: qpsmtpd's `*_respond`
//! subroutines of Qpsmtpd::SMTP (`connect_respond`, `mail_respond`, `rcpt_respond`, ...),
//! one [`Row`] per hook, so that the two can be compared side by side. A cell says whether
//! the command goes on ([`Act::Go`]: the session does its part and answers itself),
//! which reply is sent ([`Act::Say`]: code, enhanced status code, text) and what follows
//! it ([`Then`]), or that nothing is sent ([`Act::Quiet`]: the plugin answered itself).
//!
//! Where a row differs from qpsmtpd 1.00, the difference is deliberate and numbered in
//! README "Differences from Perl qpsmtpd": a refused HELO/EHLO gets one reply (5), a deny
//! without text gets the default text instead of no reply (6), `queue_pre` refusals get
//! `451` (7), the `data` hook's `DENYSOFT_DISCONNECT` is `421` as in 0.94 (12), AUTH
//! failures all get the one `535` (82) and a password store that cannot answer `454`.
//! `rcpt_post` is not a qpsmtpd hook. plugins/README.md shows this table to plugin
//! authors; a unit test keeps the two in step.

mod apply;
#[cfg(test)]
mod tests;

use super::fixed::{AUTH_TEMPORARY, CREDENTIALS_INVALID};
use super::summary::Ending;
use crate::plugin::Hook;
use apply::{fixed, named, plugin, plugin_then};

pub use apply::{Act, Answer, Row, Text, Then, answer};

const GO: Act = Act::Go(0);
const QUIET: Act = Act::Quiet;

// Texts and endings used more than once.
const CONNECT_DENIED: &str = "Connection from you denied, bye bye.";
const CONNECT_DEFERRED: &str = "Connection from you temporarily denied, bye bye.";
const REFUSED_AT_CONNECT: Then = Then::CloseAs(Ending::RefusedAtConnect);
const DEFERRED_AT_CONNECT: Then = Then::CloseAs(Ending::DeferredAtConnect);
const DENIED: &str = "Message denied";
const DENIED_LATER: &str = "Message denied temporarily";
const NOT_QUEUED: &str = "Queuing declined or disabled; try again later";
const VRFY_DEFAULT: &str = "Just try sending a mail and we'll see how it turns out ...";
const BYE: &str = "<me> closing connection. Have a wonderful day.";
const UNRECOGNIZED: &str = "Unrecognized command";
const TOO_MANY_UNRECOGNIZED: Then = Then::CloseAs(Ending::TooManyUnrecognized);

/// The three lines of HELP when no plugin answers.
const HELP_TEXT: &str = concat!(
    "This is qpsmtpd-rs ",
    env!("CARGO_PKG_VERSION"),
    "\nCommands: HELO EHLO MAIL RCPT DATA RSET NOOP VRFY HELP QUIT",
    "\nSee the qpsmtpd-rs(8) manual page for details."
);

/// `connect`: the greeting, or a refusal that closes the connection.
pub static CONNECT: Row = Row {
    hook: Hook::Connect,
    ok: Act::Go(220),
    declined: Act::Go(220),
    deny: plugin_then(550, "5.7.1", CONNECT_DENIED, REFUSED_AT_CONNECT),
    denysoft: plugin_then(450, "4.7.1", CONNECT_DEFERRED, DEFERRED_AT_CONNECT),
    deny_disconnect: plugin_then(550, "5.7.1", CONNECT_DENIED, REFUSED_AT_CONNECT),
    denysoft_disconnect: plugin_then(450, "4.7.1", CONNECT_DEFERRED, DEFERRED_AT_CONNECT),
    done: QUIET,
};

/// `helo`.
pub static HELO: Row = Row {
    hook: Hook::Helo,
    ok: Act::Go(250),
    declined: Act::Go(250),
    deny: plugin(550, "5.7.1", "<host>: HELO denied"),
    denysoft: plugin(450, "4.7.1", "<host>: HELO denied"),
    deny_disconnect: plugin_then(550, "5.7.1", "<host>: HELO denied", Then::Close),
    denysoft_disconnect: plugin_then(450, "4.7.1", "<host>: HELO denied", Then::Close),
    done: QUIET,
};

/// `ehlo`.
pub static EHLO: Row = Row {
    hook: Hook::Ehlo,
    ok: Act::Go(250),
    declined: Act::Go(250),
    deny: plugin(550, "5.7.1", "<host>: EHLO denied"),
    denysoft: plugin(450, "4.7.1", "<host>: EHLO denied"),
    deny_disconnect: plugin_then(550, "5.7.1", "<host>: EHLO denied", Then::Close),
    denysoft_disconnect: plugin_then(450, "4.7.1", "<host>: EHLO denied", Then::Close),
    done: QUIET,
};

/// `mail`.
pub static MAIL: Row = Row {
    hook: Hook::Mail,
    ok: Act::Go(250),
    declined: Act::Go(250),
    deny: plugin(550, "5.7.1", "<sender>, denied"),
    denysoft: plugin(450, "4.7.1", "<sender>, temporarily denied"),
    deny_disconnect: plugin_then(550, "5.7.1", "<sender>, denied", Then::Close),
    denysoft_disconnect: plugin_then(421, "4.7.1", "<sender>, temporarily denied", Then::Close),
    done: QUIET,
};

/// `rcpt`: without a plugin that says OK, never an open relay.
pub static RCPT: Row = Row {
    hook: Hook::Rcpt,
    ok: Act::Go(250),
    declined: fixed(450, "4.7.1", "No plugin decided if relaying is allowed"),
    deny: plugin(550, "5.7.1", "relaying denied"),
    denysoft: plugin(450, "4.7.1", "relaying denied"),
    deny_disconnect: plugin_then(550, "5.7.1", "delivery denied", Then::Close),
    denysoft_disconnect: plugin_then(421, "4.7.1", "relaying denied", Then::Close),
    done: QUIET,
};

/// `rcpt_post` (ours): the next hop's answer for this recipient, asked at RCPT time.
pub static RCPT_POST: Row = Row {
    hook: Hook::RcptPost,
    ok: Act::Go(250),
    declined: Act::Go(250),
    deny: plugin(550, "5.1.1", "delivery denied"),
    denysoft: plugin(450, "4.4.0", "delivery denied"),
    deny_disconnect: plugin_then(550, "5.1.1", "delivery denied", Then::Close),
    denysoft_disconnect: plugin_then(421, "4.4.0", "delivery denied", Then::Close),
    done: QUIET,
};

/// `data`: runs before the MAIL and RCPT checks, as in qpsmtpd.
pub static DATA: Row = Row {
    hook: Hook::Data,
    ok: Act::Go(354),
    declined: Act::Go(354),
    deny: plugin_then(554, "5.7.1", DENIED, Then::Reset),
    denysoft: plugin_then(451, "4.7.1", DENIED_LATER, Then::Reset),
    deny_disconnect: plugin_then(554, "5.7.1", DENIED, Then::Close),
    denysoft_disconnect: plugin_then(421, "4.7.1", DENIED_LATER, Then::Close),
    done: QUIET,
};

/// `data_headers_end`: only the verdicts that close the connection act.
pub static DATA_HEADERS_END: Row = Row {
    hook: Hook::DataHeadersEnd,
    ok: GO,
    declined: GO,
    deny: GO,
    denysoft: GO,
    deny_disconnect: plugin_then(554, "5.7.1", DENIED, Then::Close),
    denysoft_disconnect: plugin_then(421, "4.7.1", DENIED_LATER, Then::Close),
    done: GO,
};

/// `data_post`: the message is complete; refused here, it is never queued.
pub static DATA_POST: Row = Row {
    hook: Hook::DataPost,
    ok: GO,
    declined: GO,
    deny: plugin_then(552, "5.7.1", DENIED, Then::Refuse),
    denysoft: plugin_then(452, "4.7.1", DENIED_LATER, Then::Refuse),
    deny_disconnect: plugin_then(552, "5.7.1", DENIED, Then::RefuseAndClose),
    denysoft_disconnect: plugin_then(452, "4.7.1", DENIED_LATER, Then::RefuseAndClose),
    done: QUIET,
};

/// `queue_pre`: any refusal is a temporary one (Perl sent no reply at all).
pub static QUEUE_PRE: Row = Row {
    hook: Hook::QueuePre,
    ok: GO,
    declined: GO,
    deny: plugin_then(451, "4.3.0", NOT_QUEUED, Then::Refuse),
    denysoft: plugin_then(451, "4.3.0", NOT_QUEUED, Then::Refuse),
    deny_disconnect: plugin_then(451, "4.3.0", NOT_QUEUED, Then::Refuse),
    denysoft_disconnect: plugin_then(451, "4.3.0", NOT_QUEUED, Then::Refuse),
    done: QUIET,
};

/// `queue`: `250` only for `OK`, which a queue plugin gives once the message is durably
/// handed off. The transaction is forgotten before the reply whatever it is.
pub static QUEUE: Row = Row {
    hook: Hook::Queue,
    ok: plugin(250, "2.0.0", "Queued"),
    declined: plugin(451, "4.3.0", NOT_QUEUED),
    deny: plugin(552, "5.3.0", DENIED),
    denysoft: plugin(452, "4.3.0", DENIED_LATER),
    deny_disconnect: plugin(451, "4.3.0", NOT_QUEUED),
    denysoft_disconnect: plugin(451, "4.3.0", NOT_QUEUED),
    done: QUIET,
};

/// `vrfy`: qpsmtpd never verifies an address unless a plugin does.
pub static VRFY: Row = Row {
    hook: Hook::Vrfy,
    ok: plugin(250, "2.1.5", "User OK"),
    declined: fixed(252, "2.5.2", VRFY_DEFAULT),
    deny: plugin_then(554, "5.7.1", "Access Denied", Then::Reset),
    denysoft: fixed(252, "2.5.2", VRFY_DEFAULT),
    deny_disconnect: fixed(252, "2.5.2", VRFY_DEFAULT),
    denysoft_disconnect: fixed(252, "2.5.2", VRFY_DEFAULT),
    done: QUIET,
};

/// `noop`.
pub static NOOP: Row = Row {
    hook: Hook::Noop,
    ok: fixed(250, "2.0.0", "OK"),
    declined: fixed(250, "2.0.0", "OK"),
    deny: plugin(500, "5.5.1", "Stop wasting my time."),
    denysoft: fixed(250, "2.0.0", "OK"),
    deny_disconnect: plugin_then(500, "5.5.1", "Stop wasting my time.", Then::Close),
    denysoft_disconnect: fixed(250, "2.0.0", "OK"),
    done: QUIET,
};

/// `help`: the `help` plugin's text, else three lines about us.
pub static HELP: Row = Row {
    hook: Hook::Help,
    ok: plugin(214, "2.0.0", HELP_TEXT),
    declined: plugin(214, "2.0.0", HELP_TEXT),
    deny: plugin(500, "5.5.2", "Syntax error, command not recognized"),
    denysoft: plugin(214, "2.0.0", HELP_TEXT),
    deny_disconnect: plugin(214, "2.0.0", HELP_TEXT),
    denysoft_disconnect: plugin(214, "2.0.0", HELP_TEXT),
    done: QUIET,
};

/// `quit`: the connection ends whatever the verdict (after `DONE` too, without a reply).
pub static QUIT: Row = Row {
    hook: Hook::Quit,
    ok: plugin_then(221, "2.0.0", BYE, Then::Close),
    declined: plugin_then(221, "2.0.0", BYE, Then::Close),
    deny: plugin_then(221, "2.0.0", BYE, Then::Close),
    denysoft: plugin_then(221, "2.0.0", BYE, Then::Close),
    deny_disconnect: plugin_then(221, "2.0.0", BYE, Then::Close),
    denysoft_disconnect: plugin_then(221, "2.0.0", BYE, Then::Close),
    done: QUIET,
};

/// `unrecognized_command` (and empty lines): `DENY_DISCONNECT` is how
/// `count_unrecognized_commands` ends the connection.
pub static UNRECOGNIZED_COMMAND: Row = Row {
    hook: Hook::UnrecognizedCommand,
    ok: fixed(500, "5.5.1", UNRECOGNIZED),
    declined: fixed(500, "5.5.1", UNRECOGNIZED),
    deny: plugin(500, "5.5.1", UNRECOGNIZED),
    denysoft: fixed(500, "5.5.1", UNRECOGNIZED),
    deny_disconnect: plugin_then(521, "5.5.1", "Closing connection", TOO_MANY_UNRECOGNIZED),
    denysoft_disconnect: fixed(500, "5.5.1", UNRECOGNIZED),
    done: QUIET,
};

/// `auth-<mech>`, then `auth`: the plugin's text goes to the log only, so that a client
/// cannot tell an unknown user from a wrong password (`DONE` is a failure too).
pub static AUTH: Row = Row {
    hook: Hook::Auth,
    ok: Act::Go(235),
    declined: named(CREDENTIALS_INVALID, Then::Fail),
    deny: named(CREDENTIALS_INVALID, Then::Fail),
    denysoft: named(AUTH_TEMPORARY, Then::Stay),
    deny_disconnect: named(CREDENTIALS_INVALID, Then::FailAndClose),
    denysoft_disconnect: named(AUTH_TEMPORARY, Then::Close),
    done: named(CREDENTIALS_INVALID, Then::Fail),
};

/// Every row, in the order the hooks fire (a function: a static array of the rows'
/// addresses would be seventeen more relocations at every start).
pub fn rows() -> [&'static Row; 17] {
    [
        &CONNECT,
        &HELO,
        &EHLO,
        &AUTH,
        &MAIL,
        &RCPT,
        &RCPT_POST,
        &DATA,
        &DATA_HEADERS_END,
        &DATA_POST,
        &QUEUE_PRE,
        &QUEUE,
        &VRFY,
        &NOOP,
        &HELP,
        &QUIT,
        &UNRECOGNIZED_COMMAND,
    ]
}
