//! How an external plugin runs: its hooks, mode, time budget and failure policy.
//!
//! The program declares them in comment lines near its top (`# qpsmtpd-rs: hooks rcpt`),
//! so nothing has to be executed to learn them; the same keys at the start of its line in
//! `config/plugins` override the declaration (`timeout 5 on_failure skip`), which is also
//! how a compiled program without such comments is configured.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::plugin::Hook;

/// The marker that starts a declaration line in the program file.
pub const MARKER: &str = "qpsmtpd-rs:";

/// How much of the program file is searched for declaration lines.
const HEAD_BYTES: u64 = 8 * 1024;

/// The longest time budget accepted (one hour).
pub const MAX_TIMEOUT: f64 = 3600.0;

/// How the program is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A new process for every hook call: it reads one request and exits.
    Once,
    /// One process per connection, started at the first hook call, fed every request.
    Coprocess,
}

/// What a failed call (timeout, crash, garbage, non-zero exit) turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// `DENYSOFT` with `4.3.0 Temporary local problem`: fail closed (the default).
    TempFail,
    /// `DECLINED`: the next plugin decides, as if this one had no opinion.
    Skip,
}

/// Settings from one source (the file's declaration or the config line); unset = `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partial {
    /// `hooks`.
    pub hooks: Option<Vec<Hook>>,
    /// `mode`.
    pub mode: Option<Mode>,
    /// `timeout` (seconds, decimals allowed).
    pub timeout: Option<Duration>,
    /// `on_failure`.
    pub on_failure: Option<OnFailure>,
}

/// The keys a declaration or the start of a config line may set.
pub const KEYS: [&str; 4] = ["hooks", "mode", "timeout", "on_failure"];

impl Partial {
    /// Sets one key from its text value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "hooks" => self.hooks = Some(parse_hooks(value)?),
            "mode" => self.mode = Some(parse_mode(value)?),
            "timeout" => self.timeout = Some(parse_timeout(value)?),
            "on_failure" => self.on_failure = Some(parse_on_failure(value)?),
            other => {
                return Err(format!("unknown setting {other:?} (known: {})", KEYS.join(", ")));
            }
        }
        Ok(())
    }

    /// This source's settings, with `under`'s where this one has none.
    pub fn over(self, under: Partial) -> Partial {
        Partial {
            hooks: self.hooks.or(under.hooks),
            mode: self.mode.or(under.mode),
            timeout: self.timeout.or(under.timeout),
            on_failure: self.on_failure.or(under.on_failure),
        }
    }
}

/// The start of a program file, where its declaration lines are.
pub fn head(path: &Path) -> Result<Vec<u8>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut head = Vec::new();
    // Without waiting: a FIFO put in the program's place must not hang the start.
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .and_then(|f| f.take(HEAD_BYTES).read_to_end(&mut head))
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(head)
}

/// A script needs its `#!` line to be started directly; a compiled program starts with
/// the ELF magic. Anything else would only fail at its first call ("Exec format error").
pub fn check_format(path: &Path, head: &[u8]) -> Result<(), String> {
    if head.starts_with(b"#!") || head.starts_with(b"\x7fELF") {
        return Ok(());
    }
    Err(format!(
        "{} does not start with #! (a script needs its interpreter line, such as #!/bin/sh)",
        path.display()
    ))
}

/// Parses declaration lines out of a file's text.
pub fn declared(text: &str) -> Result<Partial, String> {
    let mut partial = Partial::default();
    for (n, line) in text.lines().enumerate() {
        let Some(at) = line.find(MARKER) else {
            continue;
        };
        let prefix = &line[..at];
        if !prefix
            .chars()
            .all(|c| c.is_whitespace() || "#/*-;%!'".contains(c))
        {
            continue;
        }
        let rest = line[at + MARKER.len()..].trim();
        let (key, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        partial
            .set(key, value.trim())
            .map_err(|e| format!("declaration on line {}: {e}", n + 1))?;
    }
    Ok(partial)
}

/// Takes leading `key value` settings off a config line's arguments (up to `--` or the
/// first word that is not a setting); returns them and the program's own arguments.
pub fn from_args(args: &[String]) -> Result<(Partial, Vec<String>), String> {
    let mut partial = Partial::default();
    let mut i = 0;
    while i < args.len() {
        let word = args[i].as_str();
        if word == "--" {
            i += 1;
            break;
        }
        if !KEYS.contains(&word) {
            break;
        }
        let value = args.get(i + 1).ok_or_else(|| format!("{word} needs a value"))?;
        partial.set(word, value)?;
        i += 2;
    }
    Ok((partial, args[i..].to_vec()))
}

/// `rcpt, data_post` or `rcpt data_post`.
fn parse_hooks(value: &str) -> Result<Vec<Hook>, String> {
    let mut hooks = Vec::new();
    for name in value.split([',', ' ', '\t']).filter(|n| !n.is_empty()) {
        let hook = Hook::from_name(name).ok_or_else(|| format!("unknown hook {name:?}"))?;
        if !hooks.contains(&hook) {
            hooks.push(hook);
        }
    }
    if hooks.is_empty() {
        return Err("hooks: no hook named".into());
    }
    Ok(hooks)
}

fn parse_mode(value: &str) -> Result<Mode, String> {
    match value {
        "once" => Ok(Mode::Once),
        "coprocess" | "co-process" => Ok(Mode::Coprocess),
        other => Err(format!("unknown mode {other:?} (once or coprocess)")),
    }
}

fn parse_timeout(value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= MAX_TIMEOUT)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("timeout {value:?} is not a number of seconds between 0 and 3600"))
}

fn parse_on_failure(value: &str) -> Result<OnFailure, String> {
    match value {
        "tempfail" | "denysoft" => Ok(OnFailure::TempFail),
        "skip" | "declined" => Ok(OnFailure::Skip),
        other => Err(format!("unknown on_failure {other:?} (tempfail or skip)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn declaration_lines_in_comments() {
        let text = "#!/bin/sh\n# qpsmtpd-rs: hooks rcpt, data_post\n#qpsmtpd-rs: mode coprocess\n\
                    // qpsmtpd-rs: timeout 2.5\necho 'qpsmtpd-rs: hooks mail'\n";
        let p = declared(text).unwrap();
        assert_eq!(p.hooks, Some(vec![Hook::Rcpt, Hook::DataPost]));
        assert_eq!(p.mode, Some(Mode::Coprocess));
        assert_eq!(p.timeout, Some(Duration::from_millis(2500)));
        assert_eq!(p.on_failure, None);
        assert!(declared("# qpsmtpd-rs: hooks rcpt_typo\n").is_err());
        assert!(declared("# qpsmtpd-rs: colour blue\n").is_err());
    }

    #[test]
    fn scripts_need_their_interpreter_line() {
        let p = Path::new("x");
        assert!(check_format(p, b"#!/bin/sh\n").is_ok());
        assert!(check_format(p, b"\x7fELF\x02\x01").is_ok());
        assert!(check_format(p, b"# qpsmtpd-rs: hooks rcpt\n").is_err());
    }

    #[test]
    fn leading_settings_on_the_config_line() {
        let (p, rest) = from_args(&words("timeout 1 on_failure skip /etc/list timeout")).unwrap();
        assert_eq!(p.timeout, Some(Duration::from_secs(1)));
        assert_eq!(p.on_failure, Some(OnFailure::Skip));
        assert_eq!(rest, words("/etc/list timeout"));
        let (p, rest) = from_args(&words("-- timeout 3")).unwrap();
        assert_eq!((p, rest), (Partial::default(), words("timeout 3")));
        assert!(from_args(&words("timeout")).is_err());
        assert!(from_args(&words("timeout 0")).is_err());
        assert!(from_args(&words("mode sometimes")).is_err());
    }

    #[test]
    fn line_wins_over_file() {
        let file = declared("# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: timeout 9\n").unwrap();
        let (line, _) = from_args(&words("timeout 2")).unwrap();
        let both = line.over(file);
        assert_eq!(both.hooks, Some(vec![Hook::Rcpt]));
        assert_eq!(both.timeout, Some(Duration::from_secs(2)));
    }
}
