//! Address parsing and formatting, as qpsmtpd's Qpsmtpd::Address and RFC 5321 have them.

use super::*;

fn fmt(s: &str) -> Option<String> {
    Address::parse(s).map(|a| a.to_string())
}

#[test]
fn rfc5321_paths_accepted() {
    let accepted = [
        ("<>", "<>"),
        ("<postmaster>", "<postmaster>"),
        ("<POSTMASTER>", "<postmaster>"),
        ("<a@b>", "<a@b>"),
        ("<a.b@c.d>", "<a.b@c.d>"),
        ("<A@B.COM>", "<A@B.COM>"),
        ("<\"a b\"@c.d>", "<\"a\\ b\"@c.d>"),
        ("<\"a\\\"b\"@c.d>", "<\"a\\\"b\"@c.d>"),
        ("<\"a@b\"@c.d>", "<\"a\\@b\"@c.d>"),
        ("<\"joe\"@c.d>", "<joe@c.d>"),
        ("<\"a..b\"@c.d>", "<a..b@c.d>"),
        ("<a+tag@x-y.example>", "<a+tag@x-y.example>"),
        ("<a@[1.2.3.4]>", "<a@[1.2.3.4]>"),
        ("<a@[255.0.0.0]>", "<a@[255.0.0.0]>"),
        ("<a@[IPv6:::1]>", "<a@[IPv6:::1]>"),
        ("<a@[IPv6:2001:db8::192.0.2.1]>", "<a@[IPv6:2001:db8::192.0.2.1]>"),
        ("<a@1.2.3.4>", "<a@1.2.3.4>"),
        ("<@x.y:a@b.c>", "<a@b.c>"),
        ("<@x.y,@[192.0.2.1]:a@b.c>", "<a@b.c>"),
        ("<@[IPv6:2001:db8::1],@x.y:a@b.c>", "<a@b.c>"),
    ];
    for (input, want) in accepted {
        assert_eq!(fmt(input).as_deref(), Some(want), "{input}");
    }
}

/// What Perl qpsmtpd accepted and the grammar does not (README Differences 60).
#[test]
fn qpsmtpd_leniencies_refused() {
    let refused = [
        "<abuse>",
        "<user>",
        "<.a@b.c>",
        "<a.@b.c>",
        "<bob.@b.c>",
        "<a..b@c.d>",
        "<a b@c.d>",
        "<a@b@c.d>",
        "<a(b)@c.d>",
        "<(a)@c.d>",
        "< a@b.c>",
        "<a@b.c >",
        "<a@b.c.>",
        "<a@-b.c>",
        "<a@b-.c>",
        "<a@b..c>",
        "<a@[foo]>",
        "<a@[999.2.3.4]>",
        "<a@[1.2.3]>",
        "<a@[IPv6:::::1]>",
        "<a@b_c.d>",
        "<a@b!c>",
        "<a@b%c>",
        "<a@b.c,d>",
        "<foo@[undefined]>",
        "<user@example.com#>",
        "<\"\"@c.d>",
        "<\"a\"b@c.d>",
        "<\"a@c.d>",
        "<\"a\\\"@c.d>",
        "<@x.y,a@b.c>",
        "<@:a@b.c>",
        "a@b.c",
        "<a@b.c",
    ];
    for input in refused {
        assert_eq!(fmt(input), None, "{input}");
    }
}

#[test]
fn control_characters_never_parse() {
    for bad in [
        "\0", "\r", "\n", "\t", "\x7f", "\u{85}", "\u{2028}", "\u{2029}", "\x1b",
    ] {
        for form in [
            format!("<a{bad}b@example.org>"),
            format!("<\"a{bad}b\"@example.org>"),
            format!("<\"a\\{bad}b\"@example.org>"),
            format!("<ab@exa{bad}mple.org>"),
            format!("<@r{bad}.example:ab@example.org>"),
        ] {
            assert_eq!(Address::parse(&form), None, "{form:?}");
        }
    }
    let a = Address::from_parts("x\0\r\nT\u{2028}y", Some("ex\nample.org"));
    assert_eq!(a.address(), "xTy@example.org");
}

#[test]
fn lengths() {
    let label = "a".repeat(63);
    assert!(Address::parse(&format!("<x@{label}.example>")).is_some());
    assert!(Address::parse(&format!("<x@{label}a.example>")).is_none());
    let long_domain = [label.as_str(); 4].join(".");
    assert!(Address::parse(&format!("<x@{long_domain}>")).is_some());
    assert!(Address::parse(&format!("<x@a.{long_domain}>")).is_none());
    let srs = format!("<SRS0=abcd=XY={}=user@example.org>", "e".repeat(80));
    assert!(Address::parse(&srs).is_some());
}

#[test]
fn parts_and_null() {
    let a = Address::parse("<Joe@Example.COM>").unwrap();
    assert_eq!((a.user(), a.host()), ("Joe", Some("Example.COM")));
    assert_eq!(a.address(), "Joe@Example.COM");
    assert!(Address::parse("<>").unwrap().is_null());
    assert!(!a.is_null());
}

#[test]
fn renderings() {
    let cases = [
        ("<a@b.c>", "a@b.c", "a@b.c", "<a@b.c>"),
        ("<\"a b\"@c.d>", "a b@c.d", "\"a b\"@c.d", "<\"a b\"@c.d>"),
        ("<\"x,y\"@c.d>", "x,y@c.d", "\"x,y\"@c.d", "<\"x,y\"@c.d>"),
        (
            "<\"a\\\\b\\\"c\"@c.d>",
            "a\\b\"c@c.d",
            "\"a\\\\b\\\"c\"@c.d",
            "<\"a\\\\b\\\"c\"@c.d>",
        ),
        ("<\"a\\ b\"@c.d>", "a b@c.d", "\"a b\"@c.d", "<\"a b\"@c.d>"),
        ("<postmaster>", "postmaster", "postmaster", "<postmaster>"),
        ("<>", "", "", "<>"),
    ];
    for (input, raw, mailbox, path) in cases {
        let a = Address::parse(input).unwrap();
        assert_eq!(a.address(), raw, "{input}");
        assert_eq!(a.mailbox(), mailbox, "{input}");
        assert_eq!(a.smtp_path(), path, "{input}");
        // The canonical form parses back to the same address.
        assert_eq!(Address::parse(&a.smtp_path()), Some(a.clone()), "{input}");
    }
}

#[test]
fn routing_forms() {
    for routed in [
        "<\"u@elsewhere\"@us.example>",
        "<u%elsewhere@us.example>",
        "<elsewhere!u@us.example>",
    ] {
        assert!(Address::parse(routed).unwrap().has_routing(), "{routed}");
    }
    for plain in [
        "<u@us.example>",
        "<@elsewhere:u@us.example>",
        "<postmaster>",
        "<>",
    ] {
        assert!(!Address::parse(plain).unwrap().has_routing(), "{plain}");
    }
}

#[test]
fn utf8_addresses_parse_and_are_flagged() {
    let a = Address::parse("<jürgen@bücher.example>").unwrap();
    assert_eq!(a.to_string(), "<jürgen@bücher.example>");
    assert!(!a.is_ascii());
    assert!(Address::parse("<a@b.example>").unwrap().is_ascii());
    assert!(Address::parse("<\"j ü\"@bücher.example>").is_some());
}
