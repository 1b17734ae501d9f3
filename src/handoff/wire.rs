//! The byte stream to a next hop: connecting, reading and writing against deadlines, and
//! noticing bytes that nobody asked for.
//!
//! - Every wait has a deadline set by the caller (one per reply, one per write), so a next
//!   hop that drips a byte at a time cannot stretch a wait beyond it: the socket's
//!   timeout is set to the time left before each system call.
//! - A termination signal (SIGTERM from the supervisor) interrupts the blocked call (our
//!   handler has no `SA_RESTART`); the wait then ends at once with [`Trouble::Terminated`]
//!   instead of being restarted. Connecting is done by hand for the same reason: std's
//!   `connect_timeout` restarts after a signal.
//! - [`Wire::unsolicited`] looks, without waiting, for input that arrived although no
//!   command is outstanding: read as the answer to the next command, it would shift every
//!   later reply by one.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{AddressFamily, MsgFlags, SockaddrStorage, UnixAddr, recv};
use rustls::{ClientConnection, StreamOwned};

use super::clean_text;
use crate::io::TERMINATE;

mod broken;
mod connect;

pub use broken::{Broken, Trouble};
use connect::connect_fd;

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Gone,
}

/// The stream and the bytes read from it but not yet taken.
pub struct Wire {
    stream: Stream,
    inbuf: Vec<u8>,
    /// The next hop, for messages.
    name: String,
}

/// The smallest socket timeout we set (zero means "no timeout" to the kernel).
const MIN_WAIT: Duration = Duration::from_millis(1);

impl Wire {
    /// Connects over TCP; each address gets `timeout`.
    pub fn tcp(host: &str, port: u16, timeout: Duration, name: &str) -> Result<Wire, Broken> {
        let unreachable =
            |e: &dyn std::fmt::Display| Broken::new(Trouble::Unreachable, format!("{name}: connect: {e}"));
        crate::names::host_lookup_allowed(host).map_err(|e| unreachable(&e))?;
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| unreachable(&e))?
            .collect();
        let mut last = Broken::new(Trouble::Unreachable, format!("{name}: connect: no address"));
        for addr in addrs {
            let family = if addr.is_ipv4() {
                AddressFamily::Inet
            } else {
                AddressFamily::Inet6
            };
            match connect_fd(family, &SockaddrStorage::from(addr), timeout, name) {
                Ok(fd) => {
                    let s = TcpStream::from(fd);
                    let _ = s.set_nodelay(true);
                    return Ok(Wire::new(Stream::Tcp(s), name));
                }
                Err(b) if b.trouble == Trouble::Terminated => return Err(b),
                Err(b) => last = b,
            }
        }
        Err(last)
    }

    /// Connects to a Unix socket.
    pub fn unix(path: &Path, timeout: Duration, name: &str) -> Result<Wire, Broken> {
        let addr = UnixAddr::new(path)
            .map_err(|e| Broken::new(Trouble::Unreachable, format!("{name}: connect: {}", e.desc())))?;
        let fd = connect_fd(AddressFamily::Unix, &addr, timeout, name)?;
        Ok(Wire::new(Stream::Unix(UnixStream::from(fd)), name))
    }

    fn new(stream: Stream, name: &str) -> Wire {
        Wire {
            stream,
            inbuf: Vec::with_capacity(4096),
            name: name.to_string(),
        }
    }

    fn broken(&self, trouble: Trouble, what: impl std::fmt::Display) -> Broken {
        Broken::new(trouble, format!("{}: {what}", self.name))
    }

    /// One line (up to and including LF), waiting until `deadline`. A line longer than
    /// `max` bytes is a protocol error.
    pub fn read_line(&mut self, deadline: Instant, max: usize) -> Result<Vec<u8>, Broken> {
        loop {
            if let Some(pos) = crate::bytes::find_byte(b'\n', &self.inbuf) {
                if pos >= max {
                    return Err(self.broken(Trouble::Protocol, "reply line too long"));
                }
                return Ok(self.inbuf.drain(..=pos).collect());
            }
            if self.inbuf.len() >= max {
                return Err(self.broken(Trouble::Protocol, "reply line too long"));
            }
            self.fill(deadline)?;
        }
    }

    /// Reads whatever comes next into the buffer.
    fn fill(&mut self, deadline: Instant) -> Result<(), Broken> {
        let mut buf = [0u8; 4096];
        loop {
            let left = self.left(deadline, "waiting for the reply")?;
            self.set_timeouts(Some(left), None);
            let got = match &mut self.stream {
                Stream::Tcp(s) => s.read(&mut buf),
                Stream::Unix(s) => s.read(&mut buf),
                Stream::Tls(s) => s.read(&mut buf),
                Stream::Gone => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            match got {
                Ok(0) => {
                    return Err(self.broken(Trouble::Closed, "connection closed while waiting for the reply"));
                }
                Ok(n) => {
                    self.inbuf.extend_from_slice(&buf[..n]);
                    return Ok(());
                }
                Err(e) => self.retry_or_fail(&e, "reading the reply")?,
            }
        }
    }

    /// Writes all of `data` (and flushes TLS) before `deadline`.
    pub fn write_all(&mut self, mut data: &[u8], deadline: Instant) -> Result<(), Broken> {
        while !data.is_empty() {
            let left = self.left(deadline, "sending")?;
            self.set_timeouts(None, Some(left));
            let put = match &mut self.stream {
                Stream::Tcp(s) => s.write(data),
                Stream::Unix(s) => s.write(data),
                Stream::Tls(s) => s.write(data),
                Stream::Gone => Err(io::Error::from(io::ErrorKind::NotConnected)),
            };
            match put {
                Ok(0) => return Err(self.broken(Trouble::Closed, "connection closed while sending")),
                Ok(n) => data = &data[n..],
                Err(e) => self.retry_or_fail(&e, "sending")?,
            }
        }
        loop {
            let left = self.left(deadline, "sending")?;
            self.set_timeouts(None, Some(left));
            let flushed = match &mut self.stream {
                Stream::Tls(s) => s.flush(),
                _ => Ok(()),
            };
            match flushed {
                Ok(()) => return Ok(()),
                Err(e) => self.retry_or_fail(&e, "sending")?,
            }
        }
    }

    /// The time left before `deadline`, or the reason to stop waiting.
    fn left(&self, deadline: Instant, what: &str) -> Result<Duration, Broken> {
        if TERMINATE.load(Ordering::SeqCst) {
            return Err(self.broken(
                Trouble::Terminated,
                format!("{what}: interrupted by a termination signal"),
            ));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.broken(Trouble::Timeout, format!("{what}: timed out")));
        }
        Ok(left.max(MIN_WAIT))
    }

    /// After a failed read or write: `Ok` to try again (a timeout before the deadline, a
    /// signal that is not a termination), else why the connection is unusable.
    fn retry_or_fail(&self, e: &io::Error, what: &str) -> Result<(), Broken> {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(()),
            io::ErrorKind::InvalidData => Err(self.broken(Trouble::Tls, format!("{what}: {e}"))),
            _ => Err(self.broken(Trouble::Closed, format!("{what}: {e}"))),
        }
    }

    fn set_timeouts(&self, read: Option<Duration>, write: Option<Duration>) {
        let sock: Option<&dyn Timeouts> = match &self.stream {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(s) => Some(s),
            Stream::Tls(s) => Some(&s.sock),
            Stream::Gone => None,
        };
        if let Some(sock) = sock {
            if read.is_some() {
                sock.read_timeout(read);
            }
            if write.is_some() {
                sock.write_timeout(write);
            }
        }
    }

    /// Anything the next hop sent that no command asked for, without waiting: `Ok` when
    /// there is nothing. Such bytes (and the end of the connection) make it unusable.
    pub fn unsolicited(&mut self) -> Result<(), Broken> {
        match self.ended_or_unsolicited()? {
            false => Ok(()),
            true => Err(self.broken(Trouble::Closed, "connection closed")),
        }
    }

    /// [`Wire::unsolicited`], but the end of the connection is no error: `Ok(true)` when
    /// the next hop has closed it (after its last reply, that is no reply nobody asked
    /// for, only the end of the session).
    pub fn ended_or_unsolicited(&mut self) -> Result<bool, Broken> {
        if self.inbuf.is_empty() {
            let mut buf = [0u8; 1024];
            match self.peek_input(&mut buf)? {
                Some(0) => return Ok(true),
                Some(n) => self.inbuf.extend_from_slice(&buf[..n]),
                None => return Ok(false),
            }
        }
        let end = self
            .inbuf
            .iter()
            .position(|b| *b == b'\n')
            .unwrap_or(self.inbuf.len());
        let first = String::from_utf8_lossy(&self.inbuf[..end.min(200)]).into_owned();
        Err(self.broken(
            Trouble::Protocol,
            format!("sent {:?} although nothing was asked", clean_text(&first)),
        ))
    }

    /// Input that is already there: `Some(0)` at the end of the connection.
    fn peek_input(&mut self, buf: &mut [u8]) -> Result<Option<usize>, Broken> {
        let name = self.name.clone();
        let closed = |e: &dyn std::fmt::Display| Broken::new(Trouble::Closed, format!("{name}: {e}"));
        match &mut self.stream {
            Stream::Tcp(s) => nonblocking_recv(s.as_fd(), buf).map_err(|e| closed(&e)),
            Stream::Unix(s) => nonblocking_recv(s.as_fd(), buf).map_err(|e| closed(&e)),
            Stream::Tls(s) => {
                if let Some(n) = tls_plaintext(&mut s.conn, buf).map_err(|e| closed(&e))? {
                    return Ok(Some(n));
                }
                if !readable(s.sock.as_fd()) {
                    return Ok(None);
                }
                match s.conn.read_tls(&mut s.sock) {
                    Ok(0) => return Ok(Some(0)),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                    Err(e) => return Err(closed(&e)),
                }
                s.conn
                    .process_new_packets()
                    .map_err(|e| Broken::new(Trouble::Tls, format!("{name}: {e}")))?;
                tls_plaintext(&mut s.conn, buf).map_err(|e| closed(&e))
            }
            Stream::Gone => Ok(Some(0)),
        }
    }

    /// Bytes read but not yet taken?
    pub fn has_buffered(&self) -> bool {
        !self.inbuf.is_empty()
    }

    /// Is this plain TCP (the only stream STARTTLS can start on)?
    pub fn is_plain_tcp(&self) -> bool {
        matches!(self.stream, Stream::Tcp(_))
    }

    /// The TLS handshake on this TCP connection, before `deadline`.
    pub fn start_tls(&mut self, conn: ClientConnection, deadline: Instant) -> Result<(), Broken> {
        let Stream::Tcp(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(self.broken(Trouble::Tls, "STARTTLS: only over TCP"));
        };
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        loop {
            let handshaking = matches!(&self.stream, Stream::Tls(s) if s.conn.is_handshaking());
            if !handshaking {
                return Ok(());
            }
            let left = self.left(deadline, "TLS handshake")?;
            self.set_timeouts(Some(left), Some(left));
            let step = match &mut self.stream {
                Stream::Tls(s) => s.conn.complete_io(&mut s.sock).map(|_| ()),
                _ => Ok(()),
            };
            match step {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Err(self.broken(Trouble::Closed, "connection closed during the TLS handshake"));
                }
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => {}
                    _ => return Err(self.broken(Trouble::Tls, format!("TLS handshake: {e}"))),
                },
            }
        }
    }
}

/// Socket timeouts on either kind of socket.
trait Timeouts {
    fn read_timeout(&self, t: Option<Duration>);
    fn write_timeout(&self, t: Option<Duration>);
}

impl Timeouts for TcpStream {
    fn read_timeout(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
    }
    fn write_timeout(&self, t: Option<Duration>) {
        let _ = self.set_write_timeout(t);
    }
}

impl Timeouts for UnixStream {
    fn read_timeout(&self, t: Option<Duration>) {
        let _ = self.set_read_timeout(t);
    }
    fn write_timeout(&self, t: Option<Duration>) {
        let _ = self.set_write_timeout(t);
    }
}

/// `recv` without waiting: `None` when nothing is there, `Some(0)` at the end.
fn nonblocking_recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> Result<Option<usize>, Errno> {
    loop {
        return match recv(fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::EAGAIN) => Ok(None),
            Err(Errno::EINTR) => continue,
            Err(e) => Err(e),
        };
    }
}

/// Decrypted bytes rustls already holds: `None` when there are none yet.
fn tls_plaintext(conn: &mut ClientConnection, buf: &mut [u8]) -> io::Result<Option<usize>> {
    match conn.reader().read(buf) {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(Some(0)),
        Err(e) => Err(e),
    }
}

/// Is input (or the end) waiting on this descriptor?
fn readable(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}
