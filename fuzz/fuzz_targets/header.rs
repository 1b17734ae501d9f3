//! The header parser and editor: any header block, then any fields added, replaced,
//! deleted or renamed with any name and value (what plugins and the core do). Must hold:
//!
//! - no panic; the field count matches what iterating the block finds;
//! - a block read from lines is those lines (an mbox `From ` line as `Mail-From:`) until
//!   the first line that is not a field;
//! - every field added is RFC 5322 clean (§2.1.1, §2.2): lines of at most 998 bytes, no
//!   control character but tab, every line after the first starting with a blank, none
//!   of them empty; the block then reads back, line by line, as the same block.
//!
//! Input: header lines up to a NUL byte, then operations: a byte saying which, then a
//! name and a value separated by the byte 0x01, each operation ending at 0x02.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::header::{Header, HeaderEnd, MAX_LINE};

fn reparse(h: &Header) {
    let mut again = Header::new();
    for line in h.as_bytes().split_inclusive(|b| *b == b'\n') {
        assert_eq!(
            again.push_line(line),
            HeaderEnd::More,
            "{line:?} in {:?}",
            h.as_bytes()
        );
    }
    assert_eq!(again.as_bytes(), h.as_bytes());
    assert_eq!(again.len(), h.len());
}

/// The field as `add` writes it, checked on its own.
fn check_added(name: &str, value: &str) -> Vec<u8> {
    let mut alone = Header::new();
    alone.add(name, value, None);
    let added = alone.as_bytes().to_vec();
    assert!(added.ends_with(b"\n"), "{added:?}");
    for (i, line) in added[..added.len() - 1].split(|c| *c == b'\n').enumerate() {
        assert!(line.len() <= MAX_LINE, "line of {} bytes", line.len());
        assert!(!line.is_empty(), "empty line in {added:?}");
        assert!(
            !line.iter().any(|&c| (c < 0x20 && c != b'\t') || c == 0x7f),
            "control character in {line:?}"
        );
        let text = String::from_utf8_lossy(line);
        assert!(!text.contains(['\u{2028}', '\u{2029}']), "{text:?}");
        assert_eq!(
            i > 0,
            line.starts_with(b" ") || line.starts_with(b"\t"),
            "{added:?}"
        );
    }
    reparse(&alone);
    added
}

fuzz_target!(|input: &[u8]| {
    let (block, ops) = match input.iter().position(|b| *b == 0) {
        Some(p) => (&input[..p], &input[p + 1..]),
        None => (input, &[][..]),
    };
    let mut h = Header::new();
    let mut expected = Vec::new();
    for line in block.split_inclusive(|b| *b == b'\n') {
        if h.push_line(line) == HeaderEnd::NotAField {
            break;
        }
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        match line.strip_prefix(b"From ") {
            Some(rest) => {
                expected.extend_from_slice(b"Mail-From: ");
                expected.extend_from_slice(rest);
            }
            None => expected.extend_from_slice(line),
        }
        expected.push(b'\n');
    }
    assert_eq!(h.as_bytes(), &expected[..]);
    assert_eq!(h.fields().count(), h.len());
    for f in h.fields() {
        let _ = f.value();
        let _ = h.get(f.name);
    }
    for op in ops.split(|b| *b == 2).take(16) {
        let Some((&which, rest)) = op.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest);
        let (name, value) = text.split_once('\u{1}').unwrap_or((&text, ""));
        let before = h.clone();
        match which % 5 {
            0 | 1 => {
                let index = (which % 5 == 1).then_some(usize::from(which / 5));
                h.add(name, value, index);
                assert_eq!(h.len(), before.len() + 1);
                let added = check_added(name, value);
                assert!(
                    h.as_bytes().windows(added.len()).any(|w| w == added),
                    "not added as written"
                );
                reparse(&h);
            }
            2 => {
                h.replace(name, value);
                reparse(&h);
            }
            3 => {
                let n = h.delete(name);
                assert_eq!(h.len() + n, before.len());
                assert_eq!(h.count(name), 0);
            }
            _ => {
                let n = h.rename_to_end(|f| f.name.eq_ignore_ascii_case(name), value);
                assert_eq!(h.len(), before.len());
                assert!(n <= before.len());
                reparse(&h);
            }
        }
        assert_eq!(
            h.fields().count(),
            h.len(),
            "{:?}",
            String::from_utf8_lossy(h.as_bytes())
        );
    }
});
