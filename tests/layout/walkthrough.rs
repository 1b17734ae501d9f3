//! plugins/README.md walks through a real plugin, badmailfrom: what it quotes must still be
//! the code, so the walk-through cannot drift from what it shows.

use super::sizes::root;

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap()
}

/// The section of plugins/README.md that walks through a plugin.
fn walkthrough() -> String {
    let readme = read("plugins/README.md");
    let start = readme
        .find("## Writing a built-in plugin")
        .expect("plugins/README.md has a \"Writing a built-in plugin\" section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n## ").map_or(rest.len(), |e| e + 1);
    rest[..end].to_string()
}

/// The ```rust blocks of `text`, each as its lines.
fn rust_blocks(text: &str) -> Vec<Vec<String>> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "```rust" {
            let block = lines
                .by_ref()
                .take_while(|l| l.trim() != "```")
                .map(str::to_string)
                .collect();
            blocks.push(block);
        }
    }
    blocks
}

/// The lines of `text`, trimmed, blank ones left out.
fn trimmed(text: &[String]) -> Vec<String> {
    text.iter()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Does `haystack` hold `needle` as consecutive lines?
fn holds(haystack: &[String], needle: &[String]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn the_plugin_walkthrough_quotes_the_real_code() {
    let section = walkthrough();
    let lines = |path: &str| trimmed(&read(path).lines().map(str::to_string).collect::<Vec<_>>());
    let plugin = lines("plugins/badmailfrom/plugin.rs");
    let registry = lines("src/plugin/registry.rs");
    let blocks = rust_blocks(&section);
    assert!(
        blocks.len() >= 4,
        "only {} code blocks in the walk-through",
        blocks.len()
    );
    for block in &blocks {
        // A block with `// ...` shows excerpts: each of its lines must be in the registry.
        let code = trimmed(block);
        if code.iter().any(|l| l == "// ...") {
            for line in code.iter().filter(|l| *l != "// ..." && *l != "];") {
                assert!(registry.contains(line), "src/plugin/registry.rs lacks {line:?}");
            }
        } else {
            assert!(
                holds(&plugin, &code),
                "plugins/badmailfrom/plugin.rs no longer has this block of the walk-through:\n{}",
                code.join("\n")
            );
        }
    }
    let transcript = lines("tests/transcripts/plugins/badmailfrom.smtp");
    let quoted: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .filter(|l| l.starts_with("! ") || l.starts_with("C: ") || l.starts_with("S: "))
        .collect();
    assert!(quoted.len() >= 4, "the walk-through quotes no transcript");
    for line in quoted {
        assert!(
            transcript.iter().any(|t| t == line),
            "tests/transcripts/plugins/badmailfrom.smtp lacks {line:?}"
        );
    }
}
