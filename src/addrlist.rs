//! Address lists in qpsmtpd's `badmailfrom` / `badrcptto` format, shared by both plugins.
//!
//! Each line is `entry [reason]`. An entry with any of `/ ^ $ * + ! % ? \` is a regular
//! expression matched against `user@host` (lower-cased); one starting with `@` matches a
//! whole domain; anything else must equal the address. Entries without `@` that are not
//! patterns are ignored with a warning, as qpsmtpd does.

use crate::pattern::Pattern;

use crate::address::Address;

/// A list entry that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The entry as written.
    pub entry: String,
    /// The reason written after it, if any.
    pub reason: Option<String>,
}

/// Why an entry was skipped (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The entry.
    pub entry: String,
    /// Why.
    pub why: String,
}

/// Looks `addr` up in the list lines; `case_insensitive_patterns` is badrcptto's `/i`.
pub fn find<'a>(
    lines: impl Iterator<Item = &'a str>,
    addr: &Address,
    case_insensitive_patterns: bool,
) -> (Option<Hit>, Vec<Skipped>) {
    let mut skipped = Vec::new();
    let (user, Some(host)) = (addr.user(), addr.host()) else {
        return (None, skipped);
    };
    if user.is_empty() {
        return (None, skipped);
    }
    // The lower-cased `host` and `user@host`, made only when a line needs them: for a
    // pattern, or when the entry or the address is not ASCII (where Unicode lower-casing
    // can turn another character into an ASCII one: the Kelvin sign into `k`).
    let ascii = user.is_ascii() && host.is_ascii();
    let cell = std::cell::OnceCell::new();
    let lowered = || {
        cell.get_or_init(|| {
            let host = host.to_lowercase();
            let full = format!("{}@{host}", user.to_lowercase());
            (host, full)
        })
    };
    for line in lines {
        let (entry, rest) = split_entry(line);
        if entry.is_empty() {
            continue;
        }
        // The Hit, with its copies of entry and reason, only for the line that matches:
        // a list of thousands of lines is read on every MAIL or RCPT.
        let hit = || Hit {
            entry: entry.to_string(),
            reason: Some(rest.trim()).filter(|r| !r.is_empty()).map(str::to_string),
        };
        if entry.bytes().any(pattern_byte) {
            match Pattern::new(entry, case_insensitive_patterns) {
                Ok(re) if re.is_match(&lowered().1) => return (Some(hit()), skipped),
                Ok(_) => {}
                Err(e) => skipped.push(Skipped {
                    entry: entry.to_string(),
                    why: format!("not a valid pattern: {e}"),
                }),
            }
            continue;
        }
        if !entry.as_bytes().contains(&b'@') {
            skipped.push(Skipped {
                entry: entry.to_string(),
                why: "no @ sign".into(),
            });
            continue;
        }
        let names = if ascii && entry.is_ascii() {
            ascii_names(entry, user, host)
        } else {
            let (host, full) = lowered();
            lowercase_equals(entry, host, full)
        };
        if names {
            return (Some(hit()), skipped);
        }
    }
    (None, skipped)
}

/// Does the ASCII `entry` name the ASCII address `user@host` or its domain (`@host`),
/// ignoring ASCII case: what [`lowercase_equals`] answers, without lower-cased copies.
fn ascii_names(entry: &str, user: &str, host: &str) -> bool {
    match entry.strip_prefix('@') {
        Some(domain) => domain.eq_ignore_ascii_case(host),
        None => {
            entry.len() == user.len() + 1 + host.len()
                && entry.as_bytes()[user.len()] == b'@'
                && entry[..user.len()].eq_ignore_ascii_case(user)
                && entry[user.len() + 1..].eq_ignore_ascii_case(host)
        }
    }
}

/// A byte that makes an entry a pattern (all ASCII, so never part of another character's
/// UTF-8).
fn pattern_byte(b: u8) -> bool {
    matches!(b, b'/' | b'^' | b'$' | b'*' | b'+' | b'!' | b'%' | b'?' | b'\\')
}

/// `entry [reason]`: the line's first word and the rest, split at white space as
/// `char::is_whitespace` knows it. ASCII up to the split (nearly every line) is read byte
/// by byte; a line with another character before it takes the general route.
fn split_entry(line: &str) -> (&str, &str) {
    let line = line.trim_start();
    let end = match line
        .bytes()
        .position(|b| matches!(b, b'\t'..=b'\r' | b' ') || b >= 0x80)
    {
        Some(i) if line.as_bytes()[i] >= 0x80 => line.find(char::is_whitespace).unwrap_or(line.len()),
        Some(i) => i,
        None => line.len(),
    };
    line.split_at(end)
}

/// Does `entry`, lower-cased, name the address (`user@host`, `full`) or its domain
/// (`@host`)? `host` and `full` are lower-cased already. An ASCII entry (nearly all) is
/// compared without a lower-cased copy; any other is lower-cased as before (Unicode
/// rules, including a final sigma).
fn lowercase_equals(entry: &str, host: &str, full: &str) -> bool {
    if entry.is_ascii() {
        return match entry.strip_prefix('@') {
            Some(domain) => domain.eq_ignore_ascii_case(host),
            None => entry.eq_ignore_ascii_case(full),
        };
    }
    let entry = entry.to_lowercase();
    match entry.strip_prefix('@') {
        Some(domain) => domain == host,
        None => entry == full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(lines: &[&str], addr: &str) -> Option<Hit> {
        find(lines.iter().copied(), &Address::parse(addr).unwrap(), false).0
    }

    /// ASCII entries and addresses are compared in place, ignoring ASCII case: the whole
    /// entry, split where the address has its `@`, with nothing more or less.
    #[test]
    fn ascii_entries_match_whole_addresses_in_any_case() {
        assert!(hit(&["mAtT@tEsT.cOm"], "<MaTt@TeSt.CoM>").is_some());
        assert!(hit(&["matt@test.co"], "<matt@test.com>").is_none());
        assert!(hit(&["matt@test.comm"], "<matt@test.com>").is_none());
        assert!(hit(&["mat@ttest.com"], "<matt@test.com>").is_none());
        assert!(hit(&["matt.test.com"], "<matt@test.com>").is_none());
        assert!(hit(&["@TEST.COM"], "<matt@test.com>").is_some());
        assert!(hit(&["@test.co"], "<matt@test.com>").is_none());
    }

    /// qpsmtpd t/plugin_tests/badmailfrom cases.
    #[test]
    fn exact_domain_and_pattern() {
        assert!(hit(&["matt@test.com"], "<matt@test.com>").is_some());
        assert!(hit(&["Matt@Test.com"], "<MATT@test.COM>").is_some());
        assert!(hit(&["@test.net"], "<x@test.net>").is_some());
        assert!(hit(&["@test.net"], "<x@sub.test.net>").is_none());
        assert!(hit(&["test.net$"], "<x@sub.test.net>").is_some());
        assert!(hit(&["other@test.com"], "<matt@test.com>").is_none());
        assert!(hit(&["matt@test.com"], "<>").is_none());
    }

    #[test]
    fn reasons_and_skips() {
        let h = hit(&["  @spam.example   go away please"], "<a@spam.example>").unwrap();
        assert_eq!(h.reason.as_deref(), Some("go away please"));
        let (found, skipped) = find(
            ["nodomain", "[bad("].into_iter(),
            &Address::parse("<a@b.c>").unwrap(),
            false,
        );
        assert!(found.is_none());
        assert_eq!(skipped.len(), 2, "{skipped:?}");
        let (_, skipped) = find(["bad(+"].into_iter(), &Address::parse("<a@b.c>").unwrap(), false);
        assert_eq!(skipped.len(), 1);
        // The reason of the line that matched, not of one before it.
        let h = hit(&["@a.example first", "b@b.example second"], "<B@B.example>").unwrap();
        assert_eq!(
            (h.entry.as_str(), h.reason.as_deref()),
            ("b@b.example", Some("second"))
        );
    }

    #[test]
    fn entries_split_at_any_white_space() {
        assert_eq!(split_entry("  a@b.c\x0bwhy"), ("a@b.c", "\x0bwhy"));
        assert_eq!(split_entry("a@b.c"), ("a@b.c", ""));
        assert_eq!(split_entry("\u{a0}é@b.c\u{2003}why"), ("é@b.c", "\u{2003}why"));
        assert_eq!(split_entry("é@b.c\twhy"), ("é@b.c", "\twhy"));
        let h = hit(&["@b.example\u{3000}full-width space"], "<a@b.example>").unwrap();
        assert_eq!(h.reason.as_deref(), Some("full-width space"));
    }

    #[test]
    fn case_is_folded_as_unicode_lowercase() {
        // An ASCII entry against an ASCII address, and entries with other letters, which
        // are lower-cased with Unicode's rules on both sides.
        assert!(hit(&["@TEST.Example"], "<x@test.example>").is_some());
        assert!(hit(&["JÖRG@example.org"], "<jörg@example.org>").is_some());
        assert!(hit(&["jörg@example.org"], "<JÖRG@EXAMPLE.org>").is_some());
        assert!(hit(&["@BÜCHER.example"], "<a@bücher.example>").is_some());
        assert!(hit(&["jorg@example.org"], "<jörg@example.org>").is_none());
        // The address is lower-cased with Unicode's rules too: the Kelvin sign is a k.
        assert!(hit(&["\u{212a}@example.org"], "<k@example.org>").is_some());
        assert!(hit(&["k@example.org"], "<\u{212a}@example.org>").is_some());
    }
}
