//! A blocking SMTP and LMTP client for the queue plugins (RFC 5321, RFC 2033).
//!
//! Every read and write has the plugin's timeout; replies are bounded (at most 100 lines
//! of 4 KiB). Any I/O error, timeout, or reply that is not SMTP is a
//! [`Failure::Broken`]: we cannot know what the server did, so the client is told to try
//! again. No pipelining: one command, one reply, so every answer belongs to one command.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustls::{ClientConnection, StreamOwned};

use super::{Failure, clean_text, dot::DotStuffer};

const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Host name or address, and port.
    Tcp(String, u16),
    /// A Unix socket.
    Unix(PathBuf),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Tcp(h, p) if h.contains(':') => write!(f, "[{h}]:{p}"),
            Target::Tcp(h, p) => write!(f, "{h}:{p}"),
            Target::Unix(p) => write!(f, "{}", p.display()),
        }
    }
}

/// STARTTLS policy towards the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Never.
    Off,
    /// When offered, without checking the certificate.
    May,
    /// Required, with a certificate for `name` that chains to the roots in `ca_file`.
    Verify {
        /// PEM file of trusted roots.
        ca_file: PathBuf,
        /// The name the certificate must carry.
        name: String,
    },
}

/// How to talk to the server.
#[derive(Debug, Clone)]
pub struct Options {
    /// Each read and write (and the connect) may take this long.
    pub timeout: Duration,
    /// LMTP (`LHLO`) instead of SMTP (`EHLO`).
    pub lmtp: bool,
    /// Our name in EHLO/LHLO.
    pub helo: String,
    /// STARTTLS policy.
    pub tls: Tls,
}

/// A server reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The text of each line (after `NNN-` / `NNN `).
    pub lines: Vec<String>,
}

impl Reply {
    /// The text, lines joined with a space, cleaned for use in our own replies.
    pub fn text(&self) -> String {
        clean_text(&self.lines.join(" "))
    }

    /// `code text`, for logs.
    pub fn describe(&self) -> String {
        format!("{} {}", self.code, self.text())
    }

    /// 2xx (or 3xx where the command expects it)?
    pub fn positive(&self) -> bool {
        self.code < 400
    }

    /// The failure this reply means, if it is one: 5xx permanent, 4xx temporary.
    pub fn failure(&self) -> Option<Failure> {
        match self.code {
            500..=599 => Some(Failure::Permanent(self.text())),
            400..=499 => Some(Failure::Temporary(self.text())),
            _ => None,
        }
    }
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(io::Error::from(io::ErrorKind::NotConnected)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.flush(),
            Stream::Unix(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}

/// An open session with a server, greeted and ready for MAIL.
pub struct Client {
    io: BufReader<Stream>,
    target: Target,
    /// EHLO/LHLO keywords, upper-cased, with their parameters.
    pub capabilities: Vec<String>,
    /// Did STARTTLS succeed?
    pub encrypted: bool,
    /// The greeting's reply.
    pub greeting: Reply,
}

fn broken(target: &Target, what: &str, e: impl std::fmt::Display) -> Failure {
    Failure::Broken(format!("{target}: {what}: {e}"))
}

impl Client {
    /// Connects, reads the greeting, says EHLO/LHLO and does STARTTLS per policy. A
    /// greeting or EHLO that is not positive is returned as that reply's failure.
    pub fn connect(target: &Target, opts: &Options) -> Result<Client, Failure> {
        let stream = match target {
            Target::Tcp(host, port) => {
                Stream::Tcp(connect_tcp(host, *port, opts.timeout).map_err(|e| broken(target, "connect", e))?)
            }
            Target::Unix(path) => {
                Stream::Unix(connect_unix(path, opts.timeout).map_err(|e| broken(target, "connect", e))?)
            }
        };
        let mut client = Client {
            io: BufReader::with_capacity(8192, stream),
            target: target.clone(),
            capabilities: Vec::new(),
            encrypted: false,
            greeting: Reply {
                code: 0,
                lines: Vec::new(),
            },
        };
        let greeting = client.read_reply()?;
        if greeting.code != 220 {
            return Err(greeting
                .failure()
                .unwrap_or_else(|| client.unexpected("greeting", &greeting)));
        }
        client.greeting = greeting;
        client.hello(opts)?;
        match &opts.tls {
            Tls::Off => {}
            Tls::May if !client.offers("STARTTLS") => {}
            Tls::May => client.starttls(opts, None)?,
            Tls::Verify { .. } if !client.offers("STARTTLS") => {
                return Err(Failure::Broken(format!(
                    "{target}: STARTTLS required but not offered"
                )));
            }
            Tls::Verify { ca_file, name } => client.starttls(opts, Some((ca_file, name)))?,
        }
        Ok(client)
    }

    /// Sends EHLO (LHLO) and records the keywords.
    pub fn hello(&mut self, opts: &Options) -> Result<(), Failure> {
        let verb = if opts.lmtp { "LHLO" } else { "EHLO" };
        let reply = self.command(&format!("{verb} {}", opts.helo))?;
        if reply.code != 250 {
            return Err(reply.failure().unwrap_or_else(|| self.unexpected(verb, &reply)));
        }
        self.capabilities = reply
            .lines
            .iter()
            .skip(1)
            .map(|l| l.trim().to_ascii_uppercase())
            .collect();
        Ok(())
    }

    /// Does EHLO list this keyword? Returns its parameters.
    pub fn keyword(&self, name: &str) -> Option<&str> {
        self.capabilities.iter().find_map(|c| {
            let mut parts = c.splitn(2, ' ');
            (parts.next() == Some(name)).then(|| parts.next().unwrap_or(""))
        })
    }

    /// Does EHLO list this keyword?
    pub fn offers(&self, name: &str) -> bool {
        self.keyword(name).is_some()
    }

    fn starttls(&mut self, opts: &Options, verify: Option<(&PathBuf, &String)>) -> Result<(), Failure> {
        let reply = self.command("STARTTLS")?;
        if reply.code != 220 {
            return Err(reply
                .failure()
                .unwrap_or_else(|| self.unexpected("STARTTLS", &reply)));
        }
        // Anything the server sent after its 220 would be plain text spliced into the
        // encrypted session (CVE-2011-0411 in reverse): refuse to go on.
        if !self.io.buffer().is_empty() {
            return Err(broken(
                &self.target,
                "STARTTLS",
                "server sent data before the handshake",
            ));
        }
        let name = match (&self.target, verify) {
            (_, Some((_, name))) => name.clone(),
            (Target::Tcp(host, _), None) => host.clone(),
            (Target::Unix(_), None) => "localhost".to_string(),
        };
        let conn = match verify {
            Some((ca, name)) => super::tls::verified(ca, name),
            None => super::tls::unverified(&name),
        }
        .map_err(|e| broken(&self.target, "TLS setup", e))?;
        let stream = std::mem::replace(self.io.get_mut(), Stream::Gone);
        let Stream::Tcp(tcp) = stream else {
            return Err(broken(&self.target, "STARTTLS", "only over TCP"));
        };
        let mut tls = StreamOwned::new(conn, tcp);
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| broken(&self.target, "TLS handshake", e))?;
        }
        *self.io.get_mut() = Stream::Tls(Box::new(tls));
        self.encrypted = true;
        self.hello(opts)
    }

    /// Sends one command line and reads its reply.
    pub fn command(&mut self, line: &str) -> Result<Reply, Failure> {
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        let target = self.target.clone();
        let verb = line.split(' ').next().unwrap_or("");
        self.io
            .get_mut()
            .write_all(&data)
            .and_then(|_| self.io.get_mut().flush())
            .map_err(|e| broken(&target, &format!("sending {verb}"), e))?;
        self.read_reply()
    }

    /// Sends the message in DATA form (dot-stuffed, CRLF, the final dot) after a `354`.
    /// `write` produces the message with LF line ends.
    pub fn send_message(
        &mut self,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), Failure> {
        let target = self.target.clone();
        let mut stuffer = DotStuffer::new(self.io.get_mut(), true);
        write(&mut stuffer)
            .and_then(|_| stuffer.finish().map(|_| ()))
            .map_err(|e| broken(&target, "sending the message", e))
    }

    /// Reads one (possibly multi-line) reply.
    pub fn read_reply(&mut self) -> Result<Reply, Failure> {
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let mut raw = Vec::new();
            let n = (&mut self.io)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut raw)
                .map_err(|e| broken(&self.target, "reading the reply", e))?;
            if n == 0 {
                return Err(broken(&self.target, "reading the reply", "connection closed"));
            }
            if raw.last() != Some(&b'\n') {
                return Err(broken(&self.target, "reading the reply", "line too long"));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let (this, sep, text) = parse_line(line)
                .ok_or_else(|| broken(&self.target, "not an SMTP reply", clean_text(line)))?;
            if code != 0 && this != code {
                return Err(broken(
                    &self.target,
                    "not an SMTP reply",
                    "codes differ between lines",
                ));
            }
            code = this;
            lines.push(text.to_string());
            if sep == ' ' {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(broken(&self.target, "reading the reply", "too many lines"));
            }
        }
    }

    /// Says QUIT (best effort) and closes.
    pub fn quit(mut self) {
        let _ = self.command("QUIT");
    }

    /// The failure for a reply that makes no sense at this point.
    pub fn unexpected(&self, what: &str, reply: &Reply) -> Failure {
        broken(
            &self.target,
            &format!("unexpected reply to {what}"),
            reply.describe(),
        )
    }

    /// The server's address, for logs and messages.
    pub fn target(&self) -> &Target {
        &self.target
    }
}

/// `NNN-text` or `NNN text` (or a bare `NNN`).
fn parse_line(line: &str) -> Option<(u16, char, &str)> {
    let code = line.get(..3)?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&code.as_bytes()[0]) {
        return None;
    }
    let code: u16 = code.parse().ok()?;
    match line.as_bytes().get(3) {
        None => Some((code, ' ', "")),
        Some(b' ') => Some((code, ' ', &line[4..])),
        Some(b'-') => Some((code, '-', &line[4..])),
        Some(_) => None,
    }
}

fn connect_tcp(host: &str, port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                s.set_read_timeout(Some(timeout))?;
                s.set_write_timeout(Some(timeout))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let s = UnixStream::connect(path)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    Ok(s)
}

/// RFC 3461 xtext, for XCLIENT attribute values (Postfix XCLIENT_README).
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn reply_lines_parse() {
        assert_eq!(parse_line("250-PIPELINING"), Some((250, '-', "PIPELINING")));
        assert_eq!(parse_line("550 5.1.1 no"), Some((550, ' ', "5.1.1 no")));
        assert_eq!(parse_line("250"), Some((250, ' ', "")));
        assert_eq!(parse_line("hello"), None);
        assert_eq!(parse_line("650 x"), None);
        assert_eq!(xtext("a b+c=d"), "a+20b+2Bc+3Dd");
    }

    /// A scripted server on loopback: sends each reply after reading one line.
    fn server(script: &'static [&'static str]) -> (u16, std::thread::JoinHandle<Vec<String>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let h = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            let mut seen = Vec::new();
            w.write_all(b"220 hi\r\n").unwrap();
            for reply in script {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                seen.push(line.trim_end().to_string());
                w.write_all(reply.as_bytes()).unwrap();
            }
            seen
        });
        (port, h)
    }

    fn opts() -> Options {
        Options {
            timeout: Duration::from_secs(5),
            lmtp: false,
            helo: "me.example".into(),
            tls: Tls::Off,
        }
    }

    #[test]
    fn multi_line_ehlo_and_a_refusal() {
        let (port, h) = server(&[
            "250-x.example\r\n250-SIZE 100\r\n250 XCLIENT NAME ADDR\r\n",
            "550 5.1.1 no such user\r\n",
        ]);
        let mut c = Client::connect(&Target::Tcp("127.0.0.1".into(), port), &opts()).unwrap();
        assert_eq!(c.keyword("XCLIENT"), Some("NAME ADDR"));
        assert_eq!(c.keyword("SIZE"), Some("100"));
        let r = c.command("RCPT TO:<x@y>").unwrap();
        assert_eq!(r.failure(), Some(Failure::Permanent("5.1.1 no such user".into())));
        drop(c);
        assert_eq!(h.join().unwrap(), vec!["EHLO me.example", "RCPT TO:<x@y>"]);
    }

    #[test]
    fn silence_is_a_timeout_and_garbage_is_broken() {
        let (port, _h) = server(&["250 ok\r\n", "garbage\r\n"]);
        let mut o = opts();
        o.timeout = Duration::from_millis(300);
        let mut c = Client::connect(&Target::Tcp("127.0.0.1".into(), port), &o).unwrap();
        assert!(matches!(c.command("NOOP"), Err(Failure::Broken(_))));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let r = Client::connect(&Target::Tcp("127.0.0.1".into(), port), &o);
        assert!(matches!(r, Err(Failure::Broken(_))));
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
