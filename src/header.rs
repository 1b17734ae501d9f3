//! The message's header block, kept as the raw bytes it will be stored as, so nothing is
//! re-encoded and its memory is the block's own size (no per-field allocations: a block of
//! a few hundred thousand tiny fields costs about as much as one long field).
//!
//! Parsing follows `Mail::Header->extract` as qpsmtpd's `data_respond` uses it: a field is
//! `Name:` where the name has no spaces, colons or control characters; lines starting
//! with a blank continue the previous field; an mbox `From ` line becomes `Mail-From:`.
//! One deliberate fix (README Differences 17): qpsmtpd silently dropped a line that is not a field;
//! here such a line ends the header block and starts the body, so no text is lost.
//!
//! Fields added by the core and by plugins ([`Header::add`]) are cleaned as they are
//! added (RFC 5322 §2.2, §2.1.1): control characters become blanks, a line break folds the
//! field, no line grows past 998 characters. What a later plugin reads is what is stored.

use std::borrow::Cow;
use std::io::{self, Write};

/// The longest line RFC 5322 §2.1.1 allows, without its line end.
pub const MAX_LINE: usize = 998;

/// One header field, borrowed from the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name as written.
    pub name: &'a str,
    /// The value bytes after the colon (leading blank and folded continuation lines
    /// included, without the final newline).
    pub raw: &'a [u8],
}

impl<'a> Field<'a> {
    /// The value as text (lossy for non-UTF-8 bytes), leading blanks removed, folding kept.
    pub fn value(&self) -> Cow<'a, str> {
        match String::from_utf8_lossy(self.raw) {
            Cow::Borrowed(s) => Cow::Borrowed(s.trim_start_matches([' ', '\t'])),
            Cow::Owned(s) => Cow::Owned(s.trim_start_matches([' ', '\t']).to_string()),
        }
    }
}

/// The header block: fields in order, each `Name:value` and a newline (LF).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    block: Vec<u8>,
    count: usize,
}

/// Where parsing a header block stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderEnd {
    /// The block is complete so far; feed more lines.
    More,
    /// A line that is not a field: the body starts with it.
    NotAField,
}

/// The fields of a block, in order.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    fn next(&mut self) -> Option<Field<'a>> {
        if self.rest.is_empty() {
            return None;
        }
        let len = field_len(self.rest);
        let (field, rest) = self.rest.split_at(len);
        self.rest = rest;
        let line = field.strip_suffix(b"\n").unwrap_or(field);
        let colon = crate::bytes::find_byte(b':', line).unwrap_or(line.len());
        Some(Field {
            // Names are checked or cleaned to printable ASCII before they are stored.
            name: std::str::from_utf8(&line[..colon]).unwrap_or(""),
            raw: line.get(colon + 1..).unwrap_or(b""),
        })
    }
}

/// The length of the field at the start of `block`, its final newline included: up to the
/// first newline that no blank follows.
fn field_len(block: &[u8]) -> usize {
    let mut from = 0;
    while let Some(pos) = crate::bytes::find_byte(b'\n', &block[from..]) {
        let end = from + pos + 1;
        match block.get(end) {
            Some(b' ' | b'\t') => from = end,
            _ => return end,
        }
    }
    block.len()
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
            if self.count == 0 {
                return HeaderEnd::NotAField;
            }
            self.block.extend_from_slice(line);
        } else if let Some(rest) = line.strip_prefix(b"From ") {
            self.block.extend_from_slice(b"Mail-From: ");
            self.block.extend_from_slice(rest);
            self.count += 1;
        } else if field_name_len(line).is_some() {
            self.block.extend_from_slice(line);
            self.count += 1;
        } else {
            return HeaderEnd::NotAField;
        }
        self.block.push(b'\n');
        HeaderEnd::More
    }

    /// All fields in order.
    pub fn fields(&self) -> Fields<'_> {
        Fields { rest: &self.block }
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Are there no fields?
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The first value of a field (names compare case-insensitively).
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.fields()
            .find(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value())
    }

    /// Every value of a field.
    pub fn get_all(&self, name: &str) -> Vec<Cow<'_, str>> {
        self.fields()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .map(|f| f.value())
            .collect()
    }

    /// How many fields have this name.
    pub fn count(&self, name: &str) -> usize {
        self.fields()
            .filter(|f| f.name.eq_ignore_ascii_case(name))
            .count()
    }

    /// Adds a field at the top (`index = Some(0)`), at a position, or at the end (`None`).
    /// The field is cleaned first (RFC 5322 §2.2): a name character that is not printable
    /// ASCII or is a colon becomes `-`, and a name is cut to 996 characters; in the value,
    /// a newline (or CRLF) folds the field, a line after the first that lacks a leading
    /// blank gets one, a line that would be empty is dropped (it would end the header
    /// block), every other control character (a lone CR, NUL, ...; U+2028 and U+2029 too)
    /// becomes a blank, and a line longer than 998 characters is folded at its last blank
    /// that fits, or else cut.
    pub fn add(&mut self, name: &str, value: &str, index: Option<usize>) {
        let field = field_bytes(name, value);
        let at = match index {
            Some(i) => self.offset_of(i),
            None => self.block.len(),
        };
        // Appended, then turned into place: cheaper than splicing through an iterator.
        self.block.extend_from_slice(&field);
        self.block[at..].rotate_right(field.len());
        self.count += 1;
    }

    /// The byte offset where field `index` starts (the end for an index past the last).
    fn offset_of(&self, index: usize) -> usize {
        let mut at = 0;
        for _ in 0..index.min(self.count) {
            at += field_len(&self.block[at..]);
        }
        at
    }

    /// Removes every field with this name; returns how many were removed.
    pub fn delete(&mut self, name: &str) -> usize {
        self.rewrite(|f| f.name.eq_ignore_ascii_case(name), None)
    }

    /// Replaces all fields of this name by one with the new value, where the first was
    /// (or at the end if there was none).
    pub fn replace(&mut self, name: &str, value: &str) {
        let pos = self.fields().position(|f| f.name.eq_ignore_ascii_case(name));
        self.delete(name);
        self.add(name, value, pos);
    }

    /// Moves the fields for which `pick` is true to the end of the block under a new
    /// name, values unchanged; returns how many were moved.
    pub fn rename_to_end(&mut self, pick: impl FnMut(&Field<'_>) -> bool, new_name: &str) -> usize {
        self.rewrite(pick, Some(&clean_name(new_name)))
    }

    /// Keeps the fields `pick` says no to in place, in order; the picked ones are dropped
    /// or, with a new name, appended at the end.
    fn rewrite(&mut self, mut pick: impl FnMut(&Field<'_>) -> bool, rename: Option<&str>) -> usize {
        let mut moved = Vec::new();
        let mut picked = 0;
        let (mut read, mut write) = (0, 0);
        while read < self.block.len() {
            let len = field_len(&self.block[read..]);
            let field = match (Fields {
                rest: &self.block[read..read + len],
            })
            .next()
            {
                Some(f) if pick(&f) => Some(f.raw),
                _ => None,
            };
            match field {
                Some(raw) => {
                    picked += 1;
                    if let Some(name) = rename {
                        moved.extend_from_slice(name.as_bytes());
                        moved.push(b':');
                        moved.extend_from_slice(raw);
                        moved.push(b'\n');
                    }
                }
                None => {
                    self.block.copy_within(read..read + len, write);
                    write += len;
                }
            }
            read += len;
        }
        self.block.truncate(write);
        self.block.extend_from_slice(&moved);
        if rename.is_none() {
            self.count -= picked;
        }
        picked
    }

    /// Writes the block, LF line ends, no blank line after it.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        out.write_all(&self.block)
    }

    /// The block as stored.
    pub fn as_bytes(&self) -> &[u8] {
        &self.block
    }

    /// The block as bytes (a copy).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.block.clone()
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

/// The longest field name kept: the name, its colon and a blank fit on the first line.
const MAX_NAME: usize = MAX_LINE - 2;

/// A field name as RFC 5322 §3.6.8 allows it: printable ASCII except the colon, cut to
/// [`MAX_NAME`] (a longer one would be folded inside the name, and a reader would take
/// its first line, without a colon, for the end of the header).
fn clean_name(name: &str) -> String {
    let mut cleaned = String::with_capacity(name.len());
    push_clean_name(&mut cleaned, name);
    cleaned
}

/// Appends [`clean_name`]'s result to `out`.
fn push_clean_name(out: &mut String, name: &str) {
    let start = out.len();
    out.extend(
        name.chars()
            .take(MAX_NAME)
            .map(|c| if c.is_ascii_graphic() && c != ':' { c } else { '-' }),
    );
    if out.len() == start {
        out.push_str("X-Unnamed");
    }
}

/// A character that must not reach a stored header: any control character but the tab,
/// and the Unicode line and paragraph separators some readers break lines at.
fn unsafe_in_header(c: char) -> bool {
    (c.is_control() && c != '\t') || c == '\u{2028}' || c == '\u{2029}'
}

/// Has `line` no byte that can begin an unsafe character: C0 controls but tab, DEL, C1
/// controls (UTF-8 lead byte 0xC2) and U+2028/U+2029 (lead byte 0xE2)? The usual value
/// then needs no rebuilding a character at a time.
fn needs_no_cleaning(line: &str) -> bool {
    line.bytes()
        .all(|b| (b >= 0x20 && b != 0x7f && b != 0xc2 && b != 0xe2) || b == b'\t')
}

/// `Name: value` as stored (see [`Header::add`]), with its final newline.
fn field_bytes(name: &str, value: &str) -> Vec<u8> {
    // One buffer for the field and one reused for each of its lines before folding,
    // instead of a string per line.
    let mut out = Vec::with_capacity(name.len() + value.len() + 4);
    let mut line = String::with_capacity(name.len() + value.len() + 3);
    for (i, raw) in value.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        line.clear();
        if i == 0 {
            push_clean_name(&mut line, name);
            line.push_str(": ");
        } else {
            // Every character of a line that is blank once cleaned is white space or
            // becomes a blank.
            if raw.chars().all(|c| c.is_whitespace() || unsafe_in_header(c)) {
                continue;
            }
            if !raw.starts_with([' ', '\t']) && !raw.chars().next().is_some_and(unsafe_in_header) {
                line.push(' ');
            }
        }
        push_cleaned(&mut line, raw);
        push_folded(&mut out, line.as_bytes());
    }
    out
}

/// Appends `line` with every unsafe character turned into a blank.
fn push_cleaned(out: &mut String, line: &str) {
    if needs_no_cleaning(line) {
        out.push_str(line);
    } else {
        out.extend(line.chars().map(|c| if unsafe_in_header(c) { ' ' } else { c }));
    }
}

fn is_blank(b: &u8) -> bool {
    *b == b' ' || *b == b'\t'
}

/// Appends `line` and a newline, folded so that no line is longer than [`MAX_LINE`]:
/// before the last blank that fits and leaves text on the line (RFC 5322 §2.2.3), or, in a
/// run without blanks, cut at a character boundary with a blank starting the next line.
fn push_folded(out: &mut Vec<u8>, line: &[u8]) {
    let mut rest = line;
    let mut lead = false;
    loop {
        let room = MAX_LINE - usize::from(lead);
        if lead {
            out.push(b' ');
        }
        if rest.len() <= room {
            out.extend_from_slice(rest);
            out.push(b'\n');
            return;
        }
        let text_from = rest.iter().position(|b| !is_blank(b)).unwrap_or(rest.len());
        let fold = rest[..=room]
            .iter()
            .rposition(is_blank)
            .filter(|&p| p > text_from);
        let cut = match fold {
            Some(p) => p,
            // A UTF-8 continuation byte (10xxxxxx) is never cut from its character.
            None => (1..=room).rev().find(|&p| rest[p] & 0xc0 != 0x80).unwrap_or(room),
        };
        out.extend_from_slice(&rest[..cut]);
        out.push(b'\n');
        lead = fold.is_none();
        rest = &rest[cut..];
    }
}

#[cfg(test)]
mod tests;
