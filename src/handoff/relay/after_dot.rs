//! The next hop's answer to the final dot.

use super::super::clean_text;
use super::super::smtp::{Error, Reply};
use super::{ForwardFailure, Session, more_than_asked};
use crate::plugin::{Context, Outcome};

/// LMTP: one reply per accepted recipient after the final dot; and whether all were
/// `250` with nothing more sent.
pub(super) fn lmtp_replies(
    cx: &Context<'_>,
    s: &mut Session,
) -> Result<(Vec<(String, Reply)>, bool), ForwardFailure> {
    let mut replies = Vec::new();
    for rcpt in &s.accepted {
        let reply = s.client.read_reply()?;
        match s.client.judge("the final dot", reply, &[250]) {
            Ok(r) | Err(Error::Refused(r)) => replies.push((rcpt.clone(), r)),
            Err(e) => return Err(e.into()),
        }
    }
    let clean = replies.iter().all(|(_, r)| r.code == 250);
    if let Err(e) = s.client.nothing_more() {
        return Err(more_than_asked(cx, e, clean));
    }
    Ok((replies, clean))
}

/// SMTP: the one reply to the final dot, which must be `250`; its queue id goes into
/// ours.
pub(super) fn smtp_reply(cx: &Context<'_>, s: &mut Session) -> Result<Outcome, ForwardFailure> {
    let reply = s.client.read_reply()?;
    let reply = s.client.judge("the final dot", reply, &[250])?;
    if let Err(e) = s.client.nothing_more() {
        return Err(more_than_asked(cx, e, true));
    }
    let id = reply
        .lines
        .last()
        .and_then(|l| l.split(' ').next_back())
        .unwrap_or("");
    Ok(Outcome::ok_with(
        format!("Queued! queued as {}", clean_text(id))
            .trim_end()
            .to_string(),
    ))
}
