//! Comments and docs cite what a reader can open: an RFC section, a README Differences
//! number, qpsmtpd's own files. Never a document that is not in the repository, nor a
//! machine's own paths.

use std::path::{Path, PathBuf};

use regex::Regex;

use super::sizes::root;

/// What points outside the repository: numbered quirks and sections of an outside
/// document, its name, the machine's paths. (Each pattern is written so that it does not
/// match its own source.)
fn outside_pointers() -> Vec<Regex> {
    [
        r"quirks?\s+#?\d",
        r"reference\s*§",
        r"qpsmtpd-behaviou[r]",
        r"/wor[k]/",
        r"shared/referenc[e]",
        r"\b(style|crates|components)\.md\b",
    ]
    .iter()
    // ASCII classes and case: the crate is built without its Unicode tables.
    .map(|p| Regex::new(&format!("(?i-u){p}")).unwrap())
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

fn hits(file: &Path, patterns: &[Regex]) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new(); // not text
    };
    let shown = file.strip_prefix(root()).unwrap_or(file).display().to_string();
    text.lines()
        .enumerate()
        .filter(|(_, line)| patterns.iter().any(|p| p.is_match(line)))
        .map(|(n, line)| format!("{shown}:{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn nothing_cites_a_document_outside_the_repository() {
    let patterns = outside_pointers();
    let files = text_files();
    assert!(files.len() > 300, "found only {} files", files.len());
    let found: Vec<String> = files.iter().flat_map(|f| hits(f, &patterns)).collect();
    assert!(
        found.is_empty(),
        "cite an RFC section, README Differences N or qpsmtpd's own files instead:\n{}",
        found.join("\n")
    );
}
