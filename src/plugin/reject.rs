//! qpsmtpd's `reject` / `reject_type` plugin arguments (`Qpsmtpd::Plugin::get_reject`).

use crate::log::Level;

use super::{Context, Outcome, PluginError, Verdict};

/// qpsmtpd's `reject` / `reject_type` arguments (`Qpsmtpd::Plugin::get_reject`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// `reject 0`: log only ("fail, tolerated").
    Tolerate,
    /// `reject naughty`: remember the rejection for the `naughty` plugin.
    Naughty(Option<String>),
    /// Reject now with this verdict.
    Now(Verdict),
}

impl Reject {
    /// Reads `reject` and `reject_type` from key/value args; `default_reject` applies when
    /// `reject` is absent.
    pub fn from_args(kv: &[(String, String)], default_reject: bool) -> Result<Reject, PluginError> {
        let get = |k: &str| kv.iter().rev().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let rtype = get("reject_type");
        let verdict = match rtype {
            None => Verdict::Deny,
            Some(t) => {
                reject_type(t).ok_or_else(|| PluginError::Args(format!("unknown reject_type {t:?}")))?
            }
        };
        match get("reject") {
            None if default_reject => Ok(Reject::Now(verdict)),
            None => Ok(Reject::Tolerate),
            Some("naughty") => Ok(Reject::Naughty(rtype.map(str::to_string))),
            Some(v) if v == "0" || v.is_empty() => Ok(Reject::Tolerate),
            Some(_) => Ok(Reject::Now(verdict)),
        }
    }

    /// Applies the policy to a failed check (qpsmtpd `get_reject`).
    pub fn outcome(&self, cx: &mut Context<'_>, msg: &str) -> Outcome {
        match self {
            Reject::Tolerate => {
                cx.log(Level::Info, format_args!("fail, tolerated: {msg}"));
                Outcome::declined()
            }
            Reject::Naughty(rtype) => {
                cx.log(Level::Info, format_args!("fail, NAUGHTY: {msg}"));
                let notes = &mut cx.conn.notes;
                let joined = match notes.get("naughty") {
                    Some(prev) if !prev.is_empty() => format!("{prev}\n{msg}"),
                    _ => msg.to_string(),
                };
                notes.insert("naughty".into(), joined);
                if let Some(t) = rtype {
                    notes
                        .entry("naughty_reject_type".into())
                        .or_insert_with(|| t.clone());
                }
                Outcome::declined()
            }
            Reject::Now(v) => {
                cx.log(Level::Info, format_args!("fail: {msg}"));
                Outcome::with(*v, msg)
            }
        }
    }
}

/// `perm|hard` → DENY, `temp|soft` → DENYSOFT, `disconnect`, `temp_disconnect`.
pub fn reject_type(t: &str) -> Option<Verdict> {
    match t.to_ascii_lowercase().as_str() {
        "perm" | "hard" => Some(Verdict::Deny),
        "temp" | "soft" => Some(Verdict::DenySoft),
        "disconnect" => Some(Verdict::DenyDisconnect),
        "temp_disconnect" => Some(Verdict::DenySoftDisconnect),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reject_args() {
        let kv = |v: &[(&str, &str)]| {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(Reject::from_args(&kv(&[]), true), Ok(Reject::Now(Verdict::Deny)));
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "0")]), true),
            Ok(Reject::Tolerate)
        );
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "1"), ("reject_type", "temp")]), true),
            Ok(Reject::Now(Verdict::DenySoft))
        );
        assert_eq!(
            Reject::from_args(&kv(&[("reject", "naughty")]), true),
            Ok(Reject::Naughty(None))
        );
        assert!(Reject::from_args(&kv(&[("reject_type", "bogus")]), true).is_err());
    }
}
