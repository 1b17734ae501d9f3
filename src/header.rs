//! The message's header block, kept as raw bytes per field so nothing is re-encoded.
//!
//! Parsing follows `Mail::Header->extract` as qpsmtpd uses it (reference §4): a field is
//! `Name:` where the name has no spaces, colons or control characters; lines starting
//! with a blank continue the previous field; an mbox `From ` line becomes `Mail-From:`.
//! One deliberate fix (quirk 6): qpsmtpd silently dropped a line that is not a field;
//! here such a line ends the header block and starts the body, so no text is lost.

use std::borrow::Cow;
use std::io::{self, Write};

/// One header field: its name and the raw bytes after the colon (leading blank and folded
/// continuation lines included, without the final newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name as written.
    pub name: String,
    /// The value bytes after the colon.
    pub raw: Vec<u8>,
}

impl Field {
    /// The value as text (lossy for non-UTF-8 bytes), leading blanks removed, folding kept.
    pub fn value(&self) -> Cow<'_, str> {
        match String::from_utf8_lossy(&self.raw) {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim_start_matches([' ', '\t'])),
            Cow::Owned(s) => Cow::Owned(s.trim_start_matches([' ', '\t']).to_string()),
        }
    }
}

/// The header block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    fields: Vec<Field>,
}

/// Where parsing a header block stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderEnd {
    /// The block is complete so far; feed more lines.
    More,
    /// A line that is not a field: the body starts with it.
    NotAField,
}

impl Header {
    /// An empty header.
    pub fn new() -> Header {
        Header::default()
    }

    /// Adds one LF-terminated line of the header block. Returns `NotAField` for a line
    /// that cannot belong to the header (the caller moves it to the body).
    pub fn push_line(&mut self, line: &[u8]) -> HeaderEnd {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return match self.fields.last_mut() {
                Some(last) => {
                    last.raw.push(b'\n');
                    last.raw.extend_from_slice(line);
                    HeaderEnd::More
                }
                None => HeaderEnd::NotAField,
            };
        }
        if let Some(rest) = line.strip_prefix(b"From ") {
            self.fields.push(Field {
                name: "Mail-From".to_string(),
                raw: [b" ", rest].concat(),
            });
            return HeaderEnd::More;
        }
        match field_name_len(line) {
            Some(n) => {
                self.fields.push(Field {
                    name: String::from_utf8_lossy(&line[..n]).into_owned(),
                    raw: line[n + 1..].to_vec(),
                });
                HeaderEnd::More
            }
            None => HeaderEnd::NotAField,
        }
    }

    /// All fields in order.
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Are there no fields?
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The first value of a field (names compare case-insensitively).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(Field::value)
    }

    /// Every value of a field.
    pub fn get_all(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(Field::value)
            .collect()
    }

    /// How many fields have this name.
    pub fn count(&self, name: &str) -> usize {
        self.fields
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Adds a field at the top (`index = Some(0)`), at a position, or at the end (`None`).
    /// Lines after the first in `value` are folded with a leading space if they lack one.
    pub fn add(&mut self, name: &str, value: &str, index: Option<usize>) {
        let mut raw = Vec::with_capacity(value.len() + 1);
        for (i, line) in value.split('\n').enumerate() {
            let line = line.trim_end_matches('\r');
            if i > 0 {
                raw.push(b'\n');
                if !line.starts_with([' ', '\t']) {
                    raw.push(b' ');
                }
            } else {
                raw.push(b' ');
            }
            raw.extend_from_slice(line.as_bytes());
        }
        let field = Field {
            name: name.to_string(),
            raw,
        };
        match index {
            Some(i) => self.fields.insert(i.min(self.fields.len()), field),
            None => self.fields.push(field),
        }
    }

    /// Removes every field with this name; returns how many were removed.
    pub fn delete(&mut self, name: &str) -> usize {
        let before = self.fields.len();
        self.fields.retain(|f| !f.name.eq_ignore_ascii_case(name));
        before - self.fields.len()
    }

    /// Replaces all fields of this name by one with the new value, where the first was
    /// (or at the end if there was none).
    pub fn replace(&mut self, name: &str, value: &str) {
        let pos = self.fields.iter().position(|f| f.name.eq_ignore_ascii_case(name));
        self.delete(name);
        self.add(name, value, pos);
    }

    /// Takes out the fields for which `pick` is true, keeping the order of the rest.
    pub fn take(&mut self, mut pick: impl FnMut(&Field) -> bool) -> Vec<Field> {
        let (taken, kept) = std::mem::take(&mut self.fields)
            .into_iter()
            .partition(|f| pick(f));
        self.fields = kept;
        taken
    }

    /// Appends an already built field.
    pub fn push_field(&mut self, field: Field) {
        self.fields.push(field);
    }

    /// Writes the block, LF line ends, no blank line after it.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        for f in &self.fields {
            out.write_all(f.name.as_bytes())?;
            out.write_all(b":")?;
            out.write_all(&f.raw)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The block as bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Writing to a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }
}

/// The length of `Name` in `Name:...` (`[^\x00-\x1f\x7f-\xff :]+:`).
fn field_name_len(line: &[u8]) -> Option<usize> {
    let n = line
        .iter()
        .position(|&b| b <= 0x20 || b >= 0x7f || b == b':')
        .unwrap_or(line.len());
    (n > 0 && line.get(n) == Some(&b':')).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str]) -> (Header, Option<usize>) {
        let mut h = Header::new();
        for (i, l) in lines.iter().enumerate() {
            if h.push_line(format!("{l}\n").as_bytes()) == HeaderEnd::NotAField {
                return (h, Some(i));
            }
        }
        (h, None)
    }

    #[test]
    fn fields_and_continuations() {
        let (h, end) = parse(&["From: me", "Subject: hi", "  continued", "X-Empty:"]);
        assert_eq!(end, None);
        assert_eq!(h.len(), 3);
        assert_eq!(h.get("subject").unwrap(), "hi\n  continued");
        assert_eq!(h.to_bytes(), b"From: me\nSubject: hi\n  continued\nX-Empty:\n");
    }

    #[test]
    fn non_field_line_ends_the_header() {
        let (h, end) = parse(&["From: me", "bad header line", "Subject: x"]);
        assert_eq!((h.len(), end), (1, Some(1)));
        let (_, end) = parse(&["Name : spaced"]);
        assert_eq!(end, Some(0));
        let (_, end) = parse(&[" leading continuation"]);
        assert_eq!(end, Some(0));
    }

    #[test]
    fn mbox_from_line_is_coerced() {
        let (h, _) = parse(&["From someone@example Sat Jan 1 00:00:00 2000"]);
        assert_eq!(h.fields()[0].name, "Mail-From");
    }

    #[test]
    fn add_replace_delete() {
        let mut h = Header::new();
        h.push_line(b"Subject: a\n");
        h.add("Received", "from x\n by y", Some(0));
        h.add("X-Last", "z", None);
        assert_eq!(h.to_bytes(), b"Received: from x\n by y\nSubject: a\nX-Last: z\n");
        h.replace("subject", "b");
        assert_eq!(h.get("Subject").unwrap(), "b");
        assert_eq!(h.fields()[1].name, "subject");
        assert_eq!(h.delete("x-last"), 1);
        assert_eq!(h.count("received"), 1);
    }

    #[test]
    fn raw_bytes_survive() {
        let mut h = Header::new();
        h.push_line(b"Subject: \xe9t\xe9\n");
        assert_eq!(h.to_bytes(), b"Subject: \xe9t\xe9\n");
    }
}
