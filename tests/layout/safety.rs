//! `unsafe` stays where it is: the library denies it and allows it in one module only
//! (src/durable/range.rs, the sync_file_range call), the binary denies it, and each block
//! (that call, signal handlers, adopting UCSPI-TLS descriptors, the binary's own `main`)
//! says why it is sound in a `// SAFETY:` comment just above it.

use std::path::Path;

use super::sizes::{blank, root, rust_files};

/// The one library module allowed `unsafe`, and the line that allows it.
const ALLOWED_MODULE: &str = "src/durable/range.rs";
const ALLOWED_BY: (&str, &str) = ("src/durable.rs", "#[allow(unsafe_code)]\nmod range;\n");

#[test]
fn the_library_denies_unsafe_and_the_binary_denies_it() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("\n#![deny(unsafe_code)]\n"),
        "src/lib.rs lost #![deny(unsafe_code)]"
    );
    let main = std::fs::read_to_string(root().join("src/main.rs")).unwrap();
    assert!(
        main.contains("\n#![deny(unsafe_code)]\n"),
        "src/main.rs lost #![deny(unsafe_code)]"
    );
}

#[test]
fn every_unsafe_block_says_why_it_is_sound() {
    let mut blocks = 0;
    let mut unexplained = Vec::new();
    for file in rust_files(&root().join("src")) {
        let src = std::fs::read_to_string(&file).unwrap();
        let code: String = blank(&src).into_iter().collect();
        let original: Vec<&str> = src.lines().collect();
        for (n, line) in code.lines().enumerate() {
            if !line.contains("unsafe {") {
                continue;
            }
            blocks += 1;
            let above = &original[n.saturating_sub(4)..n];
            if !above.iter().any(|l| l.trim_start().starts_with("// SAFETY:")) {
                let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
                unexplained.push(format!("{shown}:{}", n + 1));
            }
        }
    }
    assert!(blocks > 0, "no unsafe block found: the scan is broken");
    assert!(
        unexplained.is_empty(),
        "unsafe blocks without a // SAFETY: comment above them:\n{}",
        unexplained.join("\n")
    );
}

/// Is `file` part of the binary (src/main.rs and the modules it includes from src/main/)?
fn in_binary(file: &Path) -> bool {
    let rel = file.strip_prefix(root().join("src")).unwrap_or(file);
    rel == Path::new("main.rs") || rel.starts_with("main")
}

/// Where the library allows or uses `unsafe`: (file, line, text) for every code line
/// (comments and strings blanked) with `allow(unsafe_code)` or an `unsafe` keyword.
fn unsafe_in_library() -> Vec<(String, usize, String)> {
    let mut found = Vec::new();
    for file in rust_files(&root().join("src")) {
        if in_binary(&file) {
            continue;
        }
        let src = std::fs::read_to_string(&file).unwrap();
        let code: String = blank(&src).into_iter().collect();
        let shown = file.strip_prefix(root()).unwrap_or(&file).display().to_string();
        for (n, line) in code.lines().enumerate() {
            let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_'));
            if line.contains("allow(unsafe_code)") || words.into_iter().any(|w| w == "unsafe") {
                found.push((shown.clone(), n + 1, line.trim().to_string()));
            }
        }
    }
    found
}

/// `unsafe` in the library only in the allowed module, and only allowed by the one
/// attribute on that module: any other `allow(unsafe_code)` or `unsafe` fails.
#[test]
fn the_library_allows_unsafe_in_one_module_only() {
    let (parent, attribute) = ALLOWED_BY;
    let src = std::fs::read_to_string(root().join(parent)).unwrap();
    assert!(src.contains(attribute), "{parent} lost {attribute:?}");
    let mut used = false;
    let mut attributes = 0;
    let mut elsewhere = Vec::new();
    for (file, line, text) in unsafe_in_library() {
        let is_attribute = file == parent && text == "#[allow(unsafe_code)]";
        attributes += usize::from(is_attribute);
        let allowed = (is_attribute && attributes == 1)
            || (file == ALLOWED_MODULE && !text.contains("allow(unsafe_code)"));
        used |= file == ALLOWED_MODULE;
        if !allowed {
            elsewhere.push(format!("{file}:{line}: {text}"));
        }
    }
    assert!(used, "no unsafe found in {ALLOWED_MODULE}: the scan is broken");
    assert!(
        elsewhere.is_empty(),
        "unsafe outside {ALLOWED_MODULE}:\n{}",
        elsewhere.join("\n")
    );
}
