//! How a line of `config/plugins` is read: the plugin's name, instance and arguments, and
//! the `loglevel` argument every plugin takes.

use std::path::Path;
use std::rc::Rc;

use crate::log::Level;

use super::LoadError;

/// How a plugin line of `config/plugins` was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginSpec {
    /// The name as written (`relay`, `queue/maildir`, `relay:0`).
    pub name: String,
    /// The arguments after the name.
    pub args: Vec<String>,
    /// The file the line came from (shared by the lines of one file).
    pub file: Rc<Path>,
    /// The line number in that file.
    pub line: usize,
    /// `loglevel N` / `loglevel +N` from the arguments (taken out of `args`).
    pub log_adjust: Option<LogAdjust>,
}

impl PluginSpec {
    /// The name without an `:N` instance suffix.
    pub fn base(&self) -> &str {
        self.name
            .split_once(':')
            .map_or(&self.name, |(base, _instance)| base)
    }
}

/// qpsmtpd's per-plugin `loglevel` argument (`Qpsmtpd::Plugin::adjust_log_level`): a level
/// (0–7 or a name) at which all of the plugin's lines are logged, or `+N`/`-N` to move
/// each line that many levels (higher numbers are more verbose, so `+1` hides more).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogAdjust {
    /// Every line at this level.
    Fixed(Level),
    /// Every line moved by this many levels.
    Shift(i8),
}

impl LogAdjust {
    /// Parses `6`, `LOGINFO`, `+1`, `-2`.
    pub fn parse(s: &str) -> Option<LogAdjust> {
        if let Some(level) = Level::parse(s) {
            return Some(LogAdjust::Fixed(level));
        }
        let (sign, digit) = s.split_at_checked(1)?;
        let n: i8 = digit.parse().ok().filter(|n| (0..=7).contains(n))?;
        match sign {
            "+" => Some(LogAdjust::Shift(n)),
            "-" => Some(LogAdjust::Shift(-n)),
            _ => None,
        }
    }

    /// The level a line logged at `level` ends up at.
    pub fn apply(self, level: Level) -> Level {
        match self {
            LogAdjust::Fixed(l) => l,
            LogAdjust::Shift(n) => Level::from_number((level as i8 + n).clamp(0, 7) as u8).unwrap_or(level),
        }
    }
}

/// `name arg arg ...` (line `line` of `file`, which the lines of one file share);
/// `name:N` is another instance of `name`; printable ASCII only.
pub(crate) fn parse_spec(text: &str, file: Rc<Path>, line: usize) -> Result<PluginSpec, LoadError> {
    let err = |message: String| LoadError {
        file: file.to_path_buf(),
        line,
        message,
    };
    if !text.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t') {
        return Err(err("unsafe characters in plugin line".into()));
    }
    // Printable ASCII and tabs only from here: ASCII white space is all the white space,
    // and a two-byte search needs no substring searcher.
    let mut words = text.split_ascii_whitespace();
    let name = words.next().unwrap_or_default();
    if name.as_bytes().windows(2).any(|w| w == b"::") {
        return Err(err(format!(
            "{name}: Perl module plugins cannot be loaded; run it as an external plugin program instead"
        )));
    }
    // `loglevel` is a key every plugin takes (qpsmtpd's base class reads it), so it is
    // taken out here wherever it stands as a key of key/value arguments (an even position
    // among them), the first time, with its value.
    let mut args = Vec::new();
    let mut log_adjust = None;
    while let Some(word) = words.next() {
        let key_position = args.len() % 2 == 0;
        if key_position
            && log_adjust.is_none()
            && word == "loglevel"
            && let Some(value) = words.next()
        {
            log_adjust = Some(LogAdjust::parse(value).ok_or_else(|| {
                err(format!(
                    "{name}: invalid loglevel {value:?} (0-7, LOGINFO, +N or -N)"
                ))
            })?);
            continue;
        }
        args.push(word.to_string());
    }
    Ok(PluginSpec {
        name: name.to_string(),
        args,
        file,
        line,
        log_adjust,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_parsing() {
        let parse = |t: &str| parse_spec(t, Rc::from(Path::new("plugins")), 3);
        let s = parse("relay:0 only 1").unwrap();
        assert_eq!(
            (s.name.as_str(), s.base(), s.args.clone()),
            ("relay:0", "relay", vec!["only".to_string(), "1".to_string()])
        );
        assert!(parse("My::Plugin").is_err());
        let s = parse("badmailfrom reject 0 loglevel -1").unwrap();
        assert_eq!(s.args, vec!["reject".to_string(), "0".to_string()]);
        assert_eq!(s.log_adjust, Some(LogAdjust::Shift(-1)));
        assert!(parse("relay loglevel loud").is_err());
        let e = parse("relay \u{7f}").unwrap_err();
        assert_eq!(e.line, 3);
    }
}
