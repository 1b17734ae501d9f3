//! qpsmtpd's return codes ([`Verdict`]) and what a plugin answers ([`Outcome`]).

use std::fmt;

use crate::config::ConfigError;

/// Makes the enum, `name()`, `number()` and `ALL` from `Variant = ("NAME", number)` rows.
macro_rules! verdicts {
    ($( $(#[$doc:meta])* $variant:ident = ($name:literal, $number:literal), )*) => {
        /// qpsmtpd's return codes (`Qpsmtpd::Constants`).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Verdict {
            $( $(#[$doc])* $variant, )*
        }

        impl Verdict {
            /// Every verdict.
            pub const ALL: [Verdict; [$(Verdict::$variant),*].len()] = [$(Verdict::$variant),*];

            /// The constant's name as qpsmtpd writes it.
            pub fn name(self) -> &'static str {
                match self {
                    $( Verdict::$variant => $name, )*
                }
            }

            /// qpsmtpd's numeric value (900…910).
            pub fn number(self) -> u16 {
                match self {
                    $( Verdict::$variant => $number, )*
                }
            }
        }
    };
}

verdicts! {
    /// Accept / stop the chain.
    Ok = ("OK", 900),
    /// Permanent rejection (5xx).
    Deny = ("DENY", 901),
    /// Temporary rejection (4xx).
    DenySoft = ("DENYSOFT", 902),
    /// Permanent rejection, then close the connection (`DENYHARD` is an alias).
    DenyDisconnect = ("DENY_DISCONNECT", 903),
    /// Temporary rejection, then close the connection.
    DenySoftDisconnect = ("DENYSOFT_DISCONNECT", 904),
    /// No opinion; ask the next plugin.
    Declined = ("DECLINED", 909),
    /// Stop; the plugin has already replied to the client.
    Done = ("DONE", 910),
}

impl Verdict {
    /// Parses a constant's name (`DENYHARD` = `DENY_DISCONNECT`), case-insensitively.
    pub fn from_name(name: &str) -> Option<Verdict> {
        let name = name.to_ascii_uppercase();
        if name == "DENYHARD" {
            return Some(Verdict::DenyDisconnect);
        }
        Verdict::ALL.into_iter().find(|v| v.name() == name)
    }

    /// Is this one of the four rejections?
    pub fn is_deny(self) -> bool {
        matches!(
            self,
            Verdict::Deny | Verdict::DenySoft | Verdict::DenyDisconnect | Verdict::DenySoftDisconnect
        )
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a plugin (or the whole chain) answered: a verdict and its message lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The return code.
    pub verdict: Verdict,
    /// The message, one element per reply line (an element containing `\n` is split).
    pub msg: Vec<String>,
}

impl Outcome {
    /// A verdict with no message.
    pub fn new(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            msg: Vec::new(),
        }
    }

    /// A verdict with a one-line message.
    pub fn with(verdict: Verdict, msg: impl Into<String>) -> Outcome {
        Outcome {
            verdict,
            msg: vec![msg.into()],
        }
    }

    /// `DECLINED`.
    pub fn declined() -> Outcome {
        Outcome::new(Verdict::Declined)
    }

    /// `OK`.
    pub fn ok() -> Outcome {
        Outcome::new(Verdict::Ok)
    }

    /// `OK` with a message (for `*_pre`, `config`, `received_line` and queue answers).
    pub fn ok_with(msg: impl Into<String>) -> Outcome {
        Outcome::with(Verdict::Ok, msg)
    }

    /// The first message line, if any.
    pub fn first_msg(&self) -> Option<&str> {
        self.msg.first().map(String::as_str)
    }
}

/// A config error inside a hook becomes a temporary failure: an unreadable list must not
/// turn into "nothing is listed" (qpsmtpd only warned and carried on).
impl From<ConfigError> for Outcome {
    fn from(_: ConfigError) -> Outcome {
        Outcome::with(
            Verdict::DenySoft,
            "4.3.0 Local configuration problem; please try again later",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names() {
        assert_eq!(Verdict::from_name("denyhard"), Some(Verdict::DenyDisconnect));
        assert_eq!(
            Verdict::from_name("DENYSOFT_DISCONNECT"),
            Some(Verdict::DenySoftDisconnect)
        );
        assert_eq!(Verdict::from_name("declined"), Some(Verdict::Declined));
        assert_eq!(Verdict::from_name("maybe"), None);
        assert_eq!(Verdict::Declined.number(), 909);
        assert!(Verdict::DenySoft.is_deny() && !Verdict::Done.is_deny());
    }
}
