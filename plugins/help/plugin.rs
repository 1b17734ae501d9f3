//! help: answers `HELP <command>` from help files. See README.md beside this file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginSpec, Verdict, key_values};
use crate::reply::Reply;

/// The plugin instance.
pub struct Help {
    not_implemented: bool,
    help_dir: Option<PathBuf>,
    files: BTreeMap<String, PathBuf>,
}

/// `help [not_implemented 1] [help_dir DIR] [COMMAND FILE ...]`; relative paths are
/// taken from the config directory.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, String> {
    let mut help = Help {
        not_implemented: false,
        help_dir: None,
        files: BTreeMap::new(),
    };
    let kv = key_values(&spec.args)?;
    if kv.is_empty() {
        help.help_dir = Some(config.dir().join("help"));
    }
    for (k, v) in kv {
        if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid argument {k:?}"));
        }
        match k.as_str() {
            "not_implemented" => help.not_implemented = v != "0",
            "help_dir" => help.help_dir = Some(resolve(config.dir(), &v)?),
            cmd => {
                help.files
                    .insert(cmd.to_ascii_lowercase(), resolve(config.dir(), &v)?);
            }
        }
    }
    Ok(Box::new(help))
}

fn resolve(dir: &Path, file: &str) -> Result<PathBuf, String> {
    if !file
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
    {
        return Err(format!("invalid characters in file name {file:?}"));
    }
    Ok(dir.join(file))
}

impl Plugin for Help {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Help]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        if self.not_implemented {
            cx.respond(Reply::new(502, "5.5.1", "Not implemented."));
            return Outcome::new(Verdict::Done);
        }
        let topic = match args {
            Args::Help { topic: Some(t) } => t.split_whitespace().next().unwrap_or(""),
            _ => "",
        };
        if topic.is_empty() {
            return Outcome::ok_with("Try 'HELP COMMAND' for getting help on COMMAND");
        }
        let cmd = topic.to_ascii_lowercase();
        // Only a plain word: "HELP ../../etc/passwd" must not read files.
        if !cmd.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            cx.respond(Reply::new(502, "5.5.2", "Invalid command name"));
            return Outcome::new(Verdict::Done);
        }
        let file = self.files.get(&cmd).cloned().or_else(|| {
            self.help_dir
                .as_ref()
                .map(|d| d.join(&cmd))
                .filter(|p| p.exists())
        });
        let none = format!("No help available for SMTP command: {cmd}");
        let Some(file) = file else {
            return Outcome::ok_with(none);
        };
        match std::fs::read_to_string(&file) {
            Ok(text) if !text.trim().is_empty() => Outcome {
                verdict: Verdict::Ok,
                msg: text.lines().map(str::to_string).collect(),
            },
            Ok(_) => Outcome::ok_with(none),
            Err(e) => {
                cx.log(
                    Level::Error,
                    format_args!("failed to open help file {}: {e}", file.display()),
                );
                Outcome::ok_with(none)
            }
        }
    }
}
