//! qpsmtpd's hook names, from one table.
//!
//! The table below is the only list: the enum, [`Hook::ALL`] and [`Hook::name`] are made
//! from it, so a hook added here is known everywhere at once.

use std::fmt;

/// Makes the enum, `ALL` and `name()` from `Variant = "name"` rows.
macro_rules! hooks {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// The hooks of qpsmtpd's tcpserver flavour (`Qpsmtpd::Plugin` `@hooks`), in
        /// firing order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Hook {
            $( $(#[$doc])* $variant, )*
        }

        impl Hook {
            /// How many hooks there are.
            pub const COUNT: usize = [$(Hook::$variant),*].len();

            /// Every hook, in qpsmtpd's order.
            pub const ALL: [Hook; Hook::COUNT] = [$(Hook::$variant),*];

            /// The name as qpsmtpd spells it (`post-connection`, `auth-cram-md5`).
            pub fn name(self) -> &'static str {
                match self {
                    $( Hook::$variant => $name, )*
                }
            }
        }
    };
}

hooks! {
    /// Declared, never fired: log destinations are log sinks (`config/logging`).
    Logging = "logging",
    /// A config item is read: `OK` with lines overrides the file.
    Config = "config",
    /// Declared, never fired (qpsmtpd's per-user config).
    UserConfig = "user_config",
    /// Declared, never fired (qpsmtpd's tcpserver flavour never fired it either).
    PostFork = "post-fork",
    /// Declared, never fired (qpsmtpd's tcpserver flavour never fired it either).
    PreConnection = "pre-connection",
    /// The client connected; before the greeting.
    Connect = "connect",
    /// Parses the EHLO arguments.
    EhloParse = "ehlo_parse",
    /// EHLO.
    Ehlo = "ehlo",
    /// Parses the HELO arguments.
    HeloParse = "helo_parse",
    /// HELO.
    Helo = "helo",
    /// Parses the AUTH arguments.
    AuthParse = "auth_parse",
    /// AUTH with any mechanism.
    Auth = "auth",
    /// AUTH PLAIN.
    AuthPlain = "auth-plain",
    /// AUTH LOGIN.
    AuthLogin = "auth-login",
    /// AUTH CRAM-MD5.
    AuthCramMd5 = "auth-cram-md5",
    /// Parses the RCPT arguments.
    RcptParse = "rcpt_parse",
    /// RCPT, before the address is parsed.
    RcptPre = "rcpt_pre",
    /// RCPT.
    Rcpt = "rcpt",
    /// RCPT, after a recipient was accepted.
    RcptPost = "rcpt_post",
    /// Parses the MAIL arguments.
    MailParse = "mail_parse",
    /// MAIL.
    Mail = "mail",
    /// MAIL, before the address is parsed.
    MailPre = "mail_pre",
    /// DATA, before `354`.
    Data = "data",
    /// The header block of the message has been read.
    DataHeadersEnd = "data_headers_end",
    /// After our own header fields were added.
    DataPostHeaders = "data_post_headers",
    /// The whole message has been read.
    DataPost = "data_post",
    /// Before the queue plugins.
    QueuePre = "queue_pre",
    /// Hands the message off (queue plugins).
    Queue = "queue",
    /// After the message was queued.
    QueuePost = "queue_post",
    /// VRFY.
    Vrfy = "vrfy",
    /// NOOP.
    Noop = "noop",
    /// QUIT.
    Quit = "quit",
    /// A transaction ends (RSET, a new MAIL after a message, the end of the connection).
    ResetTransaction = "reset_transaction",
    /// The connection is being closed.
    Disconnect = "disconnect",
    /// After the connection closed.
    PostConnection = "post-connection",
    /// A command the core does not know.
    UnrecognizedCommand = "unrecognized_command",
    /// A plugin refused something (`DENY*`).
    Deny = "deny",
    /// A plugin answered anything but a refusal.
    Ok = "ok",
    /// Makes the Received header's value.
    ReceivedLine = "received_line",
    /// HELP.
    Help = "help",
}

impl Hook {
    /// Looks a hook up by name; `-` and `_` are interchangeable (qpsmtpd's `hook_<name>`
    /// method names use `_` for `-`).
    pub fn from_name(name: &str) -> Option<Hook> {
        let norm = |s: &str| s.replace('-', "_");
        let want = norm(name);
        Hook::ALL.into_iter().find(|h| norm(h.name()) == want)
    }

    /// Index into per-hook tables.
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hook_names_round_trip() {
        assert_eq!(Hook::ALL.len(), 40);
        for h in Hook::ALL {
            assert_eq!(Hook::from_name(h.name()), Some(h));
            assert_eq!(h.index(), Hook::ALL.iter().position(|x| *x == h).unwrap());
        }
        assert_eq!(Hook::from_name("post_connection"), Some(Hook::PostConnection));
        assert_eq!(Hook::from_name("auth_cram_md5"), Some(Hook::AuthCramMd5));
        assert_eq!(Hook::from_name("rset"), None);
    }
}
