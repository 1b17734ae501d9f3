//! badmailfrom (also loaded as `check_badmailfrom`): refuses senders listed in the
//! `badmailfrom` config file. See README.md beside this file.

use crate::addrlist;
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values};

/// The plugin instance.
pub struct BadMailFrom {
    reject: Reject,
}

/// `badmailfrom [reject 0|1|naughty] [reject_type perm|temp|disconnect|temp_disconnect]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let kv = key_values(&spec.args)?;
    for (k, _) in &kv {
        if !matches!(k.as_str(), "reject" | "reject_type") {
            return Err(PluginError::Args(format!(
                "unknown argument {k:?} (known: reject, reject_type)"
            )));
        }
    }
    Ok(Box::new(BadMailFrom {
        reject: Reject::from_args(&kv, true)?,
    }))
}

impl Plugin for BadMailFrom {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Mail]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Address { addr, .. } = args else {
            return Outcome::declined();
        };
        if cx.is_immune() {
            return Outcome::declined();
        }
        let list = match cx.config("badmailfrom") {
            Ok(l) => l,
            Err(e) => return e.into(),
        };
        let (hit, skipped) = addrlist::find(list.iter(), addr, false);
        for s in skipped {
            cx.log(
                Level::Warn,
                format_args!("badmailfrom: skipping {:?}: {}", s.entry, s.why),
            );
        }
        match hit {
            Some(hit) => {
                let msg = hit
                    .reason
                    .unwrap_or_else(|| "Your envelope sender is in my badmailfrom list".to_string());
                self.reject.outcome(cx, &msg)
            }
            None => {
                cx.log(Level::Info, "pass");
                Outcome::declined()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use crate::plugin::{PluginError, Verdict, testing};

    /// MAIL FROM:<sender> with `badmailfrom` holding `list`, the plugin configured with
    /// `args`.
    fn mail(list: &str, args: &[&str], sender: &str) -> testing::Ran {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("badmailfrom"), list).unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        let plugin = new(&testing::spec("badmailfrom", args), &config).unwrap();
        let addr = Address::parse(sender).unwrap();
        let args = Args::Address {
            addr: &addr,
            params: &Vec::new(),
        };
        testing::run(plugin, &config, Hook::Mail, args)
    }

    #[test]
    fn a_listed_sender_is_refused_with_the_lines_reason() {
        let list = "matt@test.com\n@spam.example We do not take mail from spam.example\n";
        let out = mail(list, &[], "<Matt@Test.COM>").out;
        let default = "Your envelope sender is in my badmailfrom list";
        assert_eq!(out, Outcome::with(Verdict::Deny, default));
        let out = mail(list, &["reject_type", "temp"], "<a@spam.example>").out;
        assert_eq!(
            out,
            Outcome::with(Verdict::DenySoft, "We do not take mail from spam.example")
        );
        assert_eq!(mail(list, &[], "<fine@test.com>").out, Outcome::declined());
    }

    #[test]
    fn with_reject_naughty_the_refusal_waits_in_a_note() {
        let ran = mail("@spam.example\n", &["reject", "naughty"], "<a@spam.example>");
        assert_eq!(ran.out, Outcome::declined());
        let note = ran.conn.notes.get("naughty").map(String::as_str);
        assert_eq!(note, Some("Your envelope sender is in my badmailfrom list"));
    }

    #[test]
    fn arguments_are_checked_when_the_plugin_is_loaded() {
        let config = Config::empty();
        let refused = |args: &[&str]| new(&testing::spec("badmailfrom", args), &config).err();
        assert!(matches!(refused(&["reject"]), Some(PluginError::Args(_))));
        assert!(matches!(refused(&["rejetc", "0"]), Some(PluginError::Args(_))));
        assert!(matches!(
            refused(&["reject_type", "never"]),
            Some(PluginError::Args(_))
        ));
        assert_eq!(refused(&["reject", "0", "reject_type", "temp"]), None);
    }
}
