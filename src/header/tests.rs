//! Header parsing, fields added, renamed and folded.

use super::*;

fn parse(lines: &[&str]) -> (Header, Option<usize>) {
    let mut h = Header::new();
    for (i, l) in lines.iter().enumerate() {
        if h.push_line(format!("{l}\n").as_bytes()) == HeaderEnd::NotAField {
            return (h, Some(i));
        }
    }
    (h, None)
}

#[test]
fn fields_and_continuations() {
    let (h, end) = parse(&["From: me", "Subject: hi", "  continued", "X-Empty:"]);
    assert_eq!(end, None);
    assert_eq!(h.len(), 3);
    assert_eq!(h.get("subject").unwrap(), "hi\n  continued");
    assert_eq!(h.get("x-empty").unwrap(), "");
    assert_eq!(h.to_bytes(), b"From: me\nSubject: hi\n  continued\nX-Empty:\n");
    let names: Vec<&str> = h.fields().map(|f| f.name).collect();
    assert_eq!(names, ["From", "Subject", "X-Empty"]);
}

#[test]
fn non_field_line_ends_the_header() {
    let (h, end) = parse(&["From: me", "bad header line", "Subject: x"]);
    assert_eq!((h.len(), end), (1, Some(1)));
    let (_, end) = parse(&["Name : spaced"]);
    assert_eq!(end, Some(0));
    let (_, end) = parse(&[" leading continuation"]);
    assert_eq!(end, Some(0));
}

#[test]
fn mbox_from_line_is_coerced() {
    let (h, _) = parse(&["From someone@example Sat Jan 1 00:00:00 2000"]);
    let first = h.fields().next().unwrap();
    assert_eq!(first.name, "Mail-From");
    assert_eq!(first.value(), "someone@example Sat Jan 1 00:00:00 2000");
}

#[test]
fn add_replace_delete() {
    let mut h = Header::new();
    h.push_line(b"Subject: a\n");
    h.add("Received", "from x\n by y", Some(0));
    h.add("X-Last", "z", None);
    h.add("X-Second", "s", Some(1));
    assert_eq!(
        h.to_bytes(),
        b"Received: from x\n by y\nX-Second: s\nSubject: a\nX-Last: z\n"
    );
    h.replace("subject", "b");
    assert_eq!(h.get("Subject").unwrap(), "b");
    assert_eq!(h.fields().nth(2).unwrap().name, "subject");
    assert_eq!(h.delete("x-last"), 1);
    assert_eq!(h.delete("x-second"), 1);
    assert_eq!(h.count("received"), 1);
    assert_eq!(h.len(), 2);
    assert_eq!(h.to_bytes(), b"Received: from x\n by y\nsubject: b\n");
}

#[test]
fn rename_moves_to_the_end() {
    let (mut h, _) = parse(&["A: 1", "B: 2", "  folded", "A: 3", "C: 4"]);
    let n = h.rename_to_end(|f| f.name == "A", "Old-A");
    assert_eq!(n, 2);
    assert_eq!(h.len(), 4);
    assert_eq!(h.to_bytes(), b"B: 2\n  folded\nC: 4\nOld-A: 1\nOld-A: 3\n");
}

#[test]
fn raw_bytes_survive() {
    let mut h = Header::new();
    h.push_line(b"Subject: \xe9t\xe9\n");
    assert_eq!(h.to_bytes(), b"Subject: \xe9t\xe9\n");
}

#[test]
fn added_fields_carry_no_control_characters() {
    let mut h = Header::new();
    h.add("X-A", "a\rX-Injected: 1", None);
    h.add("X-B", "b\0c\u{b}d\u{1b}e\u{7f}f\u{85}g\u{2028}h\tk", None);
    h.add("X-C", "c\r\nfolded\n\n \n\r\nlast", None);
    h.add("Bad Name:\r", "v", None);
    assert_eq!(
        h.to_bytes(),
        b"X-A: a X-Injected: 1\nX-B: b c d e f g h\tk\nX-C: c\n folded\n last\nBad-Name--: v\n".to_vec()
    );
    assert_eq!(h.len(), 4);
    // Text outside ASCII that is not a control stays as it is, on either path.
    let mut u = Header::new();
    u.add("X-U", "caf\u{e9} \u{a2}5 \u{2013} \u{20ac}", None);
    u.add("X-P", "a\u{2029}b\u{9f}c", None);
    assert_eq!(
        u.to_bytes(),
        "X-U: caf\u{e9} \u{a2}5 \u{2013} \u{20ac}\nX-P: a b c\n"
            .as_bytes()
            .to_vec()
    );
    let mut long = Header::new();
    long.add(&"N".repeat(2000), "v", None);
    // The name and its colon on the first line, the value folded after them.
    let expected = [vec![b'N'; MAX_NAME], b":\n v\n".to_vec()].concat();
    assert_eq!(long.as_bytes(), expected);
    // What a plugin reads is what is stored.
    assert_eq!(h.get("x-a").unwrap(), "a X-Injected: 1");
}

#[test]
fn long_lines_are_folded_at_blanks() {
    let words = "word ".repeat(500);
    let mut h = Header::new();
    h.add("X-Long", &words, None);
    let bytes = h.to_bytes();
    assert!(bytes.split(|b| *b == b'\n').all(|l| l.len() <= MAX_LINE));
    assert_eq!(h.len(), 1);
    let unfolded: String = h.get("x-long").unwrap().replace('\n', "");
    assert_eq!(unfolded, words);
}

#[test]
fn long_runs_without_blanks_are_cut() {
    let run = "é".repeat(1500);
    let mut h = Header::new();
    h.add("X-Run", &run, None);
    let bytes = h.to_bytes();
    let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()).collect();
    assert!(lines.iter().all(|l| l.len() <= MAX_LINE));
    assert!(lines[1..].iter().all(|l| l[0] == b' '));
    // Every piece is whole UTF-8: no character was cut in two.
    assert!(lines.iter().all(|l| std::str::from_utf8(l).is_ok()));
    let joined: String = lines
        .iter()
        .map(|l| std::str::from_utf8(l).unwrap().trim_start())
        .collect();
    assert_eq!(joined, format!("X-Run:{run}"));
}

#[test]
fn memory_is_the_block_itself() {
    let mut h = Header::new();
    for _ in 0..100_000 {
        h.push_line(b"a:\n");
    }
    assert_eq!(h.len(), 100_000);
    assert_eq!(h.as_bytes().len(), 300_000);
    assert!(h.block.capacity() < 2 * 300_000 + 4096);
}
