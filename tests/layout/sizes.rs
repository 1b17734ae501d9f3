//! The size rules of the source, checked for src/ and plugins/ (the built-in plugins are
//! compiled into the crate): no file over 400 lines, no function body over 60 lines, the
//! median function body under 10 lines.
//!
//! Functions are found by a small scanner (comments and literals blanked, then `fn name`
//! up to its matching brace), not by the compiler; its own tests below pin what it counts.
//! `cargo run --example layout_figures` prints the figures (longest files and functions,
//! median) for src/ and plugins/; it includes this file.

use std::path::{Path, PathBuf};

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Most lines a source file may have.
pub const MAX_FILE_LINES: usize = 400;
/// Most lines a function body may have.
pub const MAX_BODY_LINES: usize = 60;
/// The median function body must stay under this.
pub const MEDIAN_BODY_BELOW: usize = 10;

/// One function found in a source file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    pub name: String,
    /// 1-based line of the `fn` keyword.
    pub line: usize,
    /// Lines strictly between the line of the opening brace and the line of the closing
    /// one; a body on one line (or an empty one written `{}`) counts as 1.
    pub body: usize,
}

/// Every `.rs` file below `dir`, sorted.
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The source with comments and the insides of string and char literals turned into
/// spaces, newlines kept, so braces and `fn` in them are not seen and lines still count.
pub fn blank(src: &str) -> Vec<char> {
    let mut s: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < s.len() {
        let starts_token = i == 0 || !is_ident(s[i - 1]);
        i = match s[i] {
            '/' if s.get(i + 1) == Some(&'/') => blank_until(&mut s, i, |s, j| s[j] == '\n'),
            '/' if s.get(i + 1) == Some(&'*') => blank_block_comment(&mut s, i),
            '"' => blank_string(&mut s, i),
            '\'' => blank_char(&mut s, i),
            'r' | 'b' | 'c' if starts_token => match raw_string_hashes(&s, i) {
                Some((quote, hashes)) => blank_raw_string(&mut s, quote, hashes),
                None => i + 1,
            },
            _ => i + 1,
        };
    }
    s
}

/// Blanks from `i` up to (not including) the first `j` where `end(s, j)`; returns `j`.
fn blank_until(s: &mut [char], i: usize, end: impl Fn(&[char], usize) -> bool) -> usize {
    let mut j = i;
    while j < s.len() && !end(s, j) {
        s[j] = ' ';
        j += 1;
    }
    j
}

fn blank_at(s: &mut [char], j: usize) {
    if s[j] != '\n' {
        s[j] = ' ';
    }
}

/// `/* ... */`, nested as Rust nests them.
fn blank_block_comment(s: &mut [char], i: usize) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j < s.len() {
        if s[j] == '/' && s.get(j + 1) == Some(&'*') {
            depth += 1;
            blank_at(s, j);
            blank_at(s, j + 1);
            j += 2;
        } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
            depth -= 1;
            blank_at(s, j);
            blank_at(s, j + 1);
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            blank_at(s, j);
            j += 1;
        }
    }
    j
}

/// `"..."` with backslash escapes; the quotes stay, the inside is blanked.
fn blank_string(s: &mut [char], i: usize) -> usize {
    let mut j = i + 1;
    while j < s.len() && s[j] != '"' {
        if s[j] == '\\' && j + 1 < s.len() {
            blank_at(s, j);
            j += 1;
        }
        blank_at(s, j);
        j += 1;
    }
    j + 1
}

/// `'x'`, `'\n'`, `'\u{..}'` are blanked; a lifetime or label (`'a`) is left alone.
fn blank_char(s: &mut [char], i: usize) -> usize {
    let end = if s.get(i + 1) == Some(&'\\') {
        (i + 3..s.len()).find(|&j| s[j] == '\'')
    } else if s.get(i + 2) == Some(&'\'') {
        Some(i + 2)
    } else {
        None
    };
    match end {
        Some(end) => {
            for j in i + 1..end {
                blank_at(s, j);
            }
            end + 1
        }
        None => i + 1,
    }
}

/// At `r"`, `r#"`, `br"`, `cr##"`...: the index of the opening quote and the number of `#`.
fn raw_string_hashes(s: &[char], i: usize) -> Option<(usize, usize)> {
    let mut j = i;
    if s[j] == 'b' || s[j] == 'c' {
        j += 1;
    }
    if s.get(j) != Some(&'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&c| c == '#').count();
    (s.get(j + hashes) == Some(&'"')).then_some((j + hashes, hashes))
}

fn blank_raw_string(s: &mut [char], quote: usize, hashes: usize) -> usize {
    let closes = |s: &[char], j: usize| s[j] == '"' && (1..=hashes).all(|k| s.get(j + k) == Some(&'#'));
    let j = quote + 1;
    let mut k = j;
    while k < s.len() && !closes(s, k) {
        blank_at(s, k);
        k += 1;
    }
    k + 1 + hashes
}

/// Every function with a body in the source (trait method declarations without one are
/// not functions here; `fn(..)` pointer types and `fn $name` in macros are not either).
pub fn functions(src: &str) -> Vec<Function> {
    let s = blank(src);
    let line_at = line_index(&s);
    let mut out = Vec::new();
    let mut i = 0;
    while i + 2 < s.len() {
        let is_fn =
            s[i] == 'f' && s[i + 1] == 'n' && (i == 0 || !is_ident(s[i - 1])) && s[i + 2].is_whitespace();
        if is_fn && let Some(f) = function_at(&s, i, &line_at) {
            out.push(f);
        }
        i += 1;
    }
    out
}

/// The 1-based line of every index of `s`.
fn line_index(s: &[char]) -> Vec<usize> {
    let mut line = 1;
    s.iter()
        .map(|&c| {
            let here = line;
            if c == '\n' {
                line += 1;
            }
            here
        })
        .collect()
}

/// The function whose `fn` keyword is at `at`, if it has a name and a body.
fn function_at(s: &[char], at: usize, line_at: &[usize]) -> Option<Function> {
    let mut j = at + 2;
    while j < s.len() && s[j].is_whitespace() {
        j += 1;
    }
    let name: String = s[j..].iter().take_while(|&&c| is_ident(c)).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let open = body_start(s, j + name.len())?;
    let close = matching_brace(s, open)?;
    let lines = line_at[close] - line_at[open];
    Some(Function {
        name,
        line: line_at[at],
        body: lines.saturating_sub(1).max(1),
    })
}

/// The `{` that opens the body: the first one outside parentheses and brackets, unless a
/// `;` comes first (a declaration without a body).
fn body_start(s: &[char], from: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (j, &c) in s.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            '{' if depth == 0 => return Some(j),
            ';' if depth == 0 => return None,
            _ => {}
        }
    }
    None
}

fn matching_brace(s: &[char], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (j, &c) in s.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(j);
                }
            }
            _ => {}
        }
    }
    None
}

/// A function of one file, for reports.
#[derive(Debug, Clone)]
pub struct Located {
    pub file: PathBuf,
    pub function: Function,
}

/// Every function of every `.rs` file below `dir`.
pub fn functions_below(dir: &Path) -> Vec<Located> {
    rust_files(dir)
        .into_iter()
        .flat_map(|file| {
            let src = std::fs::read_to_string(&file).unwrap();
            functions(&src).into_iter().map(move |function| Located {
                file: file.clone(),
                function,
            })
        })
        .collect()
}

/// Lines of every `.rs` file below `dir`, longest first.
pub fn file_lines_below(dir: &Path) -> Vec<(PathBuf, usize)> {
    let mut out: Vec<(PathBuf, usize)> = rust_files(dir)
        .into_iter()
        .map(|f| {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            (f, n)
        })
        .collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out
}

/// The median body length (the lower middle for an even count).
pub fn median(functions: &[Located]) -> usize {
    let mut bodies: Vec<usize> = functions.iter().map(|f| f.function.body).collect();
    bodies.sort_unstable();
    bodies
        .get(bodies.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(0)
}

fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// The crate's code: src/ and the built-in plugins under plugins/, compiled into it.
pub const CHECKED: [&str; 2] = ["src", "plugins"];

fn checked_files() -> Vec<(PathBuf, usize)> {
    CHECKED
        .iter()
        .flat_map(|d| file_lines_below(&root().join(d)))
        .collect()
}

fn checked_functions() -> Vec<Located> {
    CHECKED
        .iter()
        .flat_map(|d| functions_below(&root().join(d)))
        .collect()
}

#[test]
fn no_source_file_is_over_the_limit() {
    let files = checked_files();
    assert!(files.len() > 100, "found only {} files", files.len());
    let over: Vec<String> = files
        .iter()
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(f, n)| format!("{} has {n} lines", shown(f)))
        .collect();
    assert!(
        over.is_empty(),
        "files over {MAX_FILE_LINES} lines:\n{}",
        over.join("\n")
    );
}

#[test]
fn no_function_body_is_over_the_limit() {
    let functions = checked_functions();
    assert!(functions.len() > 1000, "found only {} functions", functions.len());
    let over: Vec<String> = functions
        .iter()
        .filter(|f| f.function.body > MAX_BODY_LINES)
        .map(|f| {
            let Function { name, line, body } = &f.function;
            format!("{}:{line} {name} has a body of {body} lines", shown(&f.file))
        })
        .collect();
    assert!(
        over.is_empty(),
        "function bodies over {MAX_BODY_LINES} lines:\n{}",
        over.join("\n")
    );
}

#[test]
fn the_median_function_body_is_small() {
    let functions = checked_functions();
    let median = median(&functions);
    assert!(
        median < MEDIAN_BODY_BELOW,
        "the median body of {} functions is {median} lines",
        functions.len()
    );
}

/// What the scanner counts, on source written to trip it.
#[test]
fn the_scanner_counts_bodies_and_skips_what_is_not_a_function() {
    let src = r####"
/// fn in_a_doc_comment() { }
fn one_line() -> u8 { 1 }
fn three(a: &str) -> &str {
    let _ = "fn not_me() { {{{ \" ";
    let _ = '{';
    a
}
/* fn in_a /* nested */ comment() {} */
trait T {
    fn declared(&self);
    fn with_default(&self) {
        let _ = r#"}" fn raw() {"#;
    }
}
fn generic<'a, T>(x: &'a T, f: fn(u8) -> u8) -> &'a T
where
    T: Clone,
{
    let _ = (f, b'}', '\'', '\u{7d}');
    'label: loop {
        break 'label;
    }
    x
}
macro_rules! m { ($n:ident) => { fn $n() {} }; }
"####;
    let found: Vec<(String, usize, usize)> = functions(src)
        .into_iter()
        .map(|f| (f.name, f.line, f.body))
        .collect();
    let expect = [
        ("one_line", 3, 1),
        ("three", 4, 3),
        ("with_default", 12, 1),
        ("generic", 16, 5),
    ];
    let expect: Vec<(String, usize, usize)> =
        expect.iter().map(|(n, l, b)| (n.to_string(), *l, *b)).collect();
    assert_eq!(found, expect);
}

#[test]
fn the_median_is_the_middle_body() {
    let at = |body| Located {
        file: PathBuf::new(),
        function: Function {
            name: String::new(),
            line: 1,
            body,
        },
    };
    assert_eq!(median(&[at(1), at(50), at(3)]), 3);
    assert_eq!(median(&[at(9), at(1), at(12), at(10)]), 9);
    assert_eq!(median(&[]), 0);
}
