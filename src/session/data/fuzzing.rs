//! The message reader on its own, for the fuzz target (fuzz/fuzz_targets/data_reader.rs):
//! pieces in, what it stored and how it ended out. Hidden from the documentation; the
//! session drives [`DataReceiver`] itself.

use std::io::Read;
use std::path::Path;

use super::receiver::{DataReceiver, Event};
use crate::transaction::Spool;

/// How the pieces ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The terminating `.` line arrived.
    Complete,
    /// A bare LF or CR (network connection): the session answers `421` and closes.
    BareNewline,
    /// The pieces ran out first.
    Open,
}

/// What the reader did with the pieces.
#[derive(Debug)]
pub struct Received {
    /// How it ended.
    pub end: End,
    /// How many times the header block ended (at most once).
    pub header_ends: usize,
    /// The stored header block.
    pub header: Vec<u8>,
    /// The stored body.
    pub body: Vec<u8>,
    /// The counted size.
    pub size: u64,
    /// A NUL arrived.
    pub nul: bool,
    /// Over the size limit.
    pub too_big: bool,
    /// Over the header size limit.
    pub header_too_big: bool,
}

/// Feeds `pieces` (each a line with its LF, or part of a longer line) to a reader until
/// it sees the end of the message or a bare line end.
pub fn read<'a>(
    strict_crlf: bool,
    max_size: u64,
    max_header: usize,
    pieces: impl IntoIterator<Item = &'a [u8]>,
) -> Received {
    let mut r = DataReceiver::new(
        strict_crlf,
        max_size,
        max_header,
        Spool::new(Path::new("/nonexistent"), usize::MAX),
    );
    let mut end = End::Open;
    let mut header_ends = 0;
    for piece in pieces {
        match r.segment(piece) {
            Event::More => {}
            Event::HeaderEnded => header_ends += 1,
            Event::Complete => {
                end = End::Complete;
                break;
            }
            Event::BareNewline => {
                end = End::BareNewline;
                break;
            }
        }
    }
    let mut body = Vec::new();
    if let Ok(mut reader) = r.body.reader() {
        let _ = reader.read_to_end(&mut body);
    }
    Received {
        end,
        header_ends,
        header: r.header.to_bytes(),
        body,
        size: r.size,
        nul: r.nul,
        too_big: r.too_big(),
        header_too_big: r.header_too_big,
    }
}
