//! Finding an external plugin program: the plugin directories, searched in order.
//!
//! `plugin_dirs` (one directory per line, relative ones under the config directory)
//! replaces the default list: `<config dir>/plugins.d`, then
//! `/usr/local/lib/qpsmtpd-rs/plugins`, then `/usr/lib/qpsmtpd-rs/plugins`. In each
//! directory the name is a file (`rcpt_list`) or a folder holding a program of the same
//! name (`rcpt_list/rcpt_list`), the layout of the examples under `plugins/`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::config::Config;

/// The directories searched after `<config dir>/plugins.d` when `plugin_dirs` is not set.
pub const SYSTEM_DIRS: [&str; 2] = ["/usr/local/lib/qpsmtpd-rs/plugins", "/usr/lib/qpsmtpd-rs/plugins"];

/// The plugin directories in search order.
pub fn plugin_dirs(config: &Config) -> Result<Vec<PathBuf>, String> {
    let lines = config.lines("plugin_dirs").map_err(|e| e.to_string())?;
    if lines.is_empty() {
        let mut dirs = vec![config.dir().join("plugins.d")];
        dirs.extend(SYSTEM_DIRS.iter().map(PathBuf::from));
        return Ok(dirs);
    }
    Ok(lines.iter().map(|d| config.dir().join(d)).collect())
}

/// The program a plugin name stands for: `Ok(None)` when no directory has it, `Err` when
/// the name is unsafe or the file found is not executable.
pub fn find(name: &str, dirs: &[PathBuf]) -> Result<Option<PathBuf>, String> {
    let path = Path::new(name);
    if path.is_absolute() {
        return if path.exists() {
            executable(path).map(Some)
        } else {
            Ok(None)
        };
    }
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(format!("{name}: a plugin name must not contain . or .. parts"));
    }
    let Some(last) = path.file_name() else {
        return Ok(None);
    };
    for dir in dirs {
        let candidate = dir.join(path);
        if candidate.is_dir() {
            let inner = candidate.join(last);
            if inner.exists() {
                return executable(&inner).map(Some);
            }
        } else if candidate.exists() {
            return executable(&candidate).map(Some);
        }
    }
    Ok(None)
}

/// A regular file with an execute bit, or an error that says what is wrong.
fn executable(path: &Path) -> Result<PathBuf, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("{} is not executable (chmod +x it)", path.display()));
    }
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn file_folder_and_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let script = |p: &Path, mode: u32| {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "#!/bin/sh\n").unwrap();
            fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
        };
        script(&b.path().join("flat"), 0o755);
        script(&a.path().join("foldered/foldered"), 0o755);
        script(&b.path().join("foldered"), 0o755);
        script(&a.path().join("plain"), 0o644);
        let dirs = vec![a.path().to_path_buf(), b.path().to_path_buf()];
        assert_eq!(find("flat", &dirs).unwrap(), Some(b.path().join("flat")));
        assert_eq!(
            find("foldered", &dirs).unwrap(),
            Some(a.path().join("foldered/foldered"))
        );
        assert!(find("plain", &dirs).unwrap_err().contains("not executable"));
        assert_eq!(find("missing", &dirs).unwrap(), None);
        assert!(find("../flat", &dirs).is_err());
        let abs = b.path().join("flat");
        assert_eq!(find(abs.to_str().unwrap(), &[]).unwrap(), Some(abs));
    }

    #[test]
    fn defaults_and_relative_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        let dirs = plugin_dirs(&config).unwrap();
        assert_eq!(dirs[0], dir.path().join("plugins.d"));
        assert_eq!(dirs.len(), 3);
        fs::write(dir.path().join("plugin_dirs"), "mine\n/opt/p\n").unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        assert_eq!(
            plugin_dirs(&config).unwrap(),
            vec![dir.path().join("mine"), PathBuf::from("/opt/p")]
        );
    }
}
