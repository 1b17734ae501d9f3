//! What is known about the connection: peer facts, greeting, relay status and notes
//! (qpsmtpd's `Qpsmtpd::Connection`).

use std::collections::BTreeMap;
use std::time::Instant;

/// Scratch space plugins share (qpsmtpd's `notes`): string keys and string values, so an
/// external plugin can read and write them as easily as a built-in one.
pub type Notes = BTreeMap<String, String>;

/// HELO or EHLO, and the name the client gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// `true` for EHLO.
    pub esmtp: bool,
    /// The first word of the argument.
    pub host: String,
}

/// A successful authentication (set by the AUTH code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthInfo {
    /// The user name as given.
    pub user: String,
    /// The mechanism, lower-cased (`plain`, `login`, `cram-md5`).
    pub mechanism: String,
}

/// TLS facts for Received and plugins (set once TLS is active).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `TLSv1.3`, `TLSv1.2`.
    pub version: String,
    /// The cipher suite name.
    pub cipher: String,
}

/// One SMTP connection.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The per-connection id that tags log lines and Received headers.
    pub id: String,
    /// The client's IP address (IPv4-mapped IPv6 shown as IPv4).
    pub remote_ip: String,
    /// The client's port, if known.
    pub remote_port: Option<u16>,
    /// The client's host name if the super-server looked it up, else `[ip]`.
    pub remote_host: String,
    /// `ident@host` when the super-server did an ident lookup, else `remote_host`.
    pub remote_info: String,
    /// The local address the client connected to.
    pub local_ip: String,
    /// The local port.
    pub local_port: Option<u16>,
    /// The local host name, if the super-server provides one.
    pub local_host: String,
    /// Are we serving a remote client (fd 0 is a socket, or a super-server's variables
    /// are set), not a transcript piped in by hand? Strict line ends apply then.
    pub network: bool,
    /// May this client relay (RELAYCLIENT, relayclients, AUTH)?
    pub relay_client: bool,
    /// HELO/EHLO, once one succeeded.
    pub hello: Option<Greeting>,
    /// Set after a successful AUTH.
    pub auth: Option<AuthInfo>,
    /// Set once TLS is active.
    pub tls: Option<TlsInfo>,
    /// `RBLSMTPD` as the super-server set it (rblsmtpd's variable, which tcprules can set
    /// per client; the dnsbl plugin reads it): empty = skip the DNS lists, text = refuse.
    pub rblsmtpd: Option<String>,
    /// Whether the client sent anything during the wait a plugin asked for (see
    /// `Offers::greeting_wait`), set only while the hooks after that wait run.
    pub early_input: Option<bool>,
    /// Connection notes.
    pub notes: Notes,
    /// Commands dispatched so far (qpsmtpd's `command_counter`).
    pub command_count: u64,
    /// When the connection started.
    pub started: Instant,
}

/// `[address]`, without the formatting machinery (every connection and every `config`
/// hook call makes two).
fn bracketed(ip: &str) -> String {
    let mut s = String::with_capacity(ip.len() + 2);
    s.push('[');
    s.push_str(ip);
    s.push(']');
    s
}

impl Connection {
    /// A connection from an address, with no other facts (tests, debug sessions).
    pub fn new(id: &str, remote_ip: &str) -> Connection {
        Connection {
            id: id.to_string(),
            remote_ip: remote_ip.to_string(),
            remote_port: None,
            remote_host: bracketed(remote_ip),
            remote_info: bracketed(remote_ip),
            local_ip: String::new(),
            local_port: None,
            local_host: String::new(),
            network: false,
            relay_client: false,
            hello: None,
            auth: None,
            tls: None,
            rblsmtpd: None,
            early_input: None,
            notes: Notes::new(),
            command_count: 0,
            started: Instant::now(),
        }
    }

    /// The greeting name, or `""` before HELO/EHLO.
    pub fn hello_host(&self) -> &str {
        self.hello.as_ref().map_or("", |g| g.host.as_str())
    }
}
