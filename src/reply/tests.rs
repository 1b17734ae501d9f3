//! Unit tests of reply building and rendering.

use super::*;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn renders_multiline_with_status() {
    let r = Reply::from_plugin(550, "5.7.1", &strings(&["first line\nsecond line"]), "x");
    assert_eq!(r.to_wire(), "550-5.7.1 first line\r\n550 5.7.1 second line\r\n");
}

#[test]
fn empty_parts_do_not_cut_the_reply() {
    let r = Reply::from_plugin(550, "5.0.0", &strings(&["x", "", "0", "z"]), "d");
    assert_eq!(r.lines, strings(&["x", "0", "z"]));
}

#[test]
fn default_text_when_plugin_gives_none() {
    let r = Reply::from_plugin(550, "5.7.1", &[], "denied");
    assert_eq!(r.to_wire(), "550 5.7.1 denied\r\n");
}

#[test]
fn status_from_leading_code_and_dsn_suffix() {
    let r = Reply::from_plugin(550, "5.0.0", &strings(&["5.1.1 no such user"]), "");
    assert_eq!(r.to_wire(), "550 5.1.1 no such user\r\n");
    let r = Reply::from_plugin(550, "5.0.0", &strings(&["Relaying denied (#5.7.1)"]), "");
    assert_eq!(r.to_wire(), "550 5.7.1 Relaying denied (#5.7.1)\r\n");
}

#[test]
fn a_code_repeated_on_every_line_is_shown_once() {
    let r = Reply::from_plugin(550, "5.0.0", &strings(&["5.5.3 one", "5.5.3 two"]), "");
    assert_eq!(r.to_wire(), "550-5.5.3 one\r\n550 5.5.3 two\r\n");
}

#[test]
fn class_follows_reply_code() {
    let r = Reply::from_plugin(450, "5.7.1", &strings(&["later"]), "");
    assert_eq!(r.status.as_deref(), Some("4.7.1"));
}

#[test]
fn control_characters_are_removed() {
    let r = Reply::from_plugin(550, "5.0.0", &strings(&["a\rb\u{0}c"]), "");
    assert_eq!(r.lines, strings(&["abc"]));
}

#[test]
fn c1_controls_and_del_are_removed_and_other_text_kept_as_it_is() {
    let r = Reply::from_plugin(
        550,
        "5.0.0",
        &strings(&["a\u{85}b\u{9f}c\u{7f}d", "caf\u{e9} \u{a2}5\tok", "two\nlines"]),
        "",
    );
    assert_eq!(
        r.lines,
        strings(&["abcd", "caf\u{e9} \u{a2}5\tok", "two", "lines"])
    );
}

#[test]
fn reply_lines_are_cut_to_512_octets() {
    let long = "\u{e9}".repeat(600);
    for reply in [
        Reply::plain_lines(250, vec![long.clone(), "PIPELINING".into()]),
        Reply::new(550, "5.7.1", long.clone()),
    ] {
        let wire = reply.to_wire();
        for line in wire.split_inclusive("\r\n") {
            assert!(
                line.len() <= MAX_LINE && line.ends_with("\u{e9}...\r\n") || line.len() < 20,
                "{line}"
            );
        }
    }
    let exact = "x".repeat(MAX_LINE - 6);
    assert_eq!(
        Reply::plain(250, exact.clone()).to_wire(),
        format!("250 {exact}\r\n")
    );
}

#[test]
fn plain_reply_has_no_status() {
    assert_eq!(Reply::plain(354, "go ahead").to_wire(), "354 go ahead\r\n");
}

#[test]
fn placeholders_are_filled_in_order() {
    assert_eq!(
        fill("<me> closing connection", &["mx.example"]),
        "mx.example closing connection"
    );
    assert_eq!(fill("<a>: <b>", &["1", "2"]), "1: 2");
    assert_eq!(fill("end with <CRLF>.<CRLF>", &["x"]), "end with <CRLF>.<CRLF>");
    assert_eq!(fill("<host>: HELO denied", &[]), "<host>: HELO denied");
    assert!(matches!(fill("no values", &[]), std::borrow::Cow::Borrowed(_)));
    let f = Fixed::new(421, "4.4.2", "<me> Timeout; closing connection");
    assert_eq!(
        f.about("mx").to_wire(),
        "421 4.4.2 mx Timeout; closing connection\r\n"
    );
    assert_eq!(
        Fixed::plain(354, "go ahead").reply().to_wire(),
        "354 go ahead\r\n"
    );
}

#[test]
fn reply_codes_render_as_written() {
    for code in [0u16, 7, 99, 100, 250, 421, 999, 1000, 65535] {
        let mut out = Vec::new();
        Reply::plain(code, "x").render(&mut out);
        assert_eq!(out, format!("{code} x\r\n").into_bytes(), "{code}");
    }
}
