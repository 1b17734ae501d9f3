//! Comments and docs cite what a reader can open: an RFC section, a README Differences
//! number, qpsmtpd's own files. Never a document that is not in the repository, nor a
//! machine's own paths.

use std::path::{Path, PathBuf};

use super::sizes::root;

/// Words that point outside the repository. Written in two pieces so this file does not
/// find itself.
fn outside_pointers() -> Vec<String> {
    [
        ("quirk", " "),
        ("reference", " §"),
        ("reference", "§"),
        ("qpsmtpd-", "behaviour"),
        ("/work", "/"),
        ("shared/", "reference"),
        ("style", ".md"),
        ("crates", ".md"),
        ("components", ".md"),
    ]
    .iter()
    .map(|(a, b)| format!("{a}{b}"))
    .collect()
}

/// Every file the repository keeps as text: below its folders (not `target/`, not fuzz
/// corpora and artifacts, which are data) and the top-level docs.
fn text_files() -> Vec<PathBuf> {
    let top = [
        "src",
        "plugins",
        "tests",
        "doc",
        "config",
        "packaging",
        "bench",
        "examples",
        "fuzz",
        ".ci",
    ];
    let mut out: Vec<PathBuf> = ["README.md", "Cargo.toml"]
        .iter()
        .map(|f| root().join(f))
        .collect();
    let mut stack: Vec<PathBuf> = top.iter().map(|d| root().join(d)).collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() && !["corpus", "artifacts", "target", "coverage"].contains(&name) {
                stack.push(path);
            } else if path.is_file() {
                out.push(path);
            }
        }
    }
    out
}

fn hits(file: &Path, words: &[String]) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new(); // not text
    };
    let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    text.lines()
        .enumerate()
        .filter(|(_, line)| {
            let line = line.to_lowercase();
            words.iter().any(|w| line.contains(w.as_str()))
        })
        .map(|(n, line)| format!("{shown}:{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn nothing_cites_a_document_outside_the_repository() {
    let words = outside_pointers();
    let files = text_files();
    assert!(files.len() > 300, "found only {} files", files.len());
    let found: Vec<String> = files.iter().flat_map(|f| hits(f, &words)).collect();
    assert!(
        found.is_empty(),
        "cite an RFC section, README Differences N or qpsmtpd's own files instead:\n{}",
        found.join("\n")
    );
}
