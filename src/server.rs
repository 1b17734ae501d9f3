//! The driver: moves bytes between the client and the session.
//!
//! Each read or event becomes one [`Input`] for [`Session::step`], which says what to
//! read next ([`Want`]). Replies are collected and written only when the next read would
//! wait for the client (nothing complete is buffered), as qmail-smtpd flushes before each
//! blocking read. So the replies to a pipelined group of commands leave in one write
//! (RFC 2920 §3.1), and a client that does not pipeline gets each reply at once.

use std::time::{Duration, Instant};

use crate::connection::TlsInfo;
use crate::io::{Line, LineReader, ReadError, Transport};
use crate::session::{Input, Opening, Session, TlsStart, Want};
use crate::tls::stream::TlsStream;
use crate::tls::ucspi::{FdTransport, UcspiFds};
use crate::tls::{Established, TlsError};

/// Longest command line accepted (RFC 5321 asks for 512; AUTH lines may be far longer,
/// RFC 4954 §4 suggests 12288).
pub const MAX_COMMAND_LINE: usize = 16 * 1024;

/// How the driver shows the conversation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct View {
    /// Show each client line as `C: ...` and each reply line as `S: ...` (debug sessions).
    pub transcript: bool,
}

/// How TLS may start besides STARTTLS with the `tls` plugin's certificate.
#[derive(Debug, Default)]
pub struct TlsOptions {
    /// `--implicit-tls`: TLS before the greeting (port 465 without the port number to tell).
    pub implicit: bool,
    /// A UCSPI-TLS super-server does TLS for us (`SSLCTLFD`, `SSLREADFD`, `SSLWRITEFD`).
    pub ucspi: Option<UcspiFds>,
    /// TLS was already done before we started (`sslserver` without `-n`).
    pub already: Option<TlsInfo>,
}

/// Runs one whole session: greeting, commands, data, until the session closes.
pub fn serve(session: &mut Session, transport: &mut dyn Transport, view: View) {
    serve_tls(session, transport, view, TlsOptions::default());
}

/// [`serve`], with the ways TLS can start.
pub fn serve_tls(session: &mut Session, transport: &mut dyn Transport, view: View, mut opts: TlsOptions) {
    let mut io = Io {
        reader: LineReader::new(),
        out: Vec::with_capacity(4096),
        view,
    };
    let opening = Opening {
        implicit_tls: opts.implicit,
        ucspi_tls: opts.ucspi.is_some(),
        tls_done: opts.already.take(),
    };
    let want = session.step(Input::Connected(opening));
    if let Want::StartTls { how, timeout } = converse(session, transport, &mut io, want) {
        // CVE-2011-0411: what the client pipelined after STARTTLS came in clear text.
        let discarded = io.reader.discard();
        match handshake(how, opts.ucspi.take(), transport, timeout) {
            Ok((mut secure, tls)) => {
                let want = session.step(Input::TlsStarted { tls, discarded });
                // No second STARTTLS: the session offers it only in clear text.
                converse(session, &mut secure, &mut io, want);
                secure.close(CLOSE_TIMEOUT);
            }
            Err(why) => {
                session.step(Input::TlsFailed { why: &why, discarded });
            }
        }
    }
    session.step(Input::Finished);
    transport.hang_up();
}

/// How long close_notify may take at the end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the driver keeps across a switch to TLS.
struct Io {
    reader: LineReader,
    out: Vec<u8>,
    view: View,
}

impl Io {
    /// Writes the rendered replies now; `false` if the client is gone.
    fn flush(&mut self, session: &mut Session, transport: &mut dyn Transport) -> bool {
        if self.out.is_empty() {
            return true;
        }
        let sent = transport.write_all(&self.out, session.settings().data_timeout);
        self.out.clear();
        if sent.is_err() {
            session.step(Input::WriteFailed);
            session.output(&mut self.out, prefix(self.view));
            self.out.clear();
            return false;
        }
        true
    }
}

/// Reply lines are shown as `S: ...` in a transcript view.
fn prefix(view: View) -> &'static [u8] {
    if view.transcript { b"S: " } else { b"" }
}

/// Reads and answers until the session closes or wants TLS; returns that last want.
fn converse(session: &mut Session, transport: &mut dyn Transport, io: &mut Io, mut want: Want) -> Want {
    loop {
        session.output(&mut io.out, prefix(io.view));
        let ending = matches!(want, Want::Closed | Want::StartTls { .. });
        // Replies go out when the session ends or switches to TLS, or when no whole line
        // is waiting (the end of a pipelined group); until then they are held.
        if (ending || (!io.out.is_empty() && !io.reader.has_line())) && !io.flush(session, transport) {
            return Want::Closed;
        }
        want = match want {
            Want::Closed | Want::StartTls { .. } => return want,
            Want::Command { timeout } | Want::AuthResponse { timeout } => {
                read_line(session, transport, io, timeout)
            }
            Want::Data { timeout, deadline } => read_data(session, transport, io, timeout, deadline),
            Want::Quiet { timeout } => wait_quiet(session, transport, io, timeout),
            Want::Liveness => session.step(Input::Alive(transport.client_alive())),
        };
    }
}

/// Reads a command line (or an AUTH answer) and hands it over.
fn read_line(session: &mut Session, transport: &mut dyn Transport, io: &mut Io, timeout: Duration) -> Want {
    match io.reader.read_line(transport, MAX_COMMAND_LINE, timeout) {
        Ok(Line::Text(line)) => {
            if io.view.transcript {
                echo(&mut io.out, line);
            }
            session.step(Input::Line(line))
        }
        Ok(Line::TooLong) => session.step(Input::LineTooLong),
        Err(e) => session.step(failed(e)),
    }
}

/// Reads a piece of message data and hands it over.
fn read_data(
    session: &mut Session,
    transport: &mut dyn Transport,
    io: &mut Io,
    timeout: Duration,
    deadline: Option<Instant>,
) -> Want {
    match io.reader.read_data(transport, timeout, deadline) {
        Ok((piece, read_ahead)) => {
            if io.view.transcript {
                echo(&mut io.out, piece.strip_suffix(b"\n").unwrap_or(piece));
            }
            session.step(Input::Data { piece, read_ahead })
        }
        Err(e) => session.step(failed(e)),
    }
}

/// Waits for the client to speak first (it should not: the server has not answered
/// yet); what it sends stays in the reader for the commands after.
fn wait_quiet(session: &mut Session, transport: &mut dyn Transport, io: &mut Io, timeout: Duration) -> Want {
    if io.reader.buffered() > 0 {
        return session.step(Input::Talked(true));
    }
    match transport.readable(timeout) {
        Ok(talked) => session.step(Input::Talked(talked)),
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => session.step(Input::Terminated),
        Err(_) => session.step(Input::Ended),
    }
}

/// A read that produced nothing, as input.
fn failed(e: ReadError) -> Input<'static> {
    match e {
        ReadError::Timeout => Input::TimedOut,
        ReadError::Terminated => Input::Terminated,
        ReadError::Eof | ReadError::Io(_) => Input::Ended,
    }
}

/// The connection after the handshake.
enum Secure<'a> {
    Rustls(Box<TlsStream<'a>>),
    Ucspi(FdTransport),
}

/// Does the handshake the session asked for, within `timeout`.
fn handshake<'a>(
    how: TlsStart,
    ucspi: Option<UcspiFds>,
    transport: &'a mut dyn Transport,
    timeout: Duration,
) -> Result<(Secure<'a>, Established), TlsError> {
    match (how, ucspi) {
        (TlsStart::Rustls(config), _) => {
            let (stream, established) = crate::tls::stream::handshake(transport, config, timeout)?;
            Ok((Secure::Rustls(Box::new(stream)), established))
        }
        (TlsStart::Ucspi, Some(fds)) => {
            let (fds, established) = fds.start(timeout)?;
            Ok((Secure::Ucspi(fds), established))
        }
        (TlsStart::Ucspi, None) => Err(TlsError::Ucspi("no descriptors".to_string())),
    }
}

impl Secure<'_> {
    fn close(&mut self, timeout: Duration) {
        if let Secure::Rustls(stream) = self {
            stream.close(timeout);
        }
    }
}

impl Transport for Secure<'_> {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> std::io::Result<usize> {
        match self {
            Secure::Rustls(s) => s.read(buf, timeout),
            Secure::Ucspi(s) => s.read(buf, timeout),
        }
    }

    fn write_all(&mut self, buf: &[u8], timeout: Duration) -> std::io::Result<()> {
        match self {
            Secure::Rustls(s) => s.write_all(buf, timeout),
            Secure::Ucspi(s) => s.write_all(buf, timeout),
        }
    }

    fn client_alive(&mut self) -> bool {
        match self {
            Secure::Rustls(s) => s.client_alive(),
            Secure::Ucspi(s) => s.client_alive(),
        }
    }

    // The wait runs after the handshake (also with TLS first): a client that speaks
    // before the greeting or the 354 that follows is early there too.
    fn readable(&mut self, timeout: Duration) -> std::io::Result<bool> {
        match self {
            Secure::Rustls(s) => s.readable(timeout),
            Secure::Ucspi(s) => s.readable(timeout),
        }
    }
}

fn echo(out: &mut Vec<u8>, line: &[u8]) {
    out.extend_from_slice(b"C: ");
    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
    out.extend_from_slice(b"\n");
}
