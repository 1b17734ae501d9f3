//! The message reader on its own: terminators, dot-stuffing, bare line ends, NULs, sizes.

use std::io::Read;

use super::receiver::{DataReceiver, Event};
use crate::transaction::Spool;

fn receiver(strict: bool, max: u64) -> (tempfile::TempDir, DataReceiver) {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::new(dir.path(), 16);
    (dir, DataReceiver::new(strict, max, 1 << 20, spool))
}

/// Feeds bytes cut at each LF (as the driver does) and returns the last event.
fn feed(r: &mut DataReceiver, input: &[u8]) -> Event {
    let mut last = Event::More;
    for seg in input.split_inclusive(|b| *b == b'\n') {
        last = r.segment(seg);
        if last == Event::Complete || last == Event::BareNewline {
            break;
        }
    }
    last
}

fn body(r: &mut DataReceiver) -> Vec<u8> {
    let mut v = Vec::new();
    r.body.reader().unwrap().read_to_end(&mut v).unwrap();
    v
}

#[test]
fn crlf_dot_crlf_ends_and_dots_are_unstuffed() {
    let (_d, mut r) = receiver(true, 0);
    let ev = feed(&mut r, b"Subject: x\r\n\r\n..dotted\r\nline\r\n.\r\n");
    assert_eq!(ev, Event::Complete);
    assert_eq!(r.header.to_bytes(), b"Subject: x\n");
    assert_eq!(body(&mut r), b"\n.dotted\nline\n");
    assert_eq!(r.size, 11 + 1 + 8 + 5);
}

#[test]
fn smuggling_sequences_never_end_a_message() {
    for input in [&b"a\r\n\n.\r\n"[..], b"a\r\n\n.\n", b"a\r\n\r.\r\n", b"a\n.\r\n"] {
        let (_d, mut r) = receiver(true, 0);
        assert_eq!(feed(&mut r, input), Event::BareNewline, "{input:?}");
    }
    let (_d, mut r) = receiver(true, 0);
    assert_eq!(r.segment(b"x\ry\r\n"), Event::BareNewline);
}

#[test]
fn lf_lines_are_fine_on_a_pipe() {
    let (_d, mut r) = receiver(false, 0);
    assert_eq!(feed(&mut r, b"Subject: x\n\nbody\n.\n"), Event::Complete);
    assert_eq!(body(&mut r), b"\nbody\n");
}

#[test]
fn cr_split_across_pieces_is_crlf() {
    let (_d, mut r) = receiver(true, 0);
    r.in_header = false;
    assert_eq!(r.segment(b"abc\r"), Event::More);
    assert_eq!(r.segment(b"\n"), Event::More);
    assert_eq!(r.segment(b".\r\n"), Event::Complete);
    assert_eq!(body(&mut r), b"abc\n");
}

#[test]
fn cr_held_at_a_piece_end_before_anything_but_lf_is_bare() {
    for next in [&b"X\r\n"[..], b"\r\n", b"X", b"\r"] {
        let (_d, mut r) = receiver(true, 0);
        r.in_header = false;
        assert_eq!(r.segment(b"abc\r"), Event::More);
        assert_eq!(r.segment(next), Event::BareNewline, "CR then {next:?}");
    }
    // On a pipe the bare CR is kept as it came.
    let (_d, mut r) = receiver(false, 0);
    r.in_header = false;
    r.segment(b"abc\r");
    r.segment(b"X\r\n");
    assert_eq!(r.segment(b".\r\n"), Event::Complete);
    assert_eq!(body(&mut r), b"abc\rX\n");
}

#[test]
fn nul_refuses_the_message_and_stops_storing() {
    let (_d, mut r) = receiver(true, 0);
    let ev = feed(&mut r, b"Subject: x\r\n\r\nbefore\r\nzero\0\r\nafter\r\n.\r\n");
    assert_eq!(ev, Event::Complete);
    assert!(r.nul && r.refused());
    assert_eq!(body(&mut r), b"\nbefore\n");
    // "\0.\r\n" is not a terminator: the message goes on to the real one.
    let (_d, mut r) = receiver(true, 0);
    assert_eq!(r.segment(b"\r\n"), Event::HeaderEnded);
    assert_eq!(r.segment(b"\0.\r\n"), Event::More);
    assert_eq!(r.segment(b"MAIL FROM:<x@y>\r\n"), Event::More);
    assert_eq!(r.segment(b".\r\n"), Event::Complete);
    assert!(r.nul);
}

#[test]
fn long_line_pieces_are_not_unstuffed_or_terminators() {
    let (_d, mut r) = receiver(true, 0);
    r.in_header = false;
    r.segment(b"xxxx");
    assert_eq!(r.segment(b".\r\n"), Event::More);
    assert_eq!(body(&mut r), b"xxxx.\n");
}

#[test]
fn size_limit_counts_lf_normalised_bytes() {
    let (_d, mut r) = receiver(true, 10);
    assert_eq!(feed(&mut r, b"\r\n12345678\r\n.\r\n"), Event::Complete);
    assert!(!r.too_big());
    let (_d, mut r) = receiver(true, 10);
    assert_eq!(feed(&mut r, b"\r\n1234567890\r\nmore\r\n.\r\n"), Event::Complete);
    assert!(r.too_big());
}

#[test]
fn a_line_that_is_not_a_header_starts_the_body() {
    let (_d, mut r) = receiver(true, 0);
    assert_eq!(
        feed(&mut r, b"From: a\r\nnot a header\r\nmore\r\n.\r\n"),
        Event::Complete
    );
    assert_eq!(r.header.to_bytes(), b"From: a\n");
    assert_eq!(body(&mut r), b"\nnot a header\nmore\n");
}
