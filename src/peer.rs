//! Connection facts from wherever the super-server puts them.
//!
//! | Source | Variables |
//! |---|---|
//! | command-line flags | `--remote-ip`, `--remote-port`, `--remote-host`, `--local-ip`, `--local-port` (win over everything) |
//! | ucspi-tcp `tcpserver`, s6-tcpserver | `TCPREMOTEIP`, `TCPREMOTEPORT`, `TCPREMOTEHOST`, `TCPREMOTEINFO`, `TCPLOCALIP`, `TCPLOCALPORT`, `TCPLOCALHOST` (and ucspi-tcp6's `TCP6*`) |
//! | ucspi-ssl `sslserver` (without `-e`) | `SSLREMOTEIP`, `SSLREMOTEPORT`, `SSLREMOTEHOST`, `SSLREMOTEINFO`, `SSLLOCALIP`, `SSLLOCALPORT`, `SSLLOCALHOST` |
//! | systemd `Accept=yes` | `REMOTE_ADDR`, `REMOTE_PORT` |
//! | inetd, xinetd, systemd | `getpeername`/`getsockname` on fd 0; xinetd's `REMOTE_HOST` (a numeric address) |
//! | a piped transcript | none of the above: remote `127.0.0.1`, local `127.0.0.1` port 25 |
//!
//! IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`) are shown as IPv4. Values that do not
//! parse as addresses are ignored, never fatal. `RELAYCLIENT` set to anything (even
//! empty) makes the client a relay client, as in qmail-smtpd; the `relay` plugin's
//! `norelayclients` can take that back.
//!
//! A super-server started us for a remote client when fd 0 is a socket or one of its
//! variables is set (`PROTO`, `TCPREMOTEIP`, ...: the test privilege dropping uses). Then
//! the client is never guessed to be `127.0.0.1`, which the shipped `relayclients` lets
//! relay: an address nothing names is [`UNKNOWN_REMOTE_IP`] (README Differences 65). Such
//! a connection is a network connection for the line-end policy too, even when a TLS
//! wrapper hands us pipes.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;

use nix::sys::socket::{SockaddrLike, SockaddrStorage, getpeername, getsockname};

use crate::connection::Connection;

/// Remote address used when nothing else says where the client is (a piped session).
pub const DEFAULT_REMOTE_IP: &str = "127.0.0.1";

/// Remote address of a remote client whose address no variable or socket gives: the
/// unspecified address, which no `relayclients` entry is meant to match.
pub const UNKNOWN_REMOTE_IP: &str = "0.0.0.0";

/// What fd 0 is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketFacts {
    /// fd 0 is a socket.
    pub is_socket: bool,
    /// The peer's address, if fd 0 is a connected IP socket.
    pub peer: Option<SocketAddr>,
    /// Our address on that socket.
    pub local: Option<SocketAddr>,
}

/// Connection facts given on the command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--remote-ip`
    pub remote_ip: Option<String>,
    /// `--remote-port`
    pub remote_port: Option<u16>,
    /// `--remote-host`
    pub remote_host: Option<String>,
    /// `--local-ip`
    pub local_ip: Option<String>,
    /// `--local-port`
    pub local_port: Option<u16>,
}

/// Looks at fd 0.
pub fn probe_stdin() -> SocketFacts {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let is_socket = nix::sys::stat::fstat(fd)
        .map(|st| (st.st_mode & nix::libc::S_IFMT) == nix::libc::S_IFSOCK)
        .unwrap_or(false);
    if !is_socket {
        return SocketFacts::default();
    }
    let addr = |r: nix::Result<SockaddrStorage>| r.ok().and_then(|s| to_std(&s));
    SocketFacts {
        is_socket,
        peer: addr(getpeername::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(
            &fd,
        ))),
        local: addr(getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(
            &fd,
        ))),
    }
}

fn to_std(s: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = s.as_sockaddr_in() {
        return Some(SocketAddr::from(*v4));
    }
    if s.family() == Some(nix::sys::socket::AddressFamily::Inet6) {
        let v6 = SocketAddr::from(*s.as_sockaddr_in6()?);
        return Some(SocketAddr::new(v6.ip().to_canonical(), v6.port()));
    }
    None
}

/// A per-connection id: the start time (hex seconds) and the process id.
pub fn connection_id() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("{secs:x}.{}", std::process::id())
}

/// Builds the connection facts from flags, environment and socket.
pub fn connection(
    id: &str,
    env: &dyn Fn(&str) -> Option<String>,
    sock: &SocketFacts,
    flags: &Overrides,
) -> Connection {
    let facts = Facts { env, sock, flags };
    let remote = crate::privileges::serving_remote(sock.is_socket, env);
    let remote_ip = facts.remote_ip(remote);
    let remote_host = flags
        .remote_host
        .clone()
        .or_else(|| facts.first(&["TCPREMOTEHOST", "TCP6REMOTEHOST", "SSLREMOTEHOST"]))
        .map(|h| sanitize_host(&h))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| format!("[{remote_ip}]"));
    let remote_info = match facts
        .first(&["TCPREMOTEINFO", "SSLREMOTEINFO"])
        .map(|i| sanitize_host(&i))
    {
        Some(info) if !info.is_empty() => format!("{info}@{remote_host}"),
        _ => remote_host.clone(),
    };
    let mut conn = Connection::new(id, &remote_ip);
    conn.remote_port = facts.remote_port();
    conn.remote_host = remote_host;
    conn.remote_info = remote_info;
    conn.local_ip = facts.local_ip(remote);
    conn.local_port = facts.local_port(remote);
    conn.local_host = facts
        .first(&["TCPLOCALHOST", "SSLLOCALHOST"])
        .map(|h| sanitize_host(&h))
        .unwrap_or_default();
    conn.network = remote;
    conn.relay_client = env("RELAYCLIENT").is_some();
    conn.rblsmtpd = env("RBLSMTPD");
    conn
}

/// Where connection facts come from, most trusted first: flags, the super-server's
/// environment (ucspi-tcp, ucspi-tcp6, UCSPI-TLS, xinetd), the socket.
struct Facts<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    sock: &'a SocketFacts,
    flags: &'a Overrides,
}

impl Facts<'_> {
    fn first(&self, names: &[&str]) -> Option<String> {
        names.iter().find_map(|n| (self.env)(n))
    }

    fn ip(&self, name: &str) -> Option<String> {
        (self.env)(name).and_then(|v| canonical_ip(&v))
    }

    fn port(&self, name: &str) -> Option<u16> {
        (self.env)(name).and_then(|v| v.trim().parse::<u16>().ok())
    }

    fn remote_ip(&self, remote: bool) -> String {
        self.flags
            .remote_ip
            .as_deref()
            .and_then(canonical_ip)
            .or_else(|| self.ip("TCPREMOTEIP"))
            .or_else(|| self.ip("TCP6REMOTEIP"))
            .or_else(|| self.ip("SSLREMOTEIP"))
            .or_else(|| self.ip("REMOTE_ADDR"))
            .or_else(|| self.sock.peer.map(|a| ip_text(a.ip())))
            .or_else(|| self.ip("REMOTE_HOST"))
            .unwrap_or_else(|| {
                if remote {
                    UNKNOWN_REMOTE_IP.to_string()
                } else {
                    DEFAULT_REMOTE_IP.to_string()
                }
            })
    }

    fn remote_port(&self) -> Option<u16> {
        self.flags
            .remote_port
            .or_else(|| self.port("TCPREMOTEPORT"))
            .or_else(|| self.port("TCP6REMOTEPORT"))
            .or_else(|| self.port("SSLREMOTEPORT"))
            .or_else(|| self.port("REMOTE_PORT"))
            .or_else(|| self.sock.peer.map(|a| a.port()))
    }

    fn local_ip(&self, remote: bool) -> String {
        self.flags
            .local_ip
            .as_deref()
            .and_then(canonical_ip)
            .or_else(|| self.ip("TCPLOCALIP"))
            .or_else(|| self.ip("TCP6LOCALIP"))
            .or_else(|| self.ip("SSLLOCALIP"))
            .or_else(|| self.sock.local.map(|a| ip_text(a.ip())))
            .unwrap_or_else(|| {
                if remote {
                    String::new()
                } else {
                    "127.0.0.1".to_string()
                }
            })
    }

    fn local_port(&self, remote: bool) -> Option<u16> {
        self.flags
            .local_port
            .or_else(|| self.port("TCPLOCALPORT"))
            .or_else(|| self.port("TCP6LOCALPORT"))
            .or_else(|| self.port("SSLLOCALPORT"))
            .or_else(|| self.sock.local.map(|a| a.port()))
            .or(if remote { None } else { Some(25) })
    }
}

/// Parses an address (with or without `[]`, with a `%zone`), v4-mapped shown as IPv4.
pub fn canonical_ip(s: &str) -> Option<String> {
    let s = s.trim().trim_start_matches('[').trim_end_matches(']');
    let s = s.split('%').next().unwrap_or(s);
    s.parse::<IpAddr>().ok().map(|ip| ip_text(ip.to_canonical()))
}

/// An address as `Display` writes it; an IPv4 address without the formatting machinery
/// (a thousand instructions each, and every session writes a few).
pub fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => ipv4_text(v4),
        IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `192.0.2.1`: what `Ipv4Addr`'s `Display` writes.
pub fn ipv4_text(v4: std::net::Ipv4Addr) -> String {
    let mut s = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        if octet >= 100 {
            s.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            s.push(char::from(b'0' + octet / 10 % 10));
        }
        s.push(char::from(b'0' + octet % 10));
    }
    s
}

/// qpsmtpd's `tr/a-zA-Z\.\-0-9\[\]//cd`: names from DNS or ident may hold anything.
fn sanitize_host(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || ".-[]:".contains(*c))
        .collect()
}

#[cfg(test)]
mod tests;
