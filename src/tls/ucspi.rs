//! UCSPI-TLS: TLS done by the super-server (`sslserver -n` from ucspi-ssl).
//!
//! The super-server passes three descriptors and names them in the environment:
//! `SSLCTLFD` (control), `SSLREADFD` and `SSLWRITEFD`. Until TLS starts, the session runs
//! in clear text on fd 0 and 1. To start TLS the program writes `Y` to the control
//! descriptor; the super-server does the handshake with the client and answers on the
//! control descriptor with the connection facts as `VAR=value\0...\0\0` (mod_ssl names,
//! `SSL_PROTOCOL` and `SSL_CIPHER`). From then on the program reads the client's
//! decrypted data from `SSLREADFD` and writes to `SSLWRITEFD`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use super::{Established, TlsError};
use crate::connection::TlsInfo;
use crate::io::{Transport, read_fd, readable_fd, write_fd};

/// The descriptors a UCSPI-TLS super-server passed.
#[derive(Debug)]
pub struct UcspiFds {
    /// The control descriptor.
    pub ctl: OwnedFd,
    /// Decrypted data from the client, after TLS started.
    pub read: OwnedFd,
    /// Data for the client, encrypted by the super-server.
    pub write: OwnedFd,
}

/// Reading and writing two descriptors with timeouts.
#[derive(Debug)]
pub struct FdTransport {
    read: OwnedFd,
    write: OwnedFd,
}

impl FdTransport {
    /// A transport over a pair of descriptors.
    pub fn new(read: OwnedFd, write: OwnedFd) -> FdTransport {
        FdTransport { read, write }
    }
}

impl Transport for FdTransport {
    fn read(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        read_fd(self.read.as_fd(), buf, timeout)
    }

    fn write_all(&mut self, buf: &[u8], timeout: Duration) -> io::Result<()> {
        write_fd(self.write.as_fd(), buf, timeout)
    }

    fn readable(&mut self, timeout: Duration) -> io::Result<bool> {
        readable_fd(self.read.as_fd(), timeout)
    }
}

/// The longest answer accepted on the control descriptor.
const MAX_ANSWER: usize = 16 * 1024;

impl UcspiFds {
    /// Asks the super-server to start TLS and waits (at most `timeout`) for its answer.
    pub fn start(self, timeout: Duration) -> Result<(FdTransport, Established), TlsError> {
        let deadline = Instant::now() + timeout;
        let control = |e: io::Error| TlsError::Ucspi(format!("control descriptor: {e}"));
        write_fd(self.ctl.as_fd(), b"Y", timeout).map_err(control)?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"\0\0") {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = read_fd(self.ctl.as_fd(), &mut buf, left).map_err(|e| match e.kind() {
                io::ErrorKind::TimedOut => TlsError::HandshakeTimeout,
                _ => control(e),
            })?;
            if n == 0 {
                return Err(TlsError::Ucspi(
                    "the server closed the control descriptor: handshake failed".into(),
                ));
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.len() > MAX_ANSWER {
                return Err(TlsError::Ucspi("answer too long".into()));
            }
        }
        let established = Established {
            info: info_from_env(&answer),
            resumed: env_value(&answer, "SSL_SESSION_RESUMED").is_some_and(|v| v == "Resumed" || v == "1"),
        };
        Ok((FdTransport::new(self.read, self.write), established))
    }
}

fn env_value<'a>(answer: &'a [u8], name: &str) -> Option<&'a str> {
    answer
        .split(|b| *b == 0)
        .filter_map(|kv| std::str::from_utf8(kv).ok())
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// Version and cipher from the super-server's answer (or its environment, when it did
/// the TLS before starting us); `unknown` when it did not say.
pub fn info_from_env(answer: &[u8]) -> TlsInfo {
    let clean = |v: Option<&str>| {
        v.map(|s| s.chars().filter(|c| c.is_ascii_graphic()).collect::<String>())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "unknown".to_string())
    };
    TlsInfo {
        version: clean(env_value(answer, "SSL_PROTOCOL")),
        cipher: clean(env_value(answer, "SSL_CIPHER")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_parsing() {
        let a = b"SSL_PROTOCOL=TLSv1.3\0SSL_CIPHER=TLS_AES_256_GCM_SHA384\0\0";
        let info = info_from_env(a);
        assert_eq!(
            (info.version.as_str(), info.cipher.as_str()),
            ("TLSv1.3", "TLS_AES_256_GCM_SHA384")
        );
        assert_eq!(info_from_env(b"\0\0").version, "unknown");
        assert_eq!(info_from_env(b"SSL_CIPHER=a b\n\0\0").cipher, "ab");
    }
}
