//! Our trace headers against hostile names and forged authserv-ids.

use super::*;

#[test]
fn dkim_h_tag() {
    let sig = "v=1; a=rsa-sha256; h=From:Subject:Authentication-Results; bh=x";
    assert_eq!(dkim_tag(sig, "h"), Some("From:Subject:Authentication-Results"));
    assert_eq!(dkim_tag(sig, "z"), None);
}

#[test]
fn date_format() {
    let d = rfc5322(std::time::SystemTime::now());
    // e.g. "Sun, 22 Nov 2026 02:12:51 +0000"
    assert_eq!(d.len(), 31, "{d}");
    assert!(d[26..].starts_with('+') || d[26..].starts_with('-'), "{d}");
}

#[test]
fn helo_cannot_inject_or_break_the_comment() {
    assert_eq!(comment_text("a\u{1}b", false), "a?b");
    assert_eq!(comment_text("x(y)z;w\\v", false), "x\\(y\\)z\\;w\\\\v");
    assert_eq!(comment_text("b\u{fffd}d.\u{fc}", false), "b?d.?");
    assert_eq!(comment_text("b\u{fffd}d.\u{fc}", true), "b?d.\u{fc}");
    assert_eq!(comment_text("a\u{202e}b\u{200b}c\u{2028}d", true), "a?b?c?d");
}

#[test]
fn long_names_are_cut() {
    let cut = comment_text(&"h".repeat(16_000), false);
    assert_eq!(cut.len(), MAX_NAME + 3);
    assert!(cut.ends_with("h..."));
    let cut = comment_text(&"(".repeat(1000), false);
    assert!(cut.len() <= MAX_NAME + 3 && cut.ends_with("\\(..."), "{cut}");
    let cut = comment_text(&"\u{10348}".repeat(1000), true);
    assert!(cut.len() <= MAX_NAME + 3 && cut.ends_with("..."), "{cut}");
}

#[test]
fn authserv_id_is_read_generously() {
    for raw in [
        " test.example.org; spf=pass",
        " TEST.example.org.;",
        " (c (nested) \\) more) test.example.org 1 ; x",
        "\n test.example.org(comment);",
        " \"test.example.org\"; spf=pass",
        " \"test.\\example.org\";",
    ] {
        assert_eq!(authserv_id(raw), "test.example.org", "{raw:?}");
    }
    assert_eq!(authserv_id(" other.example; spf=pass"), "other.example");
    assert_eq!(authserv_id(" (unclosed"), "");
    assert_eq!(authserv_id(""), "");
}

#[test]
fn ids_a_lenient_reader_takes_for_ours_are_claims() {
    let ours = normal_id("Test.Example.ORG.");
    for raw in [
        " =?utf-8?q?test.example.org?=; dkim=pass",
        " =?us-ascii?b?VEVTVC5leGFtcGxlLm9yZw==?=; dkim=pass",
        " test.example.org/1; dkim=pass",
        " test.example.org:25; x",
        " test.example.org,; x",
        " test.example.org=; x",
        " \u{200b}test.example.org; x",
        " \u{feff}test.exam\u{ad}ple.org; x",
        " test.example.org\u{fffd}; x",
        " \u{ff54}est.example.org; x",
        " test\u{3002}example\u{ff0e}org\u{ff61}; x",
    ] {
        assert!(claims_id(raw.as_bytes(), &ours), "{raw:?}");
    }
    for raw in [
        " other.example; dkim=pass",
        " mail.test.example.org; x",
        " test.example.org.evil; x",
        " =?utf-8?q?other.example?=; x",
        " (test.example.org) other.example; x",
    ] {
        assert!(!claims_id(raw.as_bytes(), &ours), "{raw:?}");
    }
    // A Unicode id compares without case too.
    assert!(claims_id(
        " B\u{dc}CHER.example; x".as_bytes(),
        &normal_id("b\u{fc}cher.example")
    ));
}

#[test]
fn auth_user_as_property_value() {
    assert_eq!(pvalue("good@example.com", false), "good@example.com");
    assert_eq!(pvalue("bob", false), "bob");
    assert_eq!(
        pvalue("a@b; dkim=pass header.d=paypal.com", false),
        "\"a@b; dkim=pass header.d=paypal.com\""
    );
    assert_eq!(pvalue("odd(x);y@example.com", false), "\"odd(x);y@example.com\"");
    assert_eq!(pvalue("a \"b\\", false), "\"a \\\"b\\\\\"");
    assert_eq!(pvalue("j\u{f6}rg\r", false), "\"j?rg?\"");
    assert_eq!(pvalue("j\u{f6}rg", true), "\"j\u{f6}rg\"");
}
