//! Unit tests of log.rs.

use super::*;

#[test]
fn level_names() {
    assert_eq!(Level::parse("LOGINFO"), Some(Level::Info));
    assert_eq!(Level::parse("LOG_WARNING"), Some(Level::Warn));
    assert_eq!(Level::parse("3"), Some(Level::Error));
    assert_eq!(Level::parse("debug"), Some(Level::Debug));
    assert_eq!(Level::parse("9"), None);
    assert_eq!(Level::parse("loud"), None);
}

#[test]
fn record_format_escapes_control_characters() {
    let r = Record {
        level: Level::Info,
        id: "42",
        plugin: Some("relay"),
        hook: Some("connect"),
        msg: "a\r\nb\x01",
    };
    assert_eq!(r.line(), "42 (connect) relay: a\\r\\nb\\x01");
}

#[test]
fn line_separators_are_escaped_and_long_lines_cut() {
    let mut out = String::new();
    escape_into(&mut out, "a\u{2028}b\u{2029}c\u{85}");
    assert_eq!(out, "a\\u2028b\\u2029c\\x85");
    let msg = "\u{e9}".repeat(MAX_LINE);
    let r = Record {
        level: Level::Info,
        id: "42",
        plugin: None,
        hook: None,
        msg: &msg,
    };
    let line = r.line();
    assert!(
        line.len() <= MAX_LINE && line.ends_with("\u{e9}...[cut]"),
        "{}",
        line.len()
    );
}

#[test]
fn logger_filters_by_level() {
    let sink = MemorySink::default();
    let lines = sink.lines.clone();
    struct Capped(MemorySink);
    impl LogSink for Capped {
        fn level(&self) -> Level {
            Level::Notice
        }
        fn write(&self, r: &Record<'_>) {
            self.0.write(r)
        }
    }
    let log = Logger::new("7", vec![Box::new(Capped(sink))]);
    log.log(Level::Info, format_args!("hidden"));
    log.log(Level::Notice, format_args!("shown"));
    assert_eq!(*lines.borrow(), vec!["7 shown".to_string()]);
    assert!(!log.enabled(Level::Debug));
}
