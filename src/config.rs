//! The config directory: qpsmtpd's control files, read once per process on first use.
//!
//! Lookup of a name (qpsmtpd's `Qpsmtpd::Config`): the value from `qpsmtpd-rs.toml` in the config
//! directory if it sets that name, else the file `<dir>/<name>`, else
//! `$QMAIL/control/<name>` (qmail compatibility, as qpsmtpd does), else nothing. File syntax
//! is qpsmtpd's: one item per line, leading and trailing blanks trimmed, blank lines and
//! lines starting with `#` dropped, no inline comments, and `$include <path>` splicing in
//! a file or every file of a directory. A missing file is "not set"; a file that exists
//! but cannot be read is an error, never silently empty.
//!
//! Files are opened without waiting (`O_NONBLOCK`) and must then be regular files: a FIFO,
//! a device or a socket named as a config file or by `$include` is refused instead of
//! hanging the session. Read as root on behalf of another account (`user` and `group`
//! before the switch), `$include` is followed only into files everybody may read, so that
//! a line of a private file (`/etc/shadow`) can never reach a log in an error message
//! about the value; a session that serves as root reads what root may read.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::cdb::Cdb;

mod error;
mod files;
mod lines;

use files::{
    Opened, everybody_may_read, include_files, include_target, join, line_of_offset, line_text, list_names,
    open_config_file, read_error, read_regular, toml_lines, trimmed,
};
use lines::Store;

pub use error::ConfigError;
pub use files::open_regular;
pub use lines::{Entry, EntryRef, Lines};

/// The TOML file that may hold any config item instead of its own file.
pub const TOML_FILE: &str = "qpsmtpd-rs.toml";

/// The config directory used when neither `--config` nor `QPSMTPD_CONFIG` names one.
pub const DEFAULT_DIR: &str = "/etc/qpsmtpd-rs";

/// Nesting limit for `$include` (qpsmtpd detects loops; a depth limit also stops them).
const MAX_INCLUDE_DEPTH: usize = 16;

/// The config directory with its per-process cache.
#[derive(Debug)]
pub struct Config {
    dir: PathBuf,
    /// The names in `dir` when it was opened.
    names: BTreeSet<String>,
    qmail_control: Option<PathBuf>,
    toml: Option<(PathBuf, toml::Table)>,
    cache: RefCell<BTreeMap<String, Lines>>,
    /// The value of every item that is set nowhere, shared: most of the items a session
    /// asks about are absent, and answering them costs no allocation.
    unset: Lines,
    /// Read with root's rights on behalf of another account (`user` and `group` before
    /// the switch): `$include` only into files everybody may read.
    as_root: bool,
}

impl Config {
    /// Opens a config directory. `qmail_control` is the fallback directory
    /// (`$QMAIL/control`). Parses `qpsmtpd-rs.toml` if the directory has one.
    pub fn open(dir: &Path, qmail_control: Option<PathBuf>) -> Result<Config, ConfigError> {
        // One directory listing answers "is there such a file" for every item a session
        // asks about (most are absent), instead of one stat each. A typo in --config must
        // not quietly run with no plugins at all.
        let names = list_names(dir).map_err(|e| ConfigError::Read {
            path: dir.to_path_buf(),
            reason: match e.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    "config directory does not exist (or is not a directory)".into()
                }
                _ => e.to_string(),
            },
        })?;
        let toml_path = dir.join(TOML_FILE);
        let toml = if !names.contains(TOML_FILE) {
            None
        } else {
            match read_regular(&toml_path).map(|b| String::from_utf8_lossy(&b).into_owned()) {
                Ok(text) => {
                    let table = text.parse::<toml::Table>().map_err(|e| ConfigError::Invalid {
                        path: toml_path.clone(),
                        line: line_of_offset(&text, e.span().map_or(0, |s| s.start)),
                        reason: e.message().to_string(),
                    })?;
                    Some((toml_path, table))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => return Err(read_error(&toml_path, &e)),
            }
        };
        Ok(Config {
            dir: dir.to_path_buf(),
            names,
            qmail_control,
            toml,
            cache: RefCell::new(BTreeMap::new()),
            unset: Lines::default(),
            as_root: nix::unistd::geteuid().is_root(),
        })
    }

    /// The config as the account that serves reads it, after any switch: whatever it may
    /// read it may include, also when it serves as root (`user root`).
    /// Items already read under the stricter rule are read again.
    pub fn read_by_serving_account(mut self) -> Config {
        if self.as_root {
            self.as_root = false;
            self.cache.get_mut().clear();
        }
        self
    }

    /// A config with no directory at all (every item unset); for tests and `--help`.
    pub fn empty() -> Config {
        Config {
            dir: PathBuf::from("/nonexistent"),
            names: BTreeSet::new(),
            qmail_control: None,
            toml: None,
            cache: RefCell::new(BTreeMap::new()),
            unset: Lines::default(),
            as_root: false,
        }
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// All lines of a config item (empty if unset).
    pub fn lines(&self, name: &str) -> Result<Lines, ConfigError> {
        if let Some(hit) = self.cache.borrow().get(name) {
            return Ok(hit.clone());
        }
        if self.unset_everywhere(name) {
            return Ok(self.unset.clone());
        }
        let mut store = self.load(name)?;
        store.shrink_to_fit();
        let lines = Lines(Rc::new(store));
        self.cache.borrow_mut().insert(name.to_string(), lines.clone());
        Ok(lines)
    }

    /// The first line of a config item.
    pub fn first(&self, name: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.lines(name)?.first().map(str::to_string))
    }

    /// The first line parsed as a number; a value that is not a number is an error.
    pub fn number(&self, name: &str) -> Result<Option<u64>, ConfigError> {
        let lines = self.lines(name)?;
        let Some(entry) = lines.first_entry() else {
            return Ok(None);
        };
        entry
            .text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ConfigError::Invalid {
                path: entry.file.to_path_buf(),
                line: entry.line,
                reason: format!("{name} must be a whole number, not {:?}", entry.text),
            })
    }

    /// The first line as a whole number of seconds, at most `max`: a larger one is an
    /// error naming the file and line (a wait that long is a typo, and beyond about
    /// 292 billion years it overflows the clock's arithmetic).
    pub fn seconds(&self, name: &str, max: u64) -> Result<Option<u64>, ConfigError> {
        let Some(n) = self.number(name)? else {
            return Ok(None);
        };
        if n <= max {
            return Ok(Some(n));
        }
        let lines = self.lines(name)?;
        let (path, line) = lines
            .first_entry()
            .map_or((self.dir.join(name), 0), |e| (e.file.to_path_buf(), e.line));
        Err(ConfigError::Invalid {
            path,
            line,
            reason: format!("{name} must be at most {max} seconds, not {n}"),
        })
    }

    /// The file that provides a name, if any (the TOML file when it sets the name).
    pub fn source_of(&self, name: &str) -> Option<PathBuf> {
        if let Some((path, table)) = &self.toml
            && table.contains_key(name)
        {
            return Some(path.clone());
        }
        self.file_path(name)
    }

    /// Names set both in the TOML file and as files (the TOML value wins); for `--check`.
    pub fn shadowed_files(&self) -> Vec<PathBuf> {
        let Some((_, table)) = &self.toml else {
            return Vec::new();
        };
        table
            .keys()
            .map(|k| self.dir.join(k))
            .filter(|p| p.exists())
            .collect()
    }

    /// Opens `<name>.cdb` (qpsmtpd's `config($name, 'map')`).
    pub fn cdb(&self, name: &str) -> Result<Option<Cdb>, ConfigError> {
        let file = format!("{name}.cdb");
        let Some(path) = self.file_path(&file) else {
            return Ok(None);
        };
        // The same check as for every config file before the cdb code opens it.
        match open_regular(&path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(read_error(&path, &e)),
        }
        Cdb::open(&path).map_err(|e| read_error(&path, &e))
    }

    /// Is `name` known to be set nowhere, from what was read at open alone (not in the
    /// TOML file, not in the directory listing, and no qmail control directory that
    /// would need a look)?
    fn unset_everywhere(&self, name: &str) -> bool {
        self.qmail_control.is_none()
            && !name.contains('/')
            && !self.names.contains(name)
            && self
                .toml
                .as_ref()
                .is_none_or(|(_, table)| !table.contains_key(name))
    }

    /// Where the file for `name` is: the config dir first, then qmail's control dir.
    fn file_path(&self, name: &str) -> Option<PathBuf> {
        if name.is_empty() || name.contains('\0') {
            return None;
        }
        // A plain name is answered from the listing; a name with a directory part
        // (`help/mail`, `dkim/...`) is looked at directly.
        let in_dir = match name.split_once('/') {
            None => self.names.contains(name),
            Some(_) => std::fs::symlink_metadata(join(&self.dir, name)).is_ok(),
        };
        if in_dir {
            return Some(join(&self.dir, name));
        }
        self.qmail_control
            .as_ref()
            .map(|d| join(d, name))
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
    }

    fn load(&self, name: &str) -> Result<Store, ConfigError> {
        if let Some((path, table)) = &self.toml
            && let Some(value) = table.get(name)
        {
            let texts = toml_lines(name, value).map_err(|reason| ConfigError::Invalid {
                path: path.clone(),
                line: 0,
                reason,
            })?;
            let mut out = Store::default();
            for text in texts {
                self.push_line(&mut out, &text, path, 0, 0)?;
            }
            return Ok(out);
        }
        let mut out = Store::default();
        if let Some(path) = self.file_path(name) {
            self.read_file(&mut out, &path, 0)?;
        }
        Ok(out)
    }

    /// Reads a file line by line.
    fn read_file(&self, out: &mut Store, path: &Path, depth: usize) -> Result<(), ConfigError> {
        use std::io::BufRead;
        let file = match open_config_file(path).map_err(|e| read_error(path, &e))? {
            Opened::Stream(file) => file,
            Opened::Whole(bytes) => {
                out.reserve(bytes.len(), bytes.iter().filter(|b| **b == b'\n').count() + 1);
                for (number, raw) in bytes.split_inclusive(|b| *b == b'\n').enumerate() {
                    self.push_line(out, &line_text(raw), path, number + 1, depth)?;
                }
                return Ok(());
            }
        };
        let mut reader = std::io::BufReader::with_capacity(64 * 1024, file);
        let mut raw = Vec::new();
        let mut number = 0;
        loop {
            raw.clear();
            if reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| read_error(path, &e))?
                == 0
            {
                return Ok(());
            }
            number += 1;
            self.push_line(out, &line_text(&raw), path, number, depth)?;
        }
    }

    /// Adds one raw line: trimmed, comments dropped, `$include` expanded.
    fn push_line(
        &self,
        out: &mut Store,
        raw: &str,
        file: &Path,
        line: usize,
        depth: usize,
    ) -> Result<(), ConfigError> {
        let text = trimmed(raw);
        if text.is_empty() || text.starts_with('#') {
            return Ok(());
        }
        if let Some(target) = include_target(text) {
            if depth >= MAX_INCLUDE_DEPTH {
                return Err(ConfigError::Invalid {
                    path: file.to_path_buf(),
                    line,
                    reason: format!("$include nested too deeply (a loop?) at {target}"),
                });
            }
            let path = self.include_path(target);
            for f in include_files(&path).map_err(|e| read_error(&path, &e))? {
                if self.as_root {
                    everybody_may_read(&f)?;
                }
                self.read_file(out, &f, depth + 1)?;
            }
            return Ok(());
        }
        out.push(text, file, line);
        Ok(())
    }

    /// An absolute include path is used as is; a relative one is looked up like a name.
    fn include_path(&self, target: &str) -> PathBuf {
        let p = Path::new(target);
        if p.is_absolute() {
            return p.to_path_buf();
        }
        self.file_path(target).unwrap_or_else(|| self.dir.join(target))
    }
}

#[cfg(test)]
mod tests;
