//! The regular expressions admins write in config files (badmailfrom, badrcptto, badhelo),
//! matched the way Perl qpsmtpd matched them: against the bytes of the text, with `\w`,
//! `\d`, `\s`, `\b` and `/i` knowing ASCII only, as Perl's matching of byte strings does
//! (README Differences 90). Without Unicode mode the regex crate needs none of its
//! Unicode tables, whose ~5,800 pointers the dynamic loader would otherwise relocate in
//! every process (README "Performance").

use regex::bytes::{Regex, RegexBuilder};

/// A compiled config pattern.
#[derive(Debug, Clone)]
pub struct Pattern(Regex);

impl Pattern {
    /// Compiles `pattern`, ASCII case-insensitive when `ignore_case` (Perl's `/i`).
    /// `\p{...}` and other Unicode-only syntax is an error, as are invalid patterns.
    pub fn new(pattern: &str, ignore_case: bool) -> Result<Pattern, regex::Error> {
        RegexBuilder::new(pattern)
            .unicode(false)
            .case_insensitive(ignore_case)
            .build()
            .map(Pattern)
    }

    /// Whether the pattern matches anywhere in `text` (its UTF-8 bytes).
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, ignore_case: bool, text: &str) -> bool {
        Pattern::new(pattern, ignore_case).unwrap().is_match(text)
    }

    #[test]
    fn perl_classes_and_case_know_ascii_only() {
        assert!(matches(r"^\w+@example\.org$", false, "bob_1@example.org"));
        assert!(!matches(r"^\w+@", false, "jürgen@example.org"));
        assert!(matches(r"^\S+@", false, "jürgen@example.org"));
        assert!(matches("^BOB@", true, "bob@example.org"));
        assert!(!matches("^BOB@", false, "bob@example.org"));
        // Like Perl on byte strings: no case folding beyond ASCII.
        assert!(!matches("^JÜRGEN@", true, "jürgen@example.org"));
    }

    #[test]
    fn non_ascii_text_is_matched_as_its_bytes() {
        assert!(matches("jürgen@", false, "jürgen@example.org"));
        assert!(matches("^j.{2}rgen@", false, "jürgen@example.org"));
        assert!(matches(r"\.xn--p1ai$", false, "spam@example.xn--p1ai"));
    }

    #[test]
    fn unicode_only_syntax_is_refused() {
        assert!(Pattern::new(r"\p{Greek}", false).is_err());
        // `(?u)` turning Unicode back on fails only in the shipped build, which has no
        // Unicode tables; test builds get them through proptest's own use of the crate.
        assert!(Pattern::new("(unclosed", false).is_err());
    }
}
