//! How a forwarding step fails, as our client is to hear it.

use super::super::smtp::{Error, Reply};
use super::super::wire::Trouble;
use crate::log::Level;
use crate::plugin::Context;

/// Why a step failed, as our client is to hear it.
#[derive(Debug)]
pub enum ForwardFailure {
    /// The next hop refused (4xx/5xx); our reply keeps the class.
    Refused(Reply),
    /// Nothing definite: our own temporary text, and what happened for the log.
    Temporary(&'static str, String),
}

impl From<Error> for ForwardFailure {
    fn from(e: Error) -> ForwardFailure {
        match e {
            Error::Refused(r) => ForwardFailure::Refused(r),
            Error::Broken(b) => ForwardFailure::Temporary(b.trouble.client_text(), b.detail),
        }
    }
}

impl ForwardFailure {
    /// What happened, for the log.
    pub fn describe(&self) -> String {
        match self {
            ForwardFailure::Refused(r) => r.describe(),
            ForwardFailure::Temporary(_, detail) => detail.clone(),
        }
    }
}

/// What a failure during DATA means for the retry on a fresh session.
pub(super) enum DataFailure {
    /// The session cannot take DATA (closed, `421`, unsolicited input, an answer out of
    /// protocol): nothing was delivered on it, so a fresh session may be tried.
    Gone(ForwardFailure),
    /// A refusal or a timeout: final.
    Final(ForwardFailure),
}

/// The next hop answered the final dot and then sent more: its replies cannot be
/// trusted to belong to this message, so the client is told to try again, which may
/// deliver a second copy where the next hop had taken it.
pub(super) fn more_than_asked(cx: &Context<'_>, e: Error, said_250: bool) -> ForwardFailure {
    if said_250 {
        cx.log(
            Level::Warn,
            format_args!(
                "the next hop accepted the message but then sent more ({}); answering 4xx, so the retry may deliver it twice",
                e.describe()
            ),
        );
    }
    e.into()
}

/// Did MAIL fail because the connection went away (closed, `421`, out of step), rather
/// than because the next hop refused the sender or is slow?
pub(super) fn gone_between_messages(e: &Error) -> bool {
    match e {
        Error::Refused(r) => r.code == 421,
        Error::Broken(b) => !matches!(b.trouble, Trouble::Timeout | Trouble::Terminated),
    }
}

/// After our client was told `250` for every recipient, a refusal can only fail the whole
/// message, temporarily: nothing was delivered, and the retry gets the refusal at RCPT time.
pub(super) fn second_round(e: Error) -> ForwardFailure {
    match e {
        Error::Refused(r) => ForwardFailure::Temporary(
            "4.4.0 The next hop changed its answer; try again later",
            format!("refused on the second try: {}", r.describe()),
        ),
        broken => broken.into(),
    }
}
