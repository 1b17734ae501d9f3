//! The repository's own consistency: every plugin folder has its README, every built-in
//! is registered and documented, the shipped sample config passes `--check`, files and
//! functions stay small, nothing but tests unwraps or panics, citations point inside the
//! repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use qpsmtpd_rs::plugin::registry::{BUILTINS, LOG_SINKS};

use crate::support::{binary, root};

/// Nothing cites a document outside the repository.
mod citations;
/// No unwrap, expect or panic outside tests in src/ and plugins/.
mod panics;
/// unsafe: forbidden in the library, explained where the binary needs it.
mod safety;
/// File and function sizes in src/ and plugins/.
mod sizes;
/// plugins/README.md's walk-through quotes the real plugin.
mod walkthrough;

/// Folders below plugins/ that hold a plugin (Rust `plugin.rs` or an executable program).
fn plugin_folders() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root().join("plugins")];
    while let Some(d) = stack.pop() {
        let entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        let has_program = entries
            .iter()
            .any(|p| p.is_file() && p.file_name() != Some("README.md".as_ref()) && p.extension().is_none());
        if entries.iter().any(|p| p.ends_with("plugin.rs")) || has_program {
            out.push(d.clone());
        }
        stack.extend(entries.into_iter().filter(|p| p.is_dir()));
    }
    out
}

fn name_of(folder: &Path) -> String {
    folder
        .strip_prefix(root().join("plugins"))
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn every_plugin_folder_has_a_readme() {
    let folders = plugin_folders();
    assert!(folders.len() > 20, "found only {} plugin folders", folders.len());
    for f in &folders {
        assert!(f.join("README.md").is_file(), "{} has no README.md", name_of(f));
    }
}

#[test]
fn every_rust_plugin_is_registered_and_documented() {
    let registry = std::fs::read_to_string(root().join("src/plugin/registry.rs")).unwrap();
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let man = std::fs::read_to_string(root().join("doc/qpsmtpd-rs.8"))
        .unwrap()
        .replace("\\-", "-");
    let registered: Vec<&str> = BUILTINS
        .iter()
        .map(|(n, _)| *n)
        .chain(LOG_SINKS.iter().map(|(n, _)| *n))
        .collect();
    for f in plugin_folders()
        .into_iter()
        .filter(|f| f.join("plugin.rs").is_file())
    {
        let name = name_of(&f);
        assert!(
            registry.contains(&format!("\"../../plugins/{name}/plugin.rs\"")),
            "plugins/{name}/plugin.rs is not compiled in by src/plugin/registry.rs"
        );
        assert!(
            registered.contains(&name.as_str()),
            "{name} is not in BUILTINS or LOG_SINKS"
        );
    }
    for name in &registered {
        // logging/devnull is the few lines at the end of logging/warn.
        let folder = if *name == "logging/devnull" {
            "logging/warn"
        } else {
            name
        };
        assert!(
            root().join("plugins").join(folder).join("plugin.rs").is_file(),
            "{name} has no folder"
        );
        assert!(
            readme.contains(&format!("(plugins/{folder}/README.md)")),
            "README.md's plugin list lacks {name}"
        );
        assert!(man.contains(name), "the man page does not mention {name}");
    }
}

#[test]
fn the_sample_config_passes_check() {
    let out = Command::new(binary())
        .args(["--check", "--allow-root", "--config"])
        .arg(root().join("config"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "--check failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("queue/maildir"), "{text}");
}
