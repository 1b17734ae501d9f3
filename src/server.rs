//! The driver: moves bytes between the client and the session.
//!
//! Replies are collected and written only when the next read would wait for the client
//! (nothing complete is buffered), as qmail-smtpd flushes before each blocking read. So
//! the replies to a pipelined group of commands leave in one write (RFC 2920 §3.1), and
//! a client that does not pipeline gets each reply at once.

use crate::io::{Line, LineReader, ReadError, Transport};
use crate::session::{Session, Want};

/// Longest command line accepted (RFC 5321 asks for 512; AUTH lines may be far longer,
/// RFC 4954 §4 suggests 12288).
pub const MAX_COMMAND_LINE: usize = 16 * 1024;

/// How the driver shows the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Show each client line as `C: ...` and each reply line as `S: ...` (debug sessions).
    pub transcript: bool,
}

/// Runs one whole session: greeting, commands, data, until the session closes.
pub fn serve(session: &mut Session, transport: &mut dyn Transport, view: View) {
    let mut reader = LineReader::new();
    let mut out = Vec::with_capacity(4096);
    let prefix: &[u8] = if view.transcript { b"S: " } else { b"" };
    session.start();
    loop {
        session.drain_output(&mut out, prefix);
        let closing = session.wants() == Want::Closed;
        if !out.is_empty() && (closing || !reader.has_line()) {
            let sent = transport.write_all(&out, session.write_timeout());
            out.clear();
            if sent.is_err() {
                session.output_failed();
                session.drain_output(&mut out, prefix);
                out.clear();
                break;
            }
        }
        match session.wants() {
            Want::Closed => break,
            Want::Command => {
                let timeout = session.read_timeout();
                match reader.read_line(transport, MAX_COMMAND_LINE, timeout) {
                    Ok(Line::Text(line)) => {
                        if view.transcript {
                            echo(&mut out, line);
                        }
                        session.command_line(line);
                    }
                    Ok(Line::TooLong) => session.line_too_long(),
                    Err(e) => input_failed(session, e),
                }
            }
            Want::Data => {
                let timeout = session.read_timeout();
                match reader.read_data(transport, timeout) {
                    Ok((piece, read_ahead)) => {
                        if view.transcript {
                            echo(&mut out, piece.strip_suffix(b"\n").unwrap_or(piece));
                        }
                        session.set_read_ahead(read_ahead);
                        session.data_segment(piece);
                    }
                    Err(e) => input_failed(session, e),
                }
            }
        }
    }
    session.finish();
}

fn input_failed(session: &mut Session, e: ReadError) {
    match e {
        ReadError::Timeout => session.input_timed_out(),
        ReadError::Terminated => session.shutting_down(),
        ReadError::Eof | ReadError::Io(_) => session.input_ended(),
    }
}

fn echo(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(b"C: ");
    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    out.extend_from_slice(b"\n");
}
