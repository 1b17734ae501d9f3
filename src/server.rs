//! The driver: moves bytes between the client and the session.
//!
//! Replies are collected and written only when the next read would wait for the client
//! (nothing complete is buffered), as qmail-smtpd flushes before each blocking read. So
//! the replies to a pipelined group of commands leave in one write (RFC 2920 §3.1), and
//! a client that does not pipeline gets each reply at once.

use crate::connection::TlsInfo;
use crate::io::{Line, LineReader, ReadError, Transport};
use crate::session::{Session, Want};
use crate::tls::Established;
use crate::tls::stream::TlsStream;
use crate::tls::ucspi::{FdTransport, UcspiFds};

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
    if let Some(info) = opts.already.take() {
        session.tls_started(Established { info, resumed: false });
    }
    let implicit = session.connection().tls.is_none() && (opts.implicit || session.implicit_tls(false));
    if implicit {
        serve_implicit(session, transport, &mut io, &mut opts.ucspi);
        session.finish();
        return transport.hang_up();
    }
    session.start();
    while converse(session, transport, &mut io, true) == End::StartTls {
        let pending = match prepare(session, &mut opts.ucspi) {
            Ok(pending) => pending,
            Err(e) => {
                session.tls_unavailable(&e);
                continue;
            }
        };
        session.tls_go_ahead();
        if !io.flush(session, transport) {
            break;
        }
        // CVE-2011-0411: what the client pipelined after STARTTLS came in clear text.
        session.plaintext_discarded(io.reader.discard());
        match handshake(pending, transport, session.read_timeout()) {
            Ok((mut secure, established)) => {
                session.tls_started(established);
                converse(session, &mut secure, &mut io, false);
                secure.close(CLOSE_TIMEOUT);
            }
            Err(e) => session.tls_failed(&e),
        }
        break;
    }
    session.finish();
    transport.hang_up();
}

/// Port 465: the handshake comes first; a failure ends the connection without a word.
fn serve_implicit(
    session: &mut Session,
    transport: &mut dyn Transport,
    io: &mut Io,
    ucspi: &mut Option<UcspiFds>,
) {
    if !session.implicit_tls(true) {
        return session.tls_failed("implicit TLS needs the tls plugin in config/plugins");
    }
    let result = prepare(session, ucspi).and_then(|p| handshake(p, transport, session.read_timeout()));
    match result {
        Ok((mut secure, established)) => {
            session.tls_started(established);
            session.start();
            converse(session, &mut secure, io, false);
            secure.close(CLOSE_TIMEOUT);
        }
        Err(e) => session.tls_failed(&e),
    }
}

/// How long close_notify may take at the end.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a conversation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Closed,
    StartTls,
}

/// What the driver keeps across a switch to TLS.
struct Io {
    reader: LineReader,
    out: Vec<u8>,
    view: View,
}

impl Io {
    /// Renders and writes the queued replies now; `false` if the client is gone.
    fn flush(&mut self, session: &mut Session, transport: &mut dyn Transport) -> bool {
        session.drain_output(&mut self.out, prefix(self.view));
        if self.out.is_empty() {
            return true;
        }
        let sent = transport.write_all(&self.out, session.write_timeout());
        self.out.clear();
        if sent.is_err() {
            session.output_failed();
            session.drain_output(&mut self.out, prefix(self.view));
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

/// Reads and answers until the session closes or wants TLS.
fn converse(session: &mut Session, transport: &mut dyn Transport, io: &mut Io, can_upgrade: bool) -> End {
    loop {
        let wants = session.wants();
        let ending = matches!(wants, Want::Closed | Want::StartTls);
        // Replies go out when the session ends or switches to TLS, or when no whole line
        // is waiting (the end of a pipelined group); until then they are rendered and
        // held. Most DATA lines queue no reply: then there is nothing to do.
        if ending || session.has_replies() || !io.out.is_empty() {
            if ending || !io.reader.has_line() {
                if !io.flush(session, transport) {
                    return End::Closed;
                }
            } else {
                session.drain_output(&mut io.out, prefix(io.view));
            }
        }
        match session.wants() {
            Want::Closed => return End::Closed,
            Want::StartTls if can_upgrade => return End::StartTls,
            Want::StartTls => session.tls_unavailable("TLS is already active"),
            Want::Command | Want::AuthResponse => {
                let timeout = session.read_timeout();
                match io.reader.read_line(transport, MAX_COMMAND_LINE, timeout) {
                    Ok(Line::Text(line)) => {
                        if io.view.transcript {
                            echo(&mut io.out, line);
                        }
                        if wants == Want::AuthResponse {
                            session.auth_response(line);
                        } else {
                            session.command_line(line);
                        }
                    }
                    Ok(Line::TooLong) => session.line_too_long(),
                    Err(e) => input_failed(session, e),
                }
            }
            Want::Data => {
                let timeout = session.read_timeout();
                match io.reader.read_data(transport, timeout) {
                    Ok((piece, read_ahead)) => {
                        if io.view.transcript {
                            echo(&mut io.out, piece.strip_suffix(b"\n").unwrap_or(piece));
                        }
                        session.set_read_ahead(read_ahead);
                        session.data_segment(piece);
                    }
                    Err(e) => input_failed(session, e),
                }
            }
        }
    }
}

/// What a handshake will use: our certificate, or the UCSPI-TLS super-server.
enum Pending {
    Rustls(std::sync::Arc<rustls::ServerConfig>),
    Ucspi(UcspiFds),
}

fn prepare(session: &mut Session, ucspi: &mut Option<UcspiFds>) -> Result<Pending, String> {
    if let Some(fds) = ucspi.take() {
        return Ok(Pending::Ucspi(fds));
    }
    Ok(Pending::Rustls(session.tls_acceptor()?.config))
}

/// The connection after the handshake.
enum Secure<'a> {
    Rustls(Box<TlsStream<'a>>),
    Ucspi(FdTransport),
}

fn handshake(
    pending: Pending,
    transport: &mut dyn Transport,
    timeout: std::time::Duration,
) -> Result<(Secure<'_>, Established), String> {
    match pending {
        Pending::Rustls(config) => {
            let (stream, established) = crate::tls::stream::handshake(transport, config, timeout)?;
            Ok((Secure::Rustls(Box::new(stream)), established))
        }
        Pending::Ucspi(fds) => {
            let (fds, established) = fds.start(timeout)?;
            Ok((Secure::Ucspi(fds), established))
        }
    }
}

impl Secure<'_> {
    fn close(&mut self, timeout: std::time::Duration) {
        if let Secure::Rustls(stream) = self {
            stream.close(timeout);
        }
    }
}

impl Transport for Secure<'_> {
    fn read(&mut self, buf: &mut [u8], timeout: std::time::Duration) -> std::io::Result<usize> {
        match self {
            Secure::Rustls(s) => s.read(buf, timeout),
            Secure::Ucspi(s) => s.read(buf, timeout),
        }
    }

    fn write_all(&mut self, buf: &[u8], timeout: std::time::Duration) -> std::io::Result<()> {
        match self {
            Secure::Rustls(s) => s.write_all(buf, timeout),
            Secure::Ucspi(s) => s.write_all(buf, timeout),
        }
    }
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
