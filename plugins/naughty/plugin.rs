//! naughty: carries out rejections other plugins deferred with `reject naughty`.
//! See README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{
    Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values, reject_type,
};

/// The plugin instance.
pub struct Naughty {
    at: Hook,
    reject_type: Verdict,
}

/// `naughty [reject connect|mail|rcpt|data|data_post] [reject_type ...]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut at = Hook::Rcpt;
    let mut rtype = Verdict::DenyDisconnect;
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "reject" => {
                at = match v.to_ascii_lowercase().as_str() {
                    "connect" => Hook::Connect,
                    "mail" => Hook::Mail,
                    "rcpt" => Hook::Rcpt,
                    "data" => Hook::Data,
                    "data_post" => Hook::DataPost,
                    other => {
                        return Err(PluginError::Args(format!(
                            "reject must be connect, mail, rcpt, data or data_post, not {other:?}"
                        )));
                    }
                }
            }
            "reject_type" => rtype = reject_type(&v).ok_or_else(|| format!("unknown reject_type {v:?}"))?,
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: reject, reject_type)"
                )));
            }
        }
    }
    Ok(Box::new(Naughty {
        at,
        reject_type: rtype,
    }))
}

impl Plugin for Naughty {
    fn hooks(&self) -> Vec<Hook> {
        if self.at == Hook::DataPost {
            vec![Hook::DataPost]
        } else {
            vec![self.at, Hook::DataPost]
        }
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let Some(msg) = cx.conn.notes.get("naughty").filter(|m| !m.is_empty()).cloned() else {
            cx.log(Level::Info, "pass");
            return Outcome::declined();
        };
        let verdict = cx
            .conn
            .notes
            .get("naughty_reject_type")
            .and_then(|t| reject_type(t))
            .unwrap_or(self.reject_type);
        cx.log(Level::Info, format_args!("rejecting: {msg}"));
        Outcome::with(verdict, msg)
    }
}
