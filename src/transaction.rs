//! One mail transaction: envelope, notes, header and the spooled body (qpsmtpd's
//! `Qpsmtpd::Transaction`, lib/Qpsmtpd/Transaction.pm).
//!
//! The body is kept in memory up to `size_threshold` bytes and then moved to a temporary
//! file in `spool_dir`, so a 100 MB message costs a few kilobytes of memory. The file is
//! removed when the transaction is dropped, on every path (accepted, rejected, client gone).

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use tempfile::NamedTempFile;

use crate::address::Address;
use crate::connection::Notes;
use crate::header::Header;

/// ESMTP parameters of MAIL/RCPT (`KEY=VALUE`; keys lower-cased as qpsmtpd passes them).
pub type Params = Vec<(String, Option<String>)>;

/// Default in-memory part of a body before it goes to disk.
pub const DEFAULT_SIZE_THRESHOLD: usize = 64 * 1024;

/// What the in-memory part of a body reserves at its first line.
const FIRST_RESERVE: usize = 8 * 1024;

/// The message body store: memory first, then a temporary file.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    threshold: usize,
    memory: Vec<u8>,
    file: Option<SpoolFile>,
    len: u64,
}

#[derive(Debug)]
struct SpoolFile {
    temp: NamedTempFile,
    writer: BufWriter<File>,
}

impl Spool {
    /// An empty spool that moves to a file in `dir` past `threshold` bytes.
    pub fn new(dir: &Path, threshold: usize) -> Spool {
        Spool {
            dir: dir.to_path_buf(),
            threshold,
            memory: Vec::new(),
            file: None,
            len: 0,
        }
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.len += data.len() as u64;
        if self.file.is_none() && self.memory.len() + data.len() <= self.threshold {
            if self.memory.capacity() == 0 {
                // A body is many short lines: one allocation for a typical message
                // instead of a doubling copy every few lines.
                self.memory.reserve(self.threshold.min(FIRST_RESERVE));
            }
            self.memory.extend_from_slice(data);
            return Ok(());
        }
        let file = self.on_file()?;
        file.writer.write_all(data)
    }

    /// Total bytes written.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Nothing written?
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Flushes buffered writes to the file (if any).
    pub fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.writer.flush(),
            None => Ok(()),
        }
    }

    /// A reader over everything written so far, from the start.
    pub fn reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        self.flush()?;
        match &self.file {
            Some(f) => {
                let mut file = f.temp.reopen()?;
                file.seek(SeekFrom::Start(0))?;
                Ok(Box::new(io::BufReader::with_capacity(64 * 1024, file)))
            }
            None => Ok(Box::new(&self.memory[..])),
        }
    }

    /// Appends everything written so far to `out`. A body in a file is copied by the
    /// kernel (`copy_file_range`, or `sendfile`, where the file systems allow; std's
    /// `io::copy` between files chooses), not read into and written out of our memory:
    /// `out`'s buffer is written first, then the body goes from file to file.
    pub fn copy_to_file(&mut self, out: &mut BufWriter<File>) -> io::Result<u64> {
        self.flush()?;
        match &self.file {
            Some(f) => copy_spool_file(f, out),
            None => {
                out.write_all(&self.memory)?;
                Ok(self.memory.len() as u64)
            }
        }
    }

    /// The spool file's path, moving the body to disk first if it was in memory
    /// (qpsmtpd's `body_filename`, for scanners that want a file).
    pub fn path(&mut self) -> io::Result<&Path> {
        self.on_file()?;
        self.flush()?;
        match &self.file {
            Some(f) => Ok(f.temp.path()),
            None => Err(io::Error::other("spool file missing")),
        }
    }

    /// Is the body in a file (not in memory)?
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    fn on_file(&mut self) -> io::Result<&mut SpoolFile> {
        if self.file.is_none() {
            let temp = tempfile::Builder::new()
                .prefix("qpsmtpd-rs.")
                .tempfile_in(&self.dir)?;
            let mut writer = BufWriter::with_capacity(64 * 1024, temp.reopen()?);
            writer.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(SpoolFile { temp, writer });
        }
        match &mut self.file {
            Some(f) => Ok(f),
            None => Err(io::Error::other("spool file missing")),
        }
    }
}

/// One mail transaction.
#[derive(Debug)]
pub struct Transaction {
    /// Id for logs and Received (`<connection id>.<n>`).
    pub id: String,
    /// The sender, once MAIL was accepted.
    pub sender: Option<Address>,
    /// Accepted recipients, in order (duplicates allowed, as qpsmtpd).
    pub recipients: Vec<Address>,
    /// The MAIL parameters (keys lower-cased).
    pub mail_params: Params,
    /// Did MAIL carry SMTPUTF8?
    pub smtputf8: bool,
    /// Transaction notes (lost at reset).
    pub notes: Notes,
    /// EHLO keywords added by `ehlo` hooks (qpsmtpd's `capabilities` note).
    pub capabilities: Vec<String>,
    /// The header block, once DATA has read it.
    pub header: Header,
    /// The body (from the blank line after the header on), once DATA started.
    pub body: Option<Spool>,
    /// Bytes received after DATA (LF line ends, dots unstuffed, header included).
    pub data_size: u64,
    /// The values (bytes after the colon, as they arrived) of `Authentication-Results`
    /// fields that a DKIM signature covers which verified and whose signer the site
    /// trusts. A DKIM verifier plugin fills this by `data_post_headers`; one such field
    /// claiming our authserv-id may then stay, every other one is renamed (RFC 8601 §5).
    /// No built-in plugin verifies DKIM, so until one is configured this stays empty and
    /// no field claiming our authserv-id is ever kept.
    pub verified_auth_results: Vec<Vec<u8>>,
    /// When the transaction started.
    pub started: Instant,
}

impl Transaction {
    /// A fresh, empty transaction.
    pub fn new(id: String) -> Transaction {
        Transaction {
            id,
            sender: None,
            recipients: Vec::new(),
            mail_params: Vec::new(),
            smtputf8: false,
            notes: Notes::new(),
            capabilities: Vec::new(),
            header: Header::new(),
            body: None,
            data_size: 0,
            verified_auth_results: Vec::new(),
            started: Instant::now(),
        }
    }

    /// A MAIL parameter's value (`Some(None)` for a parameter without `=`).
    pub fn mail_param(&self, key: &str) -> Option<Option<&str>> {
        self.mail_params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_deref())
    }

    /// A reader over the body (the blank separator line first, then the body text).
    pub fn body_reader(&mut self) -> io::Result<Box<dyn Read + '_>> {
        match &mut self.body {
            Some(spool) => spool.reader(),
            None => Ok(Box::new(io::empty())),
        }
    }

    /// Writes the whole message as it will be queued: header block, then body.
    pub fn write_message(&mut self, out: &mut dyn Write) -> io::Result<u64> {
        self.header.write_to(out)?;
        let head = self.header.as_bytes().len() as u64;
        let body = io::copy(&mut self.body_reader()?, out)?;
        Ok(head + body)
    }

    /// [`Transaction::write_message`] into a file, with the body copied from the spool
    /// file by the kernel when it is in one (a large message is not copied through our
    /// memory once more).
    pub fn write_message_to_file(&mut self, out: &mut BufWriter<File>) -> io::Result<u64> {
        self.header.write_to(out)?;
        let head = self.header.as_bytes().len() as u64;
        let body = match &mut self.body {
            Some(spool) => spool.copy_to_file(out)?,
            None => 0,
        };
        Ok(head + body)
    }

    /// The size of the message as it will be queued.
    pub fn message_size(&self) -> u64 {
        self.header.as_bytes().len() as u64 + self.body.as_ref().map_or(0, Spool::len)
    }

    /// Runs `f` on the header block parsed by mail-parser (decoded addresses, dates,
    /// encoded words), for plugins that need more than raw fields.
    pub fn with_parsed_header<R>(&self, f: impl FnOnce(&mail_parser::Message<'_>) -> R) -> Option<R> {
        let mut bytes = self.header.to_bytes();
        bytes.push(b'\n');
        let parsed = mail_parser::MessageParser::default().parse_headers(&bytes[..])?;
        Some(f(&parsed))
    }
}

/// A spooled body into `out`, file to file ([`Spool::copy_to_file`]). Not inlined: std's
/// copy keeps an 8 KiB buffer on the stack for its fallback, and inlined into the queue
/// plugin its stack probe touched those two pages for every message, also for bodies held
/// in memory that never come here.
#[inline(never)]
fn copy_spool_file(f: &SpoolFile, out: &mut BufWriter<File>) -> io::Result<u64> {
    io::copy(&mut f.temp.reopen()?, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_moves_to_disk_past_threshold_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spool::new(dir.path(), 10);
        s.write(b"0123456789").unwrap();
        assert!(!s.on_disk());
        s.write(b"abc").unwrap();
        assert!(s.on_disk());
        let mut all = Vec::new();
        s.reader().unwrap().read_to_end(&mut all).unwrap();
        assert_eq!(all, b"0123456789abc");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(s);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_message_written_to_a_file_is_the_same_whether_spooled_in_memory_or_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        for threshold in [1 << 20, 10] {
            let mut t = Transaction::new("t1".into());
            t.header.push_line(b"Subject: hi\n");
            let mut body = Spool::new(dir.path(), threshold);
            body.write(b"\nfirst line of the body\n").unwrap();
            body.write(b"second\n").unwrap();
            t.body = Some(body);
            let path = dir.path().join(format!("out.{threshold}"));
            let mut out = BufWriter::new(File::create(&path).unwrap());
            out.write_all(b"Return-Path: <a@b>\n").unwrap();
            let n = t.write_message_to_file(&mut out).unwrap();
            out.flush().unwrap();
            let expected = b"Subject: hi\n\nfirst line of the body\nsecond\n";
            assert_eq!(n, expected.len() as u64);
            let mut all = b"Return-Path: <a@b>\n".to_vec();
            all.extend_from_slice(expected);
            assert_eq!(std::fs::read(&path).unwrap(), all, "threshold {threshold}");
        }
    }

    #[test]
    fn message_is_header_then_body() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = Transaction::new("t1".into());
        t.header.push_line(b"Subject: hi\n");
        let mut body = Spool::new(dir.path(), 1024);
        body.write(b"\nbody\n").unwrap();
        t.body = Some(body);
        let mut out = Vec::new();
        let n = t.write_message(&mut out).unwrap();
        assert_eq!(out, b"Subject: hi\n\nbody\n");
        assert_eq!(n, out.len() as u64);
        assert_eq!(t.message_size(), n);
        let subject = t
            .with_parsed_header(|m| m.subject().map(str::to_string))
            .flatten();
        assert_eq!(subject.as_deref(), Some("hi"));
    }
}
