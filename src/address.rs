//! Envelope addresses, parsed exactly as qpsmtpd's `Qpsmtpd::Address::canonify` does.
//!
//! The parser decides between `250` and `501`, so it keeps qpsmtpd's permissive quirks
//! (reference §12, quirk 7): the local part only has to *start* with an atom character
//! (`<a b@c.d>` is accepted), the domain pattern's unescaped `.` matches any character
//! (`<a@b_c.d>` is accepted), a quoted local part may not contain a space, and a source
//! route (`<@x.y:a@b.c>`) is dropped. Non-ASCII bytes are accepted where an atom or a
//! domain label character may stand, so SMTPUTF8 addresses parse; the session refuses
//! them when the client did not ask for SMTPUTF8 (RFC 6531 §3.4).

use std::fmt;

/// A parsed envelope address (a "path" without the angle brackets).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    user: String,
    host: Option<String>,
}

impl Address {
    /// The null reverse-path `<>`.
    pub fn null() -> Address {
        Address {
            user: String::new(),
            host: None,
        }
    }

    /// An address from its parts, without checks (for plugins and tests).
    pub fn from_parts(user: &str, host: Option<&str>) -> Address {
        Address {
            user: user.to_string(),
            host: host.map(str::to_string),
        }
    }

    /// Parses `<...>` as qpsmtpd does; `None` where qpsmtpd's `canonify` fails.
    pub fn parse(path: &str) -> Option<Address> {
        let inner = path.strip_prefix('<')?.strip_suffix('>')?;
        let inner = strip_source_route(inner);
        if inner.is_empty() {
            return Some(Address::null());
        }
        if inner.eq_ignore_ascii_case("postmaster") {
            return Some(Address::from_parts("postmaster", None));
        }
        let (local, domain) = split_mailbox(inner)?;
        if local.bytes().next().is_some_and(is_atom_start) {
            return Some(Address::from_parts(local, Some(domain)));
        }
        let unquoted = unquote(local)?;
        Some(Address {
            user: unquoted,
            host: Some(domain.to_string()),
        })
    }

    /// The local part (`""` for the null path).
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The domain, absent for `<>` and a bare `<postmaster>`.
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Is this the null path `<>`?
    pub fn is_null(&self) -> bool {
        self.user.is_empty() && self.host.is_none()
    }

    /// `user@host` without brackets or quoting (qpsmtpd's `address()`).
    pub fn address(&self) -> String {
        match &self.host {
            Some(h) => format!("{}@{}", self.user, h),
            None => self.user.clone(),
        }
    }

    /// Does the address contain anything outside ASCII (needs SMTPUTF8)?
    pub fn is_ascii(&self) -> bool {
        self.user.is_ascii() && self.host.as_deref().is_none_or(str::is_ascii)
    }
}

/// qpsmtpd's `format()`: `<user@host>`, or `<"escaped user"@host>` when the local part has
/// characters outside the atom set. Non-ASCII characters are left as they are (SMTPUTF8).
impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.user.chars().any(needs_quoting) {
            return write!(f, "<{}>", self.address());
        }
        f.write_str("<\"")?;
        for c in self.user.chars() {
            if needs_quoting(c) {
                f.write_str("\\")?;
            }
            write!(f, "{c}")?;
        }
        f.write_str("\"")?;
        match &self.host {
            Some(h) => write!(f, "@{h}>"),
            None => f.write_str(">"),
        }
    }
}

fn needs_quoting(c: char) -> bool {
    c.is_ascii() && !(c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c))
}

/// `[a-zA-Z0-9!#%&*+=?^_`{|}~$'/-]`, plus any non-ASCII byte.
fn is_atom_start(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#%&*+=?^_`{|}~$'-/".contains(&b) || b >= 0x80
}

/// A character that may start or end a domain label (`[a-zA-Z0-9]` or non-ASCII).
fn is_label_edge(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80
}

/// Splits at the last `@` whose remainder is a domain (qpsmtpd's greedy `^(.*)\@($domain)$`).
fn split_mailbox(s: &str) -> Option<(&str, &str)> {
    let bytes = s.as_bytes();
    (0..bytes.len())
        .rev()
        .filter(|&i| bytes[i] == b'@')
        .find(|&i| is_domain(&bytes[i + 1..]))
        .map(|i| (&s[..i], &s[i + 1..]))
}

/// `address_literal | subdomain(.subdomain)*`, where qpsmtpd's `.` matches any character.
pub fn is_domain(s: &[u8]) -> bool {
    is_address_literal(s) || domain_lengths(s).contains(&s.len())
}

/// `[1.2.3.4]` (one to three digits each) or `[IPv6:hex:colons.dots]`.
fn is_address_literal(s: &[u8]) -> bool {
    let Some(inner) = s.strip_prefix(b"[").and_then(|r| r.strip_suffix(b"]")) else {
        return false;
    };
    if let Some(v6) = inner.strip_prefix(b"IPv6:") {
        return !v6.is_empty()
            && v6
                .iter()
                .all(|b| b.is_ascii_hexdigit() || *b == b':' || *b == b'.');
    }
    let parts: Vec<&[u8]> = inner.split(|b| *b == b'.').collect();
    parts.len() == 4
        && parts
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.iter().all(u8::is_ascii_digit))
}

/// Every length n such that `s[..n]` matches `subdomain(.subdomain)*` (with `.` = any
/// character), in one pass: a label is `[alnum]([-alnum]*[alnum])?` and the next one may
/// start one character after a label ends.
fn domain_lengths(s: &[u8]) -> Vec<usize> {
    let n = s.len();
    let inner = |b: u8| is_label_edge(b) || b == b'-';
    // run_end[i]: where the run of label characters starting at i stops.
    let mut run_end = vec![n; n + 1];
    for i in (0..n).rev() {
        run_end[i] = if inner(s[i]) { run_end[i + 1] } else { i };
    }
    let mut reach = vec![false; n + 2];
    reach[0] = n > 0;
    let mut active = 0; // a label begun at a reachable start may end at or before this
    let mut ends = Vec::new();
    for i in 0..n {
        if reach[i] && is_label_edge(s[i]) {
            active = active.max(run_end[i]);
        }
        if i < active && is_label_edge(s[i]) {
            ends.push(i + 1);
            reach[i + 2] = true;
        }
    }
    ends
}

/// Drops a leading source route `@a.example,@b.example:` (RFC 5321 §4.1.2, "MUST BE
/// accepted ... SHOULD be ignored"), trying the longest match first as Perl's regex does.
fn strip_source_route(s: &str) -> &str {
    fn route_end(b: &[u8], pos: usize) -> Option<usize> {
        if b.get(pos) != Some(&b'@') {
            return None;
        }
        let rest = &b[pos + 1..];
        let mut lens = domain_lengths(rest);
        if let Some(close) = rest.iter().position(|&c| c == b']')
            && is_address_literal(&rest[..=close])
        {
            lens.push(close + 1);
        }
        lens.sort_unstable_by(|a, b| b.cmp(a));
        for len in lens {
            let after = pos + 1 + len;
            match b.get(after) {
                Some(b':') => return Some(after + 1),
                Some(b',') => {
                    if let Some(end) = route_end(b, after + 1) {
                        return Some(end);
                    }
                }
                _ => {}
            }
        }
        None
    }
    match route_end(s.as_bytes(), 0) {
        Some(end) => &s[end..],
        None => s,
    }
}

/// `"..."` with qtext (no space, no bare `"` or `\`) and `\x` escapes; `None` otherwise.
fn unquote(local: &str) -> Option<String> {
    let inner = local.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next()?;
                if next == '\n' || next == '\r' || next == '\0' {
                    return None;
                }
                out.push(next);
            }
            '"' | ' ' | '\r' | '\n' | '\0' => return None,
            _ => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> Option<String> {
        Address::parse(s).map(|a| a.to_string())
    }

    /// Reference §12, "Consequences [verified by direct calls]".
    #[test]
    fn qpsmtpd_canonify_table() {
        let accepted = [
            ("<>", "<>"),
            ("<postmaster>", "<postmaster>"),
            ("<POSTMASTER>", "<postmaster>"),
            ("<a@b>", "<a@b>"),
            ("<a.b@c.d>", "<a.b@c.d>"),
            ("<A@B.COM>", "<A@B.COM>"),
            ("<a.@b.c>", "<a.@b.c>"),
            ("<a..b@c.d>", "<a..b@c.d>"),
            ("<a b@c.d>", "<\"a\\ b\"@c.d>"),
            ("<\"a\\\"b\"@c.d>", "<\"a\\\"b\"@c.d>"),
            ("<\"a@b\"@c.d>", "<\"a\\@b\"@c.d>"),
            ("<a@b@c.d>", "<\"a\\@b\"@c.d>"),
            ("<a(b)@c.d>", "<\"a\\(b\\)\"@c.d>"),
            ("<a@b_c.d>", "<a@b_c.d>"),
            ("<a@b!c>", "<a@b!c>"),
            ("<a@b%c>", "<a@b%c>"),
            ("<a@b.c,d>", "<a@b.c,d>"),
            ("<a@[1.2.3.4]>", "<a@[1.2.3.4]>"),
            ("<a@[999.2.3.4]>", "<a@[999.2.3.4]>"),
            ("<a@[IPv6:::1]>", "<a@[IPv6:::1]>"),
            ("<a@1.2.3.4>", "<a@1.2.3.4>"),
            ("<@x.y:a@b.c>", "<a@b.c>"),
            ("<@x.y,@z.w:a@b.c>", "<a@b.c>"),
            (
                "<\"musa_ibrah@caramail.comandrea.luger\"@wifo.ac.at>",
                "<\"musa_ibrah\\@caramail.comandrea.luger\"@wifo.ac.at>",
            ),
        ];
        for (input, want) in accepted {
            assert_eq!(fmt(input).as_deref(), Some(want), "{input}");
        }
        let refused = [
            "<abuse>",
            "<user>",
            "<.a@b.c>",
            "<\"a b\"@c.d>",
            "<(a)@c.d>",
            "< a@b.c>",
            "<a@b.c >",
            "<a@b.c.>",
            "<a@-b.c>",
            "<a@b..c>",
            "<a@[foo]>",
            "<user@example.com#>",
            "a@b.c",
            "<a@b.c",
        ];
        for input in refused {
            assert_eq!(fmt(input), None, "{input}");
        }
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
    fn utf8_addresses_parse_and_are_flagged() {
        let a = Address::parse("<jürgen@bücher.example>").unwrap();
        assert_eq!(a.to_string(), "<jürgen@bücher.example>");
        assert!(!a.is_ascii());
        assert!(Address::parse("<a@b.example>").unwrap().is_ascii());
    }
}
