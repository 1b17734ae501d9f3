//! The answer: action lines, then one verdict line that ends it.
//!
//! ```text
//! note NAME VALUE            set a connection note      note_delete NAME
//! txn_note NAME VALUE        set a transaction note     txn_note_delete NAME
//! header_add Name: value     add a field at the end     header_prepend Name: value (at the top)
//! header_delete Name         remove every field of that name
//! relay_client 1|0           make the client a relay client, or not
//! log LEVEL text             a log line (LEVEL: 0-7 or a name such as LOGINFO, info)
//! reply CODE text            send this reply yourself (then answer DONE)
//! DENY 5.1.1 No such user    the verdict and its message; ends the answer
//! ```
//!
//! A multi-line message repeats the verdict with a dash, as SMTP does: `DENY-first line`,
//! then `DENY last line`. Empty lines are ignored; anything else is garbage.
//!
//! A co-process starts every line of its answer with the request's id and a space
//! (`7 DECLINED`), so that a line written late, twice or by a stray thread cannot be taken
//! as the answer to a later request ([`untag`]).

use crate::log::Level;
use crate::plugin::{Context, Hook, Outcome, Verdict};
use crate::reply::Reply;

use super::facts::unescape;

/// Hooks whose client waits for a reply: `DONE` there must come with `reply` lines.
const REPLY_HOOKS: [Hook; 14] = [
    Hook::Connect,
    Hook::Helo,
    Hook::Ehlo,
    Hook::Mail,
    Hook::Rcpt,
    Hook::RcptPost,
    Hook::Data,
    Hook::DataPost,
    Hook::QueuePre,
    Hook::Queue,
    Hook::Vrfy,
    Hook::Noop,
    Hook::Help,
    Hook::UnrecognizedCommand,
];

/// Hooks where the message header exists and can be edited.
const HEADER_HOOKS: [Hook; 5] = [
    Hook::DataHeadersEnd,
    Hook::DataPostHeaders,
    Hook::DataPost,
    Hook::QueuePre,
    Hook::Queue,
];

/// One action line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Set (`Some`) or delete (`None`) a connection (`txn: false`) or transaction note.
    Note {
        /// Transaction note?
        txn: bool,
        /// The name.
        name: String,
        /// The value, `None` to delete.
        value: Option<String>,
    },
    /// Add a header field at the top or the end.
    HeaderAdd {
        /// At the top?
        top: bool,
        /// Field name.
        name: String,
        /// Field value.
        value: String,
    },
    /// Remove every field of this name.
    HeaderDelete(String),
    /// Grant or take away relaying.
    RelayClient(bool),
    /// A log line.
    Log(Level, String),
    /// A reply line the plugin sends itself.
    Reply(u16, String),
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Actions in order.
    pub actions: Vec<Action>,
    /// The verdict and message.
    pub outcome: Outcome,
    /// Non-empty lines after the verdict line (ignored, but worth a log line).
    pub trailing: usize,
}

/// Is this line a final verdict line (a verdict word followed by a blank or nothing)?
pub fn is_final(line: &str) -> bool {
    matches!(verdict_line(line), Some((_, false, _)))
}

/// Is this line, written by a co-process answering request `id`, the end of the answer?
/// A non-empty line that does not carry `id` ends it too: it is out of step, and
/// [`untag`] says so.
pub fn ends_tagged(line: &str, id: u64) -> bool {
    if line.trim().is_empty() {
        return false;
    }
    match strip_id(line, id) {
        Some(rest) => is_final(rest),
        None => true,
    }
}

/// `"7 OK"` → `Some("OK")` for id 7.
fn strip_id(line: &str, id: u64) -> Option<&str> {
    let (word, rest) = line.split_once(' ')?;
    (word.parse::<u64>().ok()? == id && word == id.to_string()).then_some(rest)
}

/// A co-process's answer lines without their id. A line for another request (a late or
/// doubled answer) or without an id (a stray line) is an error naming it.
pub fn untag(lines: &[String], id: u64) -> Result<Vec<String>, String> {
    let mut out = Vec::with_capacity(lines.len());
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(rest) = strip_id(line, id) {
            out.push(rest.to_string());
            continue;
        }
        let word = line.split(' ').next().unwrap_or("");
        return Err(match word.parse::<u64>() {
            Ok(other) if other < id => format!(
                "an answer to request {other} came while waiting for request {id} (late or doubled): {}",
                shown(line)
            ),
            Ok(other) if other > id => {
                format!(
                    "answered request {other}, but request {id} was asked: {}",
                    shown(line)
                )
            }
            // At the first request the likely cause is a plugin written for the plain form.
            _ if id == 1 => format!(
                "an answer line without the request id {id}: {} (a co-process starts every answer line with the request_id it was sent; see EXTERNAL.md)",
                shown(line)
            ),
            _ => format!("an answer line without the request id {id}: {}", shown(line)),
        });
    }
    Ok(out)
}

/// `DENY text` → (DENY, continued = false, "text"); `DENY-text` → continued.
fn verdict_line(line: &str) -> Option<(Verdict, bool, &str)> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(line.len());
    let verdict = Verdict::from_name(&line[..end])?;
    match line[end..].chars().next() {
        None => Some((verdict, false, "")),
        Some(' ') => Some((verdict, false, &line[end + 1..])),
        Some('-') => Some((verdict, true, &line[end + 1..])),
        Some(_) => None,
    }
}

/// Parses the lines of one answer.
pub fn parse(lines: &[String]) -> Result<Answer, String> {
    let mut actions = Vec::new();
    let mut msg = Vec::new();
    let mut continued: Option<Verdict> = None;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some((verdict, more, text)) = verdict_line(line) {
            if continued.is_some_and(|v| v != verdict) {
                return Err(format!(
                    "{verdict} continues a {} message: {}",
                    continued.map_or("", Verdict::name),
                    shown(line)
                ));
            }
            if !text.is_empty() {
                msg.push(text.to_string());
            }
            if more {
                continued = Some(verdict);
                continue;
            }
            let trailing = lines[i + 1..].iter().filter(|l| !l.trim().is_empty()).count();
            return Ok(Answer {
                actions,
                outcome: Outcome { verdict, msg },
                trailing,
            });
        }
        if continued.is_some() {
            return Err(format!("expected the rest of the message, got: {}", shown(line)));
        }
        actions.push(action(line)?);
    }
    Err(match continued {
        Some(v) => format!("the {v} message never ended"),
        None if lines.iter().all(|l| l.trim().is_empty()) => "no answer".to_string(),
        None => "no verdict line".to_string(),
    })
}

fn action(line: &str) -> Result<Action, String> {
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    let bad = || format!("not understood: {}", shown(line));
    let name_value = |rest: &str| -> Result<(String, String), String> {
        let (name, value) = rest.split_once(' ').unwrap_or((rest, ""));
        if name.is_empty() {
            return Err(bad());
        }
        Ok((unescape(name), unescape(value)))
    };
    Ok(match word {
        "note" | "txn_note" => {
            let (name, value) = name_value(rest)?;
            Action::Note {
                txn: word == "txn_note",
                name,
                value: Some(value),
            }
        }
        "note_delete" | "txn_note_delete" if !rest.is_empty() => Action::Note {
            txn: word == "txn_note_delete",
            name: unescape(rest),
            value: None,
        },
        "header_add" | "header_prepend" => {
            let (name, value) = rest.split_once(':').ok_or_else(bad)?;
            if !valid_field_name(name) {
                return Err(format!("not a header field name: {}", shown(name)));
            }
            Action::HeaderAdd {
                top: word == "header_prepend",
                name: name.to_string(),
                value: unescape(value.strip_prefix(' ').unwrap_or(value)),
            }
        }
        "header_delete" if valid_field_name(rest) => Action::HeaderDelete(rest.to_string()),
        "relay_client" => match rest {
            "1" => Action::RelayClient(true),
            "0" => Action::RelayClient(false),
            _ => return Err(bad()),
        },
        "log" => {
            let (level, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let level = Level::parse(level).ok_or_else(bad)?;
            Action::Log(level, text.to_string())
        }
        "reply" => {
            let (code, text) = rest.split_once(' ').unwrap_or((rest, ""));
            let code = code
                .parse::<u16>()
                .ok()
                .filter(|c| (200..600).contains(c))
                .ok_or_else(bad)?;
            Action::Reply(code, text.to_string())
        }
        _ => return Err(bad()),
    })
}

/// RFC 5322 §3.6.8: printable ASCII except the colon.
fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// A line for a log message: cut and quoted.
pub fn shown(line: &str) -> String {
    let cut: String = line.chars().take(80).collect();
    format!("{cut:?}")
}

/// Carries out the actions and returns the verdict; `Err` when the answer cannot be
/// honoured (`DONE` with no reply where the client waits for one).
pub fn apply(answer: Answer, cx: &mut Context<'_>, hook: Hook) -> Result<Outcome, String> {
    let replied = answer.actions.iter().any(|a| matches!(a, Action::Reply(..)));
    if answer.outcome.verdict == Verdict::Done && !replied && REPLY_HOOKS.contains(&hook) {
        return Err("answered DONE without a reply line; the client would wait forever".into());
    }
    let mut reply: Option<(u16, Vec<String>)> = None;
    for action in answer.actions {
        if let Action::Reply(code, text) = action {
            match reply.as_mut() {
                Some((c, lines)) if *c == code => lines.push(text),
                _ => {
                    if let Some((c, lines)) = reply.take() {
                        cx.respond(Reply::plain_lines(c, lines));
                    }
                    reply = Some((code, vec![text]));
                }
            }
            continue;
        }
        act(action, cx, hook);
    }
    if let Some((code, lines)) = reply {
        cx.respond(Reply::plain_lines(code, lines));
    }
    if answer.trailing > 0 {
        cx.log(
            Level::Warn,
            format_args!("{} lines after the verdict ignored", answer.trailing),
        );
    }
    Ok(answer.outcome)
}

fn act(action: Action, cx: &mut Context<'_>, hook: Hook) {
    match action {
        Action::Note { txn, name, value } => {
            let notes = if txn {
                &mut cx.txn.notes
            } else {
                &mut cx.conn.notes
            };
            match value {
                Some(v) => {
                    notes.insert(name, v);
                }
                None => {
                    notes.remove(&name);
                }
            }
        }
        Action::HeaderAdd { .. } | Action::HeaderDelete(_) if !HEADER_HOOKS.contains(&hook) => {
            cx.log(
                Level::Warn,
                "header edits only apply from data_headers_end to queue; ignored",
            );
        }
        Action::HeaderAdd { top, name, value } => {
            cx.txn.header.add(&name, &value, top.then_some(0));
        }
        Action::HeaderDelete(name) => {
            cx.txn.header.delete(&name);
        }
        Action::RelayClient(on) => cx.conn.relay_client = on,
        Action::Log(level, text) => cx.log(level, text),
        Action::Reply(..) => {}
    }
}

#[cfg(test)]
mod tests;
