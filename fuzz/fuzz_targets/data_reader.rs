//! The DATA reader (dot-unstuffing, CRLF rules, NUL, size and header limits): any bytes
//! after `354`, cut into pieces the way the driver cuts them, must end the message exactly
//! where a plain line-by-line reading of RFC 5321 §4.5.2 says, or be refused for a bare
//! CR/LF there; and what it stores must be that reading's text, whatever the cuts.
//!
//! Input: a byte of flags (strict CRLF, how long a piece may be), two bytes of size
//! limit, one of header limit, then the message data. The same data is read twice: cut
//! at every LF and every `cut` bytes of a longer line (as the driver does at 64 KiB),
//! and through the real line reader with the bytes arriving in fuzz-chosen chunks.

#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::io::{LineReader, Scripted};
use qpsmtpd_rs::session::data_fuzzing::{End, Received, read};

/// What a line-by-line reading of the data says.
struct Model {
    end: End,
    /// CRLF made LF, dots unstuffed, up to the terminator.
    text: Vec<u8>,
    nul: bool,
}

fn model(data: &[u8], strict: bool) -> Model {
    let mut text = Vec::new();
    let mut nul = false;
    for line in data.split_inclusive(|b| *b == b'\n') {
        let Some(content) = line.strip_suffix(b"\n") else {
            // An unfinished line: a CR inside it (not at its end, where an LF may
            // follow) is already a bare CR.
            let inner = &line[..line.len() - 1];
            let end = if strict && inner.contains(&b'\r') {
                End::BareNewline
            } else {
                End::Open
            };
            return Model { end, text, nul };
        };
        if line == b".\r\n" || (!strict && line == b".\n") {
            return Model {
                end: End::Complete,
                text,
                nul,
            };
        }
        let crlf = content.strip_suffix(b"\r");
        if strict && (crlf.is_none() || crlf.is_some_and(|c| c.contains(&b'\r'))) {
            return Model {
                end: End::BareNewline,
                text,
                nul,
            };
        }
        let content = crlf.unwrap_or(content);
        nul |= content.contains(&0);
        text.extend_from_slice(content.strip_prefix(b".").unwrap_or(content));
        text.push(b'\n');
    }
    Model {
        end: End::Open,
        text,
        nul,
    }
}

/// Pieces as the driver makes them: each line whole, a longer one in `cut`-byte parts.
fn pieces(data: &[u8], cut: usize) -> Vec<&[u8]> {
    data.split_inclusive(|b| *b == b'\n')
        .flat_map(|line| line.chunks(cut))
        .collect()
}

/// Pieces through the real reader, the input arriving in chunks of the given sizes.
fn through_reader(data: &[u8], sizes: &[u8]) -> Vec<Vec<u8>> {
    let mut chunks = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = usize::from(sizes.get(i % sizes.len().max(1)).copied().unwrap_or(0)).max(1);
        let (a, b) = rest.split_at(n.min(rest.len()));
        chunks.push(a.to_vec());
        rest = b;
        i += 1;
    }
    let mut transport = Scripted::new(chunks);
    let mut reader = LineReader::new();
    let mut out = Vec::new();
    while let Ok((piece, _)) = reader.read_data(&mut transport, Duration::from_secs(1), None) {
        assert!(!piece.is_empty());
        out.push(piece.to_vec());
    }
    // A piece without its LF is a full buffer, or the last one.
    for piece in out.iter().rev().skip(1) {
        assert!(piece.ends_with(b"\n") || piece.len() == qpsmtpd_rs::io::BUFFER);
    }
    assert_eq!(out.concat(), data, "the reader lost or added bytes");
    out
}

fn check(m: &Model, r: &Received, max_size: u64, what: &str) {
    assert_eq!(r.end, m.end, "{what}: where the message ended");
    assert!(r.header_ends <= 1, "{what}: the header ended twice");
    if r.end != End::Complete {
        return;
    }
    assert_eq!(r.nul, m.nul, "{what}: NUL");
    if r.nul {
        return;
    }
    let size = m.text.len() as u64;
    assert_eq!(
        r.too_big,
        max_size > 0 && size > max_size,
        "{what}: size {size} limit {max_size}"
    );
    if r.too_big || r.header_too_big {
        return;
    }
    assert_eq!(r.size, size, "{what}: counted size");
    // An mbox "From " line is stored as "Mail-From:"; the rest is the text as read.
    if m.text.starts_with(b"From ") || m.text.windows(6).any(|w| w == b"\nFrom ") {
        return;
    }
    let h = r.header.len();
    assert!(
        m.text.starts_with(&r.header),
        "{what}: header is not the start of the message"
    );
    let rest = &m.text[h..];
    let body_ok = r.body == rest || (r.body.first() == Some(&b'\n') && &r.body[1..] == rest);
    assert!(
        body_ok,
        "{what}: body {:?} for {:?}",
        String::from_utf8_lossy(&r.body),
        String::from_utf8_lossy(rest)
    );
}

fuzz_target!(|input: &[u8]| {
    let [flags, s1, s2, h, data @ ..] = input else {
        return;
    };
    let strict = flags & 1 == 1;
    let cut = 4 + usize::from(flags >> 1) % 61;
    let max_size = u64::from(u16::from_le_bytes([*s1, *s2]) % 4096);
    let max_header = 1 + usize::from(*h) * 16;
    let m = model(data, strict);
    let cut_pieces = pieces(data, cut);
    let r = read(strict, max_size, max_header, cut_pieces.iter().copied());
    check(&m, &r, max_size, "cut pieces");
    let read_pieces = through_reader(data, &input[..4]);
    let r = read(
        strict,
        max_size,
        max_header,
        read_pieces.iter().map(Vec::as_slice),
    );
    check(&m, &r, max_size, "line reader");
});
