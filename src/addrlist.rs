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
    let Some(host) = addr.host().map(str::to_lowercase) else {
        return (None, skipped);
    };
    if addr.user().is_empty() {
        return (None, skipped);
    }
    let full = format!("{}@{host}", addr.user().to_lowercase());
    for line in lines {
        let mut parts = line.trim_start().splitn(2, char::is_whitespace);
        let Some(entry) = parts.next().filter(|e| !e.is_empty()) else {
            continue;
        };
        let reason = parts
            .next()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string);
        let hit = Hit {
            entry: entry.to_string(),
            reason,
        };
        if entry.contains(['/', '^', '$', '*', '+', '!', '%', '?', '\\']) {
            match Pattern::new(entry, case_insensitive_patterns) {
                Ok(re) if re.is_match(&full) => return (Some(hit), skipped),
                Ok(_) => {}
                Err(e) => skipped.push(Skipped {
                    entry: entry.to_string(),
                    why: format!("not a valid pattern: {e}"),
                }),
            }
            continue;
        }
        let entry_lc = entry.to_lowercase();
        if !entry_lc.contains('@') {
            skipped.push(Skipped {
                entry: entry.to_string(),
                why: "no @ sign".into(),
            });
            continue;
        }
        let matched = match entry_lc.strip_prefix('@') {
            Some(domain) => domain == host,
            None => entry_lc == full,
        };
        if matched {
            return (Some(hit), skipped);
        }
    }
    (None, skipped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(lines: &[&str], addr: &str) -> Option<Hit> {
        find(lines.iter().copied(), &Address::parse(addr).unwrap(), false).0
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
    }
}
