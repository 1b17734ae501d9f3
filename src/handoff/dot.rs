//! The message in SMTP DATA form (RFC 5321 §4.5.2): a line starting with `.` gets a second
//! dot, lines end in CRLF (or LF for Exim's batched SMTP), and the terminating `.` line
//! follows. The stored message has LF line ends (qpsmtpd's spool format).

use std::io::{self, Write};

/// A writer that dot-stuffs and converts LF line ends as bytes pass through.
pub struct DotStuffer<W: Write> {
    inner: W,
    crlf: bool,
    line_start: bool,
    buf: Vec<u8>,
}

impl<W: Write> DotStuffer<W> {
    /// Wraps `inner`; `crlf` makes every LF a CRLF.
    pub fn new(inner: W, crlf: bool) -> DotStuffer<W> {
        DotStuffer {
            inner,
            crlf,
            line_start: true,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Ends the last line if needed, writes the `.` line and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.line_start {
            self.push_newline();
        }
        self.buf
            .extend_from_slice(if self.crlf { b".\r\n" } else { b".\n" });
        self.inner.write_all(&self.buf)?;
        self.inner.flush()?;
        Ok(self.inner)
    }

    fn push_newline(&mut self) {
        if self.crlf {
            self.buf.push(b'\r');
        }
        self.buf.push(b'\n');
        self.line_start = true;
    }
}

impl<W: Write> Write for DotStuffer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        for &b in data {
            if self.line_start && b == b'.' {
                self.buf.push(b'.');
            }
            if b == b'\n' {
                self.push_newline();
            } else {
                self.buf.push(b);
                self.line_start = false;
            }
        }
        if self.buf.len() >= 8 * 1024 {
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuff(input: &[u8], crlf: bool) -> Vec<u8> {
        let mut d = DotStuffer::new(Vec::new(), crlf);
        // In pieces, so line starts that fall on a boundary are exercised.
        for piece in input.chunks(3) {
            d.write_all(piece).unwrap();
        }
        d.finish().unwrap()
    }

    #[test]
    fn dots_are_doubled_and_lines_end_in_crlf() {
        assert_eq!(
            stuff(b"Subject: x\n\n.hidden\n..two\nend", true),
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n"
        );
        assert_eq!(stuff(b"a\n.\n", false), b"a\n..\n.\n");
        assert_eq!(stuff(b"", true), b".\r\n");
    }
}
