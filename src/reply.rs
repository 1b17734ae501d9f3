//! SMTP replies: one type, built and rendered in one place.
//!
//! Every reply the server sends goes through [`Reply`]. Core replies carry an RFC 3463
//! enhanced status code chosen where they are built; plugin messages get one derived from
//! their text (a leading `5.7.1`, or qpsmtpd's `(#5.7.1)` DSN suffix) or from the context.
//! The greeting, the HELO/EHLO answers and `354` carry none (RFC 2034 §3).
//!
//! A reply whose code and text never change is a [`Fixed`] constant with a name (the
//! session's are in `session/fixed.rs`); its text may name one value to fill in, written
//! `<like-this>` (lower case, so `<CRLF>` is text).

/// One SMTP reply: a code, an optional enhanced status code and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 enhanced status code (`x.y.z`), shown on every line when present.
    pub status: Option<String>,
    /// Text lines; never empty when rendered (an empty list renders one empty line).
    pub lines: Vec<String>,
}

impl Reply {
    /// A reply with an enhanced status code.
    pub fn new(code: u16, status: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Some(status.to_string()),
            lines: split_line(text.into()),
        }
    }

    /// A reply without an enhanced status code (greeting, HELO/EHLO, 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: split_line(text.into()),
        }
    }

    /// A multi-line reply without an enhanced status code.
    pub fn plain_lines(code: u16, lines: Vec<String>) -> Reply {
        Reply {
            code,
            status: None,
            lines: split_lines(&lines),
        }
    }

    /// A reply built from a plugin's message lines.
    ///
    /// qpsmtpd splits messages at `\n` and uses `default_text` when the plugin gave none
    /// (README Differences 6: empty lines never cut a reply short and a deny without text
    /// still gets a reply). The enhanced code is taken from the text
    /// when the plugin wrote one, else `default_status`; its class digit always follows
    /// the reply code.
    pub fn from_plugin(code: u16, default_status: &str, msg: &[String], default_text: &str) -> Reply {
        let mut lines = split_lines(msg);
        if lines.is_empty() {
            lines = split_lines(&[default_text.to_string()]);
        }
        // The first line's leading code is the reply's; a plugin that wrote it on every
        // line (as SMTP does) must not get it twice.
        let mut status = None;
        for line in lines.iter_mut() {
            if let Some((code_text, rest)) = leading_status(line) {
                status.get_or_insert_with(|| code_text.to_string());
                *line = rest.to_string();
            }
        }
        if status.is_none() {
            status = lines.iter().find_map(|l| dsn_suffix(l)).map(str::to_string);
        }
        let status = with_class(status.as_deref().unwrap_or(default_status), code);
        Reply {
            code,
            status: Some(status),
            lines,
        }
    }

    /// Is this a 4xx or 5xx reply?
    pub fn is_failure(&self) -> bool {
        self.code >= 400
    }

    /// Renders the reply as it goes on the wire, CRLF line ends.
    pub fn render(&self, out: &mut Vec<u8>) {
        let empty = [String::new()];
        let lines: &[String] = if self.lines.is_empty() {
            &empty
        } else {
            &self.lines
        };
        let last = lines.len() - 1;
        // Each line is written straight into `out`; `start` is where it began.
        for (i, line) in lines.iter().enumerate() {
            let start = out.len();
            push_code(out, self.code);
            out.push(if i == last { b' ' } else { b'-' });
            if let Some(status) = &self.status {
                out.extend_from_slice(status.as_bytes());
                if !line.is_empty() {
                    out.push(b' ');
                }
            }
            push_cut(out, start, line, MAX_LINE - 2);
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The rendered reply as a string (for logs and tests).
    pub fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.render(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// The longest reply line, CRLF included (RFC 5321 §4.5.3.1.5).
pub const MAX_LINE: usize = 512;

/// Appends `text` to `out`, cut (and marked `...`) so that the line begun at `start` stays
/// within `max` bytes.
fn push_cut(out: &mut Vec<u8>, start: usize, text: &str, max: usize) {
    let used = out.len() - start;
    if used + text.len() <= max {
        return out.extend_from_slice(text.as_bytes());
    }
    let mut end = max.saturating_sub(used + 3);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&text.as_bytes()[..end]);
    out.extend_from_slice(b"...");
}

/// A reply with a fixed code, enhanced status code and text (which may name values to
/// fill in: `<me> closing connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fixed {
    /// The three-digit reply code.
    pub code: u16,
    /// The RFC 3463 enhanced status code; `None` for the greeting, HELO/EHLO and `354`.
    pub status: Option<&'static str>,
    /// The text, with its `<placeholders>`.
    pub text: &'static str,
}

impl Fixed {
    /// A fixed reply with an enhanced status code.
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Fixed {
        Fixed {
            code,
            status: Some(status),
            text,
        }
    }

    /// A fixed reply without one.
    pub const fn plain(code: u16, text: &'static str) -> Fixed {
        Fixed {
            code,
            status: None,
            text,
        }
    }

    // The methods hand the fields on one by one (inlined): a whole `Fixed` passed by
    // reference would make each constant a table in the binary with two pointers to
    // relocate at every start, where a field is an address in the code.

    /// The reply as it is.
    #[inline(always)]
    pub fn reply(self) -> Reply {
        filled(self.code, self.status, self.text, &[])
    }

    /// The reply with its one placeholder filled in.
    #[inline(always)]
    pub fn about(self, value: &str) -> Reply {
        filled(self.code, self.status, self.text, &[value])
    }

    /// The reply with the plugin's message as its text, else this one (see
    /// [`Reply::from_plugin`]).
    #[inline(always)]
    pub fn or_plugin(self, msg: &[String]) -> Reply {
        Reply::from_plugin(self.code, self.status.unwrap_or(""), msg, self.text)
    }

    /// The reply with its placeholders filled in, in order.
    #[inline(always)]
    pub fn with(self, values: &[&str]) -> Reply {
        filled(self.code, self.status, self.text, values)
    }
}

/// A reply from a fixed reply's fields, placeholders filled in.
fn filled(code: u16, status: Option<&str>, text: &str, values: &[&str]) -> Reply {
    let text = fill(text, values);
    match status {
        Some(status) => Reply::new(code, status, text),
        None => Reply::plain(code, text),
    }
}

/// `text` with its `<placeholders>` (a `<`, lower-case letters and `-`, a `>`) replaced by
/// `values` in order; placeholders without a value are left as they are.
pub fn fill<'a>(text: &'a str, values: &[&str]) -> std::borrow::Cow<'a, str> {
    let mut values = values.iter();
    let mut out = String::new();
    let mut rest = text;
    while let Some((start, len)) = next_placeholder(rest) {
        let Some(value) = values.next() else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + len..];
    }
    if out.is_empty() && rest.len() == text.len() {
        return std::borrow::Cow::Borrowed(text);
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Where the first `<placeholder>` in `text` starts, and its length.
fn next_placeholder(text: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(open) = crate::bytes::find_byte(b'<', &text.as_bytes()[from..]).map(|i| from + i) {
        let name_len = text[open + 1..]
            .bytes()
            .take_while(|b| b.is_ascii_lowercase() || *b == b'-')
            .count();
        if name_len > 0 && text.as_bytes().get(open + 1 + name_len) == Some(&b'>') {
            return Some((open, name_len + 2));
        }
        from = open + 1;
    }
    None
}

/// Appends a reply code: three digits without the formatting machinery (every reply
/// line starts with one).
fn push_code(out: &mut Vec<u8>, code: u16) {
    if (100..=999).contains(&code) {
        out.extend_from_slice(&[
            b'0' + (code / 100) as u8,
            b'0' + (code / 10 % 10) as u8,
            b'0' + (code % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(code.to_string().as_bytes());
    }
}

/// [`split_lines`] of one text, which is kept as it is when it is one clean line.
fn split_line(text: String) -> Vec<String> {
    if is_one_clean_line(&text) {
        return vec![text];
    }
    split_lines(std::slice::from_ref(&text))
}

/// Is `m` a non-empty text without control characters (C0, DEL, or C1, which UTF-8
/// encodes after 0xC2)? The tab is allowed.
fn is_one_clean_line(m: &str) -> bool {
    !m.is_empty()
        && m.bytes()
            .all(|b| (b >= 0x20 && b != 0x7f && b != 0xc2) || b == b'\t')
}

/// Splits message lines at `\n`, drops `\r` and other control characters that must not
/// reach the wire, and removes empty lines (qpsmtpd's `map { split /\n/ }`).
fn split_lines(msg: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for m in msg {
        // Most texts are one clean line: no control character at all (C0, DEL, or C1,
        // which UTF-8 encodes after 0xC2), so no character-by-character rebuild.
        if is_one_clean_line(m) {
            lines.push(m.clone());
            continue;
        }
        for part in m.split('\n') {
            let clean: String = part.chars().filter(|c| !c.is_control() || *c == '\t').collect();
            if !clean.is_empty() {
                lines.push(clean);
            }
        }
    }
    lines
}

/// `5.7.1 rest` → (`5.7.1`, `rest`).
fn leading_status(line: &str) -> Option<(&str, &str)> {
    let end = line.find(' ').unwrap_or(line.len());
    let candidate = &line[..end];
    if is_status(candidate) {
        Some((candidate, line[end..].trim_start()))
    } else {
        None
    }
}

/// qpsmtpd's DSN texts end in `(#5.7.1)`.
fn dsn_suffix(line: &str) -> Option<&str> {
    let start = line.rfind("(#")? + 2;
    let end = start + line[start..].find(')')?;
    let candidate = &line[start..end];
    is_status(candidate).then_some(candidate)
}

/// `class.subject.detail` as RFC 3463 §2 defines it.
fn is_status(s: &str) -> bool {
    let mut parts = s.split('.');
    let (Some(class), Some(subject), Some(detail), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    matches!(class, "2" | "4" | "5")
        && (1..=3).contains(&subject.len())
        && (1..=3).contains(&detail.len())
        && subject.bytes().all(|b| b.is_ascii_digit())
        && detail.bytes().all(|b| b.is_ascii_digit())
}

/// Replaces the class digit so it agrees with the reply code (a 4.x.x code on a 550 reply
/// would contradict itself).
fn with_class(status: &str, code: u16) -> String {
    let class = (code / 100).to_string();
    match status.split_once('.') {
        Some((_, rest)) => format!("{class}.{rest}"),
        None => format!("{class}.0.0"),
    }
}

#[cfg(test)]
mod tests;
