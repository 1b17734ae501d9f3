//! rustls over the plain [`Transport`]: the handshake and the encrypted transport after it.
//!
//! Every read and write goes through the plain transport's `poll`-bounded calls with what
//! is left of a deadline, during the handshake and after it, so a client that stalls
//! mid-handshake or stops reading is cut off by the configured timeout.

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{HandshakeKind, ServerConfig, ServerConnection};

use super::{Established, TlsError, info_of};
use crate::io::Transport;

/// `io::Read`/`io::Write` over a transport, each call bounded by one deadline.
struct Timed<'a, 'b> {
    io: &'a mut (dyn Transport + 'b),
    deadline: Instant,
}

impl Timed<'_, '_> {
    fn left(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        Ok(left)
    }
}

impl Read for Timed<'_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.io.read(buf, left)
    }
}

impl Write for Timed<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = self.left()?;
        self.io.write_all(buf, left)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// The encrypted connection after a handshake.
pub struct TlsStream<'a> {
    io: &'a mut dyn Transport,
    conn: ServerConnection,
}

impl std::fmt::Debug for TlsStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream").finish_non_exhaustive()
    }
}

/// Runs the server side of a handshake on `io` within `timeout`.
pub fn handshake<'a>(
    io: &'a mut dyn Transport,
    config: Arc<ServerConfig>,
    timeout: Duration,
) -> Result<(TlsStream<'a>, Established), TlsError> {
    let conn = ServerConnection::new(config).map_err(|e| TlsError::Handshake(e.to_string()))?;
    let mut stream = TlsStream { io, conn };
    let deadline = Instant::now() + timeout;
    match stream.complete_handshake(deadline) {
        Ok(()) => {}
        Err(e) => {
            // Best effort: let the client see the alert rustls queued (it explains more
            // than a closed connection); the SMTP session says nothing more.
            let _ = stream.flush(Instant::now() + Duration::from_secs(2));
            return Err(match e.kind() {
                io::ErrorKind::TimedOut => TlsError::HandshakeTimeout,
                io::ErrorKind::UnexpectedEof => TlsError::ClientClosed,
                _ => TlsError::Handshake(e.to_string()),
            });
        }
    }
    let established = Established {
        info: info_of(&stream.conn),
        resumed: stream.conn.handshake_kind() == Some(HandshakeKind::Resumed),
    };
    Ok((stream, established))
}

impl TlsStream<'_> {
    fn complete_handshake(&mut self, deadline: Instant) -> io::Result<()> {
        while self.conn.is_handshaking() {
            self.flush(deadline)?;
            if self.conn.is_handshaking() && self.conn.wants_read() {
                self.read_records(deadline)?;
            }
        }
        // TLS 1.2 ends with our Finished (after the client's): the client waits for it.
        // TLS 1.3 only leaves session tickets queued now; they go with the first reply,
        // since written on their own they would hold that reply back until the client's
        // delayed ACK (Nagle), some 40 ms.
        if self.conn.protocol_version() != Some(rustls::ProtocolVersion::TLSv1_3) {
            self.flush(deadline)?;
        }
        Ok(())
    }

    /// Writes everything rustls has queued, in one write: a flight of several records
    /// sent as separate small writes would wait for delayed ACKs (Nagle).
    fn flush(&mut self, deadline: Instant) -> io::Result<()> {
        if !self.conn.wants_write() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(4096);
        while self.conn.wants_write() {
            self.conn.write_tls(&mut records)?;
        }
        let mut out = Timed {
            io: &mut *self.io,
            deadline,
        };
        out.write_all(&records)
    }

    /// Reads one batch of TLS records and processes them; end of input is an error.
    fn read_records(&mut self, deadline: Instant) -> io::Result<()> {
        let mut input = Timed {
            io: &mut *self.io,
            deadline,
        };
        if self.conn.read_tls(&mut input)? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        if let Err(e) = self.conn.process_new_packets() {
            return Err(tls_error(e));
        }
        Ok(())
    }

    /// Sends close_notify (RFC 8446 §6.1), so clients do not report a truncated session.
    pub fn close(&mut self, timeout: Duration) {
        self.conn.send_close_notify();
        let _ = self.flush(Instant::now() + timeout);
    }
}

impl Transport for TlsStream<'_> {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            match self.read_records(deadline) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => {
                    let _ = self.flush(deadline);
                    return Err(e);
                }
            }
            // Anything rustls queued in answer (a key update) leaves with the next reply.
        }
    }

    fn write_all(&mut self, mut buf: &[u8], timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        while !buf.is_empty() {
            let n = self.conn.writer().write(buf)?;
            if n == 0 && !self.conn.wants_write() {
                return Err(io::Error::from(io::ErrorKind::WriteZero));
            }
            buf = &buf[n..];
            self.flush(deadline)?;
        }
        self.flush(deadline)
    }

    fn client_alive(&mut self) -> bool {
        self.io.client_alive()
    }

    /// earlytalker's wait inside TLS: decrypted input not yet read counts at once, then
    /// anything arriving on the connection (a record from the client, or its end). After
    /// the handshake a polite client sends nothing until it has our reply.
    fn readable(&mut self, timeout: Duration) -> io::Result<bool> {
        let state = self.conn.process_new_packets().map_err(tls_error)?;
        if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
            return Ok(true);
        }
        self.io.readable(timeout)
    }
}
