//! The arguments a hook is called with ([`Args`]) and the plugin-line arguments every
//! plugin parses the same way ([`key_values`]).

use crate::address::Address;
use crate::transaction::Params;

use super::{PluginError, Verdict};

/// The arguments of one hook call (qpsmtpd's `@args` after `$self, $transaction`).
#[derive(Debug, Clone, Copy)]
pub enum Args<'a> {
    /// Hooks without arguments.
    None,
    /// `helo`, `ehlo`: the host name and any extra words.
    Hello {
        /// The first word after the verb.
        host: &'a str,
        /// Further words.
        extra: &'a [String],
    },
    /// `helo_parse`, `ehlo_parse`, `mail_parse`, `rcpt_parse`, `auth_parse`: the raw
    /// argument string. A plugin answers `OK` with the parsed parts as message lines
    /// (host and words; or address then parameters) or `DENY` with the 501 text.
    Parse {
        /// Everything after the verb.
        line: &'a str,
    },
    /// `mail_pre`, `rcpt_pre`: the address string before parsing; `OK` with a new string
    /// as the first message line replaces it.
    PreAddress {
        /// The address as the client wrote it.
        addr: &'a str,
        /// The parameters.
        params: &'a Params,
    },
    /// `mail`, `rcpt`: the parsed address and its parameters.
    Address {
        /// The sender or recipient.
        addr: &'a Address,
        /// The parameters.
        params: &'a Params,
    },
    /// `vrfy`: the argument (qpsmtpd passes none; given here for convenience).
    Vrfy {
        /// What the client asked about.
        arg: &'a str,
    },
    /// `help`: the topic, if any.
    Help {
        /// The words after HELP.
        topic: Option<&'a str>,
    },
    /// `unrecognized_command`: the lower-cased verb and the rest of the line.
    Unrecognized {
        /// The verb, lower-cased.
        cmd: &'a str,
        /// The rest of the line.
        rest: &'a str,
    },
    /// `deny`, `ok`: which plugin decided what.
    Decision {
        /// The deciding plugin's name.
        plugin: &'a str,
        /// Its verdict.
        verdict: Verdict,
        /// Its message.
        msg: &'a [String],
    },
    /// `config`: the item asked for. `OK` with message lines overrides the file.
    Config {
        /// The config item name.
        name: &'a str,
    },
    /// `received_line`: the protocol word and the TLS/auth comments; `OK` with lines
    /// replaces the Received header's value.
    ReceivedLine {
        /// `SMTP`, `ESMTP`, `ESMTPS`, `ESMTPA`, `ESMTPSA`.
        smtp: &'a str,
        /// `(smtp-auth username U, mechanism M)` or empty.
        auth: &'a str,
        /// `(TLS details)` or empty.
        tls: &'a str,
    },
    /// `auth`, `auth-plain`, `auth-login`, `auth-cram-md5`.
    Auth {
        /// The mechanism, lower-cased.
        mechanism: &'a str,
        /// The user name.
        user: &'a str,
        /// The clear-text password (PLAIN, LOGIN).
        password: Option<&'a str>,
        /// The client's digest (CRAM-MD5).
        digest: Option<&'a str>,
        /// The challenge sent (CRAM-MD5).
        ticket: Option<&'a str>,
    },
}

/// Parses qpsmtpd-style `key value key value` plugin arguments.
pub fn key_values(args: &[String]) -> Result<Vec<(String, String)>, PluginError> {
    if !args.len().is_multiple_of(2) {
        return Err(PluginError::Args(format!(
            "arguments must be key value pairs, got an odd number: {}",
            args.join(" ")
        )));
    }
    Ok(args.chunks(2).map(|kv| (kv[0].clone(), kv[1].clone())).collect())
}
