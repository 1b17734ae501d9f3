//! help: answers `HELP <command>` from help files. See README.md beside this file.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values};
use crate::reply::Reply;

/// The largest help file sent; a larger one is not read (any client can ask for it).
const MAX_HELP_FILE: u64 = 64 * 1024;

/// The plugin instance.
pub struct Help {
    not_implemented: bool,
    help_dir: Option<PathBuf>,
    files: BTreeMap<String, PathBuf>,
}

/// `help [not_implemented 1] [help_dir DIR] [COMMAND FILE ...]`; relative paths are
/// taken from the config directory.
pub fn new(spec: &PluginSpec, config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
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
            return Err(PluginError::Args(format!("invalid argument {k:?}")));
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
        match read_help(&file) {
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

/// A help file's text. Opened without waiting and only if it is a regular file, so a
/// FIFO or a device in the help directory cannot stall the session or fill memory, and
/// read only up to [`MAX_HELP_FILE`].
fn read_help(path: &Path) -> io::Result<String> {
    let file = crate::config::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(MAX_HELP_FILE + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_HELP_FILE {
        return Err(io::Error::other(format!("larger than {MAX_HELP_FILE} bytes")));
    }
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;
    use crate::plugin::testing;

    /// `HELP <topic>` against a help directory, on a thread: a help file that blocks
    /// must show as a failed test, not as a test run that never ends.
    fn ask(dir: &Path, topic: &'static str) -> Option<Vec<String>> {
        let dir = dir.to_path_buf();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let config = Config::open(&dir, None).unwrap();
            let help_dir = dir.join("help");
            let spec = testing::spec("help", &["help_dir", help_dir.to_str().unwrap()]);
            let plugin = new(&spec, &config).unwrap();
            let args = Args::Help { topic: Some(topic) };
            let _ = tx.send(testing::run(plugin, &config, Hook::Help, args).out.msg);
        });
        rx.recv_timeout(Duration::from_secs(5)).ok()
    }

    fn help_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("help")).unwrap();
        dir
    }

    #[test]
    fn a_help_file_is_answered_line_by_line() {
        let dir = help_dir();
        std::fs::write(
            dir.path().join("help/mail"),
            "MAIL FROM:<a>\n\nstarts a message\n",
        )
        .unwrap();
        let lines = ask(dir.path(), "MAIL").expect("answered");
        assert_eq!(lines, vec!["MAIL FROM:<a>", "", "starts a message"]);
    }

    #[test]
    fn a_topic_that_is_not_a_word_opens_no_file() {
        let config = Config::empty();
        let plugin = new(&testing::spec("help", &[]), &config).unwrap();
        let args = Args::Help {
            topic: Some("../../etc/passwd"),
        };
        let ran = testing::run(plugin, &config, Hook::Help, args);
        assert_eq!(ran.out.verdict, Verdict::Done);
        assert_eq!(
            ran.replies,
            vec![Reply::new(502, "5.5.2", "Invalid command name")]
        );
    }

    #[test]
    fn a_fifo_in_the_help_directory_does_not_hang_the_session() {
        let dir = help_dir();
        nix::unistd::mkfifo(&dir.path().join("help/mail"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let lines = ask(dir.path(), "mail").expect("HELP on a FIFO must answer at once");
        assert_eq!(lines, vec!["No help available for SMTP command: mail"]);
    }

    #[test]
    fn a_help_file_too_large_to_send_is_not_read_into_memory() {
        let dir = help_dir();
        let file = std::fs::File::create(dir.path().join("help/data")).unwrap();
        file.set_len(50 * 1024 * 1024).unwrap();
        let lines = ask(dir.path(), "data").expect("answered");
        let size: usize = lines.iter().map(String::len).sum();
        assert!(size < 100, "{} bytes of help sent", size);
        assert_eq!(lines, vec!["No help available for SMTP command: data"]);
    }

    #[test]
    fn a_device_in_the_help_directory_is_not_read() {
        let dir = help_dir();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("help/rset")).unwrap();
        let lines = ask(dir.path(), "rset").expect("answered");
        assert_eq!(lines, vec!["No help available for SMTP command: rset"]);
    }
}
