//! Reading config files: regular files only, opened without waiting; `$include`; the
//! TOML file's values as lines.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::ConfigError;

/// Opens a file for reading without waiting (a FIFO with no writer, a device), then makes
/// sure it is a regular file. For every file a config names (the TLS files too).
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    open_regular_sized(path).map(|(file, _)| file)
}

/// A config file up to this size is read whole into a buffer of its size (most are a
/// line or a few); a larger one is read a buffer at a time, so that a large list is never
/// held twice.
pub(super) const WHOLE_FILE_MAX: u64 = 64 * 1024;

/// A config file, opened by [`open_regular`].
pub(super) enum Opened {
    /// Its content, when its size was 1 to [`WHOLE_FILE_MAX`] bytes.
    Whole(Vec<u8>),
    /// A larger file, or one that reports size 0 but may still have content (a file some
    /// kernels generate on read), to be read a buffer at a time.
    Stream(File),
}

/// Opens a config file and reads it whole if it is small.
pub(super) fn open_config_file(path: &Path) -> std::io::Result<Opened> {
    let (file, size) = open_regular_sized(path)?;
    match usize::try_from(size) {
        Ok(size) if size > 0 && size as u64 <= WHOLE_FILE_MAX => {
            read_known_size(file, size).map(Opened::Whole)
        }
        _ => Ok(Opened::Stream(file)),
    }
}

/// `dir.join(name)`, without `Path::join`'s parse of `dir` into components (a few
/// hundred instructions per config item, every session) in the usual case of a relative
/// name and a directory not ending in `/`.
pub(super) fn join(dir: &Path, name: &str) -> PathBuf {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let dir_bytes = dir.as_os_str().as_bytes();
    if name.starts_with('/') || dir_bytes.is_empty() || dir_bytes.ends_with(b"/") {
        return dir.join(name);
    }
    let mut path = Vec::with_capacity(dir_bytes.len() + 1 + name.len());
    path.extend_from_slice(dir_bytes);
    path.push(b'/');
    path.extend_from_slice(name.as_bytes());
    PathBuf::from(std::ffi::OsString::from_vec(path))
}

/// [`open_regular`], with the file's size when opened.
fn open_regular_sized(path: &Path) -> std::io::Result<(File, u64)> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
    }
    if !meta.is_file() {
        return Err(std::io::Error::other(
            "not a regular file (a FIFO, device or socket is not read)",
        ));
    }
    Ok((file, meta.len()))
}

/// The first `size` bytes of a file whose size is known: one read for a small file,
/// without the read at the end that only finds end-of-file. (What a writer appends after
/// the size was taken is left for the next process; a file that shrank meanwhile is
/// read to its end.)
fn read_known_size(mut file: File, size: usize) -> std::io::Result<Vec<u8>> {
    let mut bytes = vec![0; size];
    let mut got = 0;
    while got < size {
        match file.read(&mut bytes[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    bytes.truncate(got);
    Ok(bytes)
}

/// The content of a regular file (see [`open_regular`]).
pub(super) fn read_regular(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    open_regular(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Read as root, an included file must be readable by everybody: otherwise the account
/// that serves (or whoever wrote the including file) could get root to put its lines
/// into a log. The error names the file only.
pub(super) fn everybody_may_read(path: &Path) -> Result<(), ConfigError> {
    let meta = std::fs::metadata(path).map_err(|e| read_error(path, &e))?;
    if meta.permissions().mode() & 0o004 != 0 {
        return Ok(());
    }
    Err(ConfigError::Read {
        path: path.to_path_buf(),
        reason: "$include is not followed, as root, into a file that not everybody may read".into(),
    })
}

/// The names of the entries of a directory.
pub(super) fn list_names(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        // The name's own buffer becomes the String when it is UTF-8 (no second copy).
        let name = entry?.file_name();
        names.insert(
            name.into_string()
                .unwrap_or_else(|n| n.to_string_lossy().into_owned()),
        );
    }
    Ok(names)
}

/// `$include <path>` (qpsmtpd: `^\s*\$include\s+(\S+)\s*$`).
pub(super) fn include_target(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("$include")?;
    if !rest.starts_with(char::is_whitespace) {
        return None;
    }
    let target = rest.trim();
    (!target.is_empty() && !target.contains(char::is_whitespace)).then_some(target)
}

/// The files an include names: the file itself, or every plain file of a directory that
/// does not start with `.`, in sorted order.
pub(super) fn include_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)?
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// A TOML value as config lines: a string (split at newlines), a number, a boolean
/// (`1`/`0`), or an array of those.
pub(super) fn toml_lines(name: &str, value: &toml::Value) -> Result<Vec<String>, String> {
    fn scalar(v: &toml::Value) -> Option<String> {
        match v {
            toml::Value::String(s) => Some(s.clone()),
            toml::Value::Integer(i) => Some(i.to_string()),
            toml::Value::Float(f) => Some(f.to_string()),
            toml::Value::Boolean(b) => Some(if *b { "1" } else { "0" }.to_string()),
            _ => None,
        }
    }
    let bad = || format!("{name}: expected a string, number, boolean or an array of them");
    let items: Vec<String> = match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect::<Option<_>>().ok_or_else(bad)?,
        other => vec![scalar(other).ok_or_else(bad)?],
    };
    Ok(items
        .iter()
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect())
}

pub(super) fn line_of_offset(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count() + 1)
}

pub(super) fn read_error(path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

/// A line as read, its LF and any CR before it dropped, as text: checked as UTF-8 whole
/// (word at a time for ASCII), converted lossily (a byte at a time) only if it is not.
pub(super) fn line_text(raw: &[u8]) -> Cow<'_, str> {
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match std::str::from_utf8(line) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(line),
    }
}

/// A line without blanks at either end. One that starts and ends with a printable ASCII
/// character (the usual list entry) has none, and is not scanned for Unicode blanks.
pub(super) fn trimmed(raw: &str) -> &str {
    let bytes = raw.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) if first.is_ascii_graphic() && last.is_ascii_graphic() => raw,
        _ => raw.trim(),
    }
}
