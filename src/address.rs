//! Envelope addresses: one strict parser for the paths of MAIL and RCPT, and the one place
//! each hand-off format is written from.
//!
//! The grammar is RFC 5321 §4.1.2 with RFC 6531's additions (README Differences 60):
//!
//! ```text
//! Path       = "<" [ A-d-l ":" ] Mailbox ">"        the source route is accepted and dropped
//! Mailbox    = Local-part "@" ( Domain / address-literal )
//! Local-part = Dot-string / Quoted-string            an empty local part is refused
//! Dot-string = Atom *("." Atom)                      Atom = 1*atext (RFC 5322 atext, non-ASCII)
//! Quoted-string = DQUOTE *( qtextSMTP / "\" %d32-126 ) DQUOTE
//! Domain     = sub-domain *("." sub-domain)          letters, digits, inner hyphens, U-labels
//! address-literal = "[" IPv4 "]" / "[IPv6:" IPv6 "]"
//! ```
//!
//! plus `<>` and a bare `<postmaster>` (any case). No control character (C0, DEL, C1) and
//! no line or paragraph separator (U+2028, U+2029) is accepted anywhere, not even quoted;
//! an address therefore can never carry a byte that ends a line, a header field or a
//! qmail-queue envelope entry. Labels are at most 63 octets and a domain at most 255
//! (RFC 1035 §2.3.4); the local part has no length limit (SRS and VERP addresses exceed 64).
//!
//! An [`Address`] holds the local part's *value* (quotes and backslashes removed), so
//! `<"joe"@example.org>` and `<joe@example.org>` are the same address. Each hand-off
//! writes it in its own format:
//!
//! | Format | Method | Example for `<"a b"@example.org>` |
//! |---|---|---|
//! | replies, logs (qpsmtpd's `format`) | `Display` | `<"a\ b"@example.org>` |
//! | SMTP, LMTP and BSMTP `MAIL`/`RCPT` lines, `Return-Path` | [`Address::smtp_path`] | `<"a b"@example.org>` |
//! | sendmail arguments, `Delivered-To` | [`Address::mailbox`] | `"a b"@example.org` |
//! | qmail-queue envelope, plugin facts (qpsmtpd's `address`) | [`Address::address`] | `a b@example.org` |
//!
//! The canonical forms quote a local part only when it is not a dot-string, and then
//! escape only `"` and `\` (RFC 5321 §4.1.2), so an RFC 822 address-list parser (Postfix's
//! `sendmail`, Exim) reads exactly one address from [`Address::mailbox`].

use std::fmt;
use std::net::Ipv6Addr;

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

    /// An address from its parts, without the grammar check (for plugins and tests).
    /// Characters no address may hold (see [`forbidden`]) are dropped, so every
    /// [`Address`] can be written safely in every format.
    pub fn from_parts(user: &str, host: Option<&str>) -> Address {
        let clean = |s: &str| s.chars().filter(|c| !forbidden(*c)).collect::<String>();
        Address {
            user: clean(user),
            host: host.map(clean),
        }
    }

    /// Parses `<...>` by the grammar above; `None` for anything it does not allow.
    pub fn parse(path: &str) -> Option<Address> {
        let inner = path.strip_prefix('<')?.strip_suffix('>')?;
        if inner.chars().any(forbidden) {
            return None;
        }
        if inner.is_empty() {
            return Some(Address::null());
        }
        let mailbox = strip_source_route(inner)?;
        if mailbox.eq_ignore_ascii_case("postmaster") {
            return Some(Address::from_parts("postmaster", None));
        }
        let (user, rest) = local_part(mailbox)?;
        let domain = rest.strip_prefix('@')?;
        if user.is_empty() || !is_domain(domain) {
            return None;
        }
        Some(Address {
            user,
            host: Some(domain.to_string()),
        })
    }

    /// The local part's value (`""` for the null path).
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

    /// `user@host` without brackets or quoting (qpsmtpd's `address()`): the form of
    /// qmail-queue's envelope and of qmail-smtpd's `SMTPRCPTTO`. It holds no NUL, CR or LF.
    pub fn address(&self) -> String {
        match &self.host {
            Some(h) => format!("{}@{}", self.user, h),
            None => self.user.clone(),
        }
    }

    /// The local part as RFC 5321 writes it: a dot-string as it is, anything else
    /// quoted with `"` and `\` escaped.
    pub fn local_part(&self) -> String {
        if is_dot_string(&self.user) {
            return self.user.clone();
        }
        let mut out = String::with_capacity(self.user.len() + 2);
        out.push('"');
        for c in self.user.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
        out
    }

    /// `local@domain` in canonical form (quoted local part when needed), `""` for the
    /// null path: a sendmail argument or a `Delivered-To` value.
    pub fn mailbox(&self) -> String {
        if self.is_null() {
            return String::new();
        }
        match &self.host {
            Some(h) => format!("{}@{h}", self.local_part()),
            None => self.local_part(),
        }
    }

    /// `<local@domain>` in canonical form, `<>` for the null path: what goes after
    /// `MAIL FROM:` / `RCPT TO:` to a next hop, into BSMTP and into `Return-Path`.
    pub fn smtp_path(&self) -> String {
        format!("<{}>", self.mailbox())
    }

    /// Does the address contain anything outside ASCII (needs SMTPUTF8)?
    pub fn is_ascii(&self) -> bool {
        self.user.is_ascii() && self.host.as_deref().is_none_or(str::is_ascii)
    }

    /// Sender-specified routing: a local part that holds `@`, `%` or `!`, which a
    /// downstream MTA may treat as a further hop (`"user@elsewhere"@us`,
    /// `user%elsewhere@us`, `elsewhere!user@us`).
    pub fn has_routing(&self) -> bool {
        self.host.is_some() && self.user.contains(['@', '%', '!'])
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

/// Characters no address may hold: control characters (C0, DEL, C1, which includes
/// U+0085 NEXT LINE) and the Unicode line and paragraph separators.
pub fn forbidden(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

/// RFC 5322 `atext`, plus any (allowed) non-ASCII character (RFC 6531 §3.3).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !forbidden(c))
}

/// `Atom *("." Atom)`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// `qtextSMTP`: printable ASCII except `"` and `\`, and non-ASCII.
fn is_qtext(c: char) -> bool {
    matches!(c, ' '..='~') && c != '"' && c != '\\' || (!c.is_ascii() && !forbidden(c))
}

/// The local part at the start of `s` (dot-string or quoted string) as its value, and
/// what follows it.
fn local_part(s: &str) -> Option<(String, &str)> {
    let Some(quoted) = s.strip_prefix('"') else {
        let end = s.find('@')?;
        let dot_string = &s[..end];
        return is_dot_string(dot_string).then(|| (dot_string.to_string(), &s[end..]));
    };
    let mut value = String::new();
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &quoted[i + 1..])),
            '\\' => match chars.next() {
                Some((_, e)) if matches!(e, ' '..='~') => value.push(e),
                _ => return None,
            },
            c if is_qtext(c) => value.push(c),
            _ => return None,
        }
    }
    None
}

/// `Domain` or `address-literal`.
pub fn is_domain(s: &str) -> bool {
    if s.starts_with('[') {
        return is_address_literal(s);
    }
    s.len() <= 255 && s.split('.').all(is_label)
}

/// `Let-dig [Ldh-str]` (letters and digits, hyphens inside), or a U-label; at most 63 octets.
fn is_label(label: &str) -> bool {
    let edge = |c: char| c.is_ascii_alphanumeric() || (!c.is_ascii() && !forbidden(c));
    let (Some(first), Some(last)) = (label.chars().next(), label.chars().next_back()) else {
        return false;
    };
    label.len() <= 63 && edge(first) && edge(last) && label.chars().all(|c| edge(c) || c == '-')
}

/// `[1.2.3.4]` (each number 0–255) or `[IPv6:...]` (any RFC 4291 text form).
fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    if let Some(v6) = inner.strip_prefix("IPv6:") {
        return v6.parse::<Ipv6Addr>().is_ok();
    }
    let parts: Vec<&str> = inner.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            (1..=3).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// Drops a leading source route `@a.example,@b.example:` (RFC 5321 §4.1.2: "MUST BE
/// accepted ... SHOULD be ignored"); `None` for a route that is not well formed.
fn strip_source_route(s: &str) -> Option<&str> {
    let mut rest = s;
    while let Some(hop) = rest.strip_prefix('@') {
        // A hop ends at `,` or `:` outside an address literal's brackets.
        let end = if hop.starts_with('[') {
            hop.find(']')? + 1
        } else {
            hop.find([',', ':'])?
        };
        if !is_domain(&hop[..end]) {
            return None;
        }
        match hop[end..].chars().next() {
            Some(',') => rest = &hop[end + 1..],
            Some(':') => return Some(&hop[end + 1..]),
            _ => return None,
        }
    }
    (rest.len() == s.len()).then_some(s)
}

#[cfg(test)]
mod tests;
