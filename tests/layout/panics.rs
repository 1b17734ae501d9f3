//! No `unwrap`, `expect` or panicking macro in the code that runs for a client: what
//! the client, a config file or a backend controls must turn into a reply or an error,
//! never a panic. Test code (`#[cfg(test)]` items and the files they name) is exempt;
//! elsewhere a call that cannot fail needs a `// invariant: ...` comment on its line or
//! the line above saying why.

use std::path::{Path, PathBuf};

use super::sizes::{blank, root, rust_files};

/// What is refused outside tests (spaces removed before matching).
const PANICKY: [&str; 8] = [
    ".unwrap()",
    ".expect(",
    "::unwrap)",
    "::expect)",
    "panic!(",
    "unreachable!(",
    "todo!(",
    "unimplemented!(",
];

/// The code of one file, as char ranges to skip (test items) and files it names as test
/// modules (`#[cfg(test)] mod x;`).
#[derive(Debug, Default)]
struct TestParts {
    ranges: Vec<(usize, usize)>,
    files: Vec<PathBuf>,
}

fn skip_space(s: &[char], mut j: usize) -> usize {
    while j < s.len() && s[j].is_whitespace() {
        j += 1;
    }
    j
}

/// Index just after the `]` that closes the attribute starting at `j` (`#[`).
fn attribute_end(s: &[char], j: usize) -> usize {
    let mut depth = 0;
    for (k, &c) in s.iter().enumerate().skip(j + 1) {
        match c {
            '[' => depth += 1,
            ']' => {
                depth -= 1;
                if depth == 0 {
                    return k + 1;
                }
            }
            _ => {}
        }
    }
    s.len()
}

/// The `x` of `#[path = "x"]`, read from the original text (literals are blank in `s`).
fn path_attribute(original: &[char], from: usize, to: usize) -> Option<String> {
    let text: String = original[from..to].iter().collect();
    let rest = text.strip_prefix("#[path")?;
    let start = rest.find('"')? + 1;
    let len = rest[start..].find('"')?;
    Some(rest[start..start + len].to_string())
}

/// The file a `mod name;` in `file` loads: `#[path]` beside the file, else `name.rs` or
/// `name/mod.rs` in the module's folder.
fn module_file(file: &Path, name: &str, path: Option<String>) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    if let Some(p) = path {
        return dir.join(p);
    }
    let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let own = if ["mod", "lib", "main"].contains(&stem) {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    [own.join(format!("{name}.rs")), dir.join(format!("{name}.rs"))]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| own.join(name).join("mod.rs"))
}

/// The item after the `#[cfg(test)]` ending at `at`: its range when it has a body, the
/// file it names when it is `mod x;`.
fn test_item(file: &Path, original: &[char], s: &[char], at: usize, parts: &mut TestParts) {
    let mut j = skip_space(s, at);
    let mut path = None;
    while s.get(j) == Some(&'#') {
        let end = attribute_end(s, j);
        path = path.or_else(|| path_attribute(original, j, end));
        j = skip_space(s, end);
    }
    let Some(stop) = (j..s.len()).find(|&k| s[k] == '{' || s[k] == ';') else {
        return;
    };
    let head: String = s[j..stop].iter().collect();
    let words: Vec<&str> = head.split_whitespace().collect();
    if s[stop] == ';' {
        if let Some(i) = words.iter().position(|w| *w == "mod") {
            let name = words.get(i + 1).copied().unwrap_or("");
            parts.files.push(module_file(file, name, path));
        }
        return;
    }
    let mut depth = 0;
    for (k, &c) in s.iter().enumerate().skip(stop) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    parts.ranges.push((at, k));
                    return;
                }
            }
            _ => {}
        }
    }
}

fn test_parts(file: &Path, src: &str) -> TestParts {
    let original: Vec<char> = src.chars().collect();
    let s = blank(src);
    let text: String = s.iter().collect();
    let mut parts = TestParts::default();
    let mut from = 0;
    while let Some(found) = text[from..].find("#[cfg(test)]") {
        let byte = from + found + "#[cfg(test)]".len();
        let at = text[..byte].chars().count();
        test_item(file, &original, &s, at, &mut parts);
        from = byte;
    }
    parts
}

/// Lines (1-based) of `src` outside test items that call what [`PANICKY`] lists without
/// an `invariant:` comment on the line or the one above.
fn panicky_lines(file: &Path, src: &str) -> (Vec<usize>, Vec<PathBuf>) {
    let parts = test_parts(file, src);
    let s = blank(src);
    let original: Vec<&str> = src.lines().collect();
    let mut lines = Vec::new();
    let (mut line, mut text) = (1, String::new());
    for (i, &c) in s.iter().enumerate() {
        if c == '\n' {
            let justified = (line.max(2) - 1..=line)
                .any(|l| original.get(l - 1).is_some_and(|t| t.contains("invariant:")));
            if PANICKY.iter().any(|p| text.contains(p)) && !justified {
                lines.push(line);
            }
            line += 1;
            text.clear();
        } else if !c.is_whitespace() && !parts.ranges.iter().any(|&(a, b)| (a..=b).contains(&i)) {
            text.push(c);
        }
    }
    (lines, parts.files)
}

#[test]
fn no_unwrap_or_panic_outside_tests() {
    let mut files: Vec<PathBuf> = ["src", "plugins"]
        .iter()
        .flat_map(|d| rust_files(&root().join(d)))
        .collect();
    let mut test_files = Vec::new();
    let mut found = Vec::new();
    files.sort();
    for file in &files {
        let src = std::fs::read_to_string(file).unwrap();
        let (lines, tests) = panicky_lines(file, &src);
        test_files.extend(tests);
        found.extend(lines.into_iter().map(|l| (file.clone(), l)));
    }
    assert!(
        test_files.len() > 20,
        "found only {} test files",
        test_files.len()
    );
    let missing: Vec<&PathBuf> = test_files.iter().filter(|f| !f.is_file()).collect();
    assert!(missing.is_empty(), "test modules not found: {missing:?}");
    let found: Vec<String> = found
        .into_iter()
        .filter(|(f, _)| !test_files.contains(f))
        .map(|(f, l)| format!("{}:{l}", f.strip_prefix(root()).unwrap_or(&f).display()))
        .collect();
    assert!(
        found.is_empty(),
        "unwrap/expect/panic outside tests (handle it, or say why it cannot fail in an \
         `// invariant:` comment):\n{}",
        found.join("\n")
    );
}

/// What the check sees, on source written to trip it.
#[test]
fn the_check_sees_calls_outside_tests_only() {
    let src = r##"
fn served(x: Option<u8>) -> u8 {
    let _ = "a.unwrap() in a string";
    // a.unwrap() in a comment
    let y = x.map(|v| v + 1).unwrap_or(0);
    x.expect("input")
}
fn fine(x: Option<u8>) -> u8 {
    // invariant: set two lines up.
    x.unwrap()
}
#[cfg(test)]
fn helper() { None::<u8>.unwrap(); }
#[cfg(test)]
#[path = "its_tests.rs"]
mod tests;
#[cfg(test)]
mod inline {
    #[test]
    fn t() { panic!("in a test") }
}
fn after() { unreachable!() }
"##;
    let file = root().join("src/some/thing.rs");
    let (lines, files) = panicky_lines(&file, src);
    assert_eq!(lines, [6, 22]);
    assert_eq!(files, [root().join("src/some/its_tests.rs")]);
}
