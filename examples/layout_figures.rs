//! Prints the size figures of the source the layout tests check (tests/layout/sizes.rs):
//! files, functions, the median body and the longest of each, for src/ and plugins/.
//!   cargo run --example layout_figures

#[allow(dead_code)]
#[path = "../tests/layout/sizes.rs"]
mod sizes;

use std::path::Path;

use sizes::{CHECKED, Function, MAX_BODY_LINES, MAX_FILE_LINES, MEDIAN_BODY_BELOW, root};

fn shown(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

fn print_figures(dir: &str) {
    let base = root().join(dir);
    let files = sizes::file_lines_below(&base);
    let mut functions = sizes::functions_below(&base);
    functions.sort_by_key(|f| std::cmp::Reverse(f.function.body));
    let total: usize = files.iter().map(|(_, n)| n).sum();
    println!(
        "{dir}/: {} files, {total} lines, {} functions, median body {} lines",
        files.len(),
        functions.len(),
        sizes::median(&functions)
    );
    println!("  longest files:");
    for (f, n) in files.iter().take(8) {
        println!("    {n:5}  {}", shown(f));
    }
    println!("  longest function bodies:");
    for f in functions.iter().take(8) {
        let Function { name, line, body } = &f.function;
        println!("    {body:5}  {}:{line} {name}", shown(&f.file));
    }
}

fn main() {
    println!(
        "limits for {}: files at most {MAX_FILE_LINES} lines, bodies at most \
         {MAX_BODY_LINES}, median body under {MEDIAN_BODY_BELOW}",
        CHECKED.join("/ and ") + "/"
    );
    let all: Vec<sizes::Located> = CHECKED
        .iter()
        .flat_map(|d| sizes::functions_below(&root().join(d)))
        .collect();
    println!(
        "together: {} functions, median body {} lines",
        all.len(),
        sizes::median(&all)
    );
    for dir in CHECKED {
        print_figures(dir);
    }
}
