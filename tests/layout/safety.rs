//! `unsafe` stays where it is: the library forbids it, the binary denies it, and each
//! block the binary needs (signal handlers, adopting UCSPI-TLS descriptors, its own
//! `main`) says why it is sound in a `// SAFETY:` comment just above it.

use super::sizes::{blank, root, rust_files};

#[test]
fn the_library_forbids_unsafe_and_the_binary_denies_it() {
    let lib = std::fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains("\n#![forbid(unsafe_code)]\n"),
        "src/lib.rs lost #![forbid(unsafe_code)]"
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
