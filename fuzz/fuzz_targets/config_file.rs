//! The config reader: any bytes as a config file, as a file it includes and as
//! `qpsmtpd-rs.toml`. Must hold: no panic, no endless `$include` loop (a loop is an
//! error naming the file), and every value line is trimmed, not empty, not a comment,
//! not an `$include` line, and holds no LF (nor a CR at its end).
//!
//! Input: up to three parts separated by NUL bytes: the file `item`, the file `other`
//! (which `item` may `$include`), and `qpsmtpd-rs.toml`. Inputs naming a path with `/`
//! are skipped, so that an `$include` never reads outside the test directory.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::config::{Config, Lines};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("qpsmtpd-rs-fuzz-config.{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("config dir");
        d
    })
}

fn check(lines: &Lines) {
    for text in lines.iter() {
        assert!(!text.is_empty(), "empty value line");
        assert_eq!(text, text.trim(), "untrimmed value line");
        assert!(!text.starts_with('#'), "comment kept: {text:?}");
        // A CR inside a line is kept as written (qpsmtpd's reader does the same); only
        // one before the LF is a line end.
        assert!(
            !text.contains('\n') && !text.ends_with('\r'),
            "line end in {text:?}"
        );
        // qpsmtpd's `^\s*\$include\s+(\S+)\s*$`: anything else is a value.
        let include = text.strip_prefix("$include").is_some_and(|rest| {
            rest.starts_with(char::is_whitespace) && !rest.trim().contains(char::is_whitespace)
        });
        assert!(!include, "include kept: {text:?}");
    }
    assert_eq!(lines.iter().count(), lines.entries().len());
    assert_eq!(lines.first(), lines.iter().next());
}

fuzz_target!(|input: &[u8]| {
    if input.contains(&b'/') {
        return;
    }
    let mut parts = input.splitn(3, |b| *b == 0);
    let d = dir();
    let item = parts.next().unwrap_or_default();
    std::fs::write(d.join("item"), item).expect("write");
    std::fs::write(d.join("other"), parts.next().unwrap_or_default()).expect("write");
    let toml = d.join("qpsmtpd-rs.toml");
    match parts.next() {
        Some(t) => std::fs::write(&toml, t).expect("write"),
        None => {
            let _ = std::fs::remove_file(&toml);
        }
    }
    let Ok(config) = Config::open(d, None) else {
        return;
    };
    for name in ["item", "other", "missing", "me", "rcpthosts"] {
        if let Ok(lines) = config.lines(name) {
            check(&lines);
        }
        let _ = config.first(name);
        let _ = config.number(name);
        let _ = config.seconds(name, 3600);
        let _ = config.source_of(name);
    }
    let _ = config.shadowed_files();
});
