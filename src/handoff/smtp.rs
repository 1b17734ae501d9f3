//! A blocking SMTP and LMTP client for the queue plugins (RFC 5321, RFC 2033).
//!
//! No pipelining: one command, one reply, so every answer belongs to one command. Each
//! reply, all its lines, must arrive within one `timeout` ([`super::wire`]); replies are
//! bounded (at most 100 lines of 4 KiB). Each command names the codes it can be answered
//! with (RFC 5321 §4.3.2: `250` to MAIL, `250`/`251` to RCPT, `354` to DATA, `250` to the
//! final dot); a 4xx or 5xx is a refusal, and anything else, like an unsolicited reply
//! found before a command, leaves the connection unusable ([`Client::usable`]).

use std::io::{self, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::clean_text;
use super::dot::DotStuffer;
use super::wire::{Broken, Trouble, Wire};

mod options;
mod reply;

pub use options::{Options, Target, Tls};
use reply::parse_line;
pub use reply::{Error, Reply};

const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

/// An open session with a server, greeted and ready for MAIL.
pub struct Client {
    wire: Wire,
    target: Target,
    timeout: Duration,
    /// False once the connection broke, was refused with `421`, or answered out of
    /// protocol: it must not carry another command.
    usable: bool,
    /// EHLO/LHLO keywords, upper-cased, with their parameters.
    pub capabilities: Vec<String>,
    /// Did STARTTLS succeed?
    pub encrypted: bool,
    /// The refusal of STARTTLS under `tls may`, after which the session went on in
    /// clear text (for the log).
    pub starttls_refused: Option<Reply>,
    /// The greeting's reply.
    pub greeting: Reply,
}

impl Client {
    /// Connects, reads the greeting, says EHLO/LHLO and does STARTTLS per policy.
    pub fn connect(target: &Target, opts: &Options) -> Result<Client, Error> {
        let name = target.to_string();
        let wire = match target {
            Target::Tcp(host, port) => Wire::tcp(host, *port, opts.timeout, &name)?,
            Target::Unix(path) => Wire::unix(path, opts.timeout, &name)?,
        };
        let mut client = Client {
            wire,
            target: target.clone(),
            timeout: opts.timeout,
            usable: true,
            capabilities: Vec::new(),
            encrypted: false,
            starttls_refused: None,
            greeting: Reply {
                code: 0,
                lines: Vec::new(),
            },
        };
        let greeting = client.read_reply()?;
        client.greeting = client.judge("the greeting", greeting, &[220])?;
        client.hello(opts)?;
        match &opts.tls {
            Tls::Off => {}
            Tls::May if !client.offers("STARTTLS") => {}
            Tls::May => match client.starttls(opts, None) {
                // RFC 3207 §4: a refused STARTTLS leaves the session as it was; TLS is
                // only wished for, so the session goes on in clear text.
                Err(Error::Refused(r)) if client.usable() => client.starttls_refused = Some(r),
                done => done?,
            },
            Tls::Verify { .. } if !client.offers("STARTTLS") => {
                return Err(client.broken(Trouble::Tls, "STARTTLS required but not offered"));
            }
            Tls::Verify { ca_file, name } => client.starttls(opts, Some((ca_file, name)))?,
        }
        Ok(client)
    }

    /// Sends EHLO (LHLO) and records the keywords.
    pub fn hello(&mut self, opts: &Options) -> Result<(), Error> {
        let verb = if opts.lmtp { "LHLO" } else { "EHLO" };
        let reply = self.command(&format!("{verb} {}", opts.helo), &[250])?;
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

    fn starttls(&mut self, opts: &Options, verify: Option<(&PathBuf, &String)>) -> Result<(), Error> {
        self.command("STARTTLS", &[220])?;
        // Anything the server sent after its 220 would be plain text spliced into the
        // encrypted session (CVE-2011-0411 in reverse): refuse to go on.
        if self.wire.has_buffered() {
            return Err(self.broken(
                Trouble::Protocol,
                "STARTTLS: server sent data before the handshake",
            ));
        }
        if !self.wire.is_plain_tcp() {
            return Err(self.broken(Trouble::Tls, "STARTTLS: only over TCP"));
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
        .map_err(|e| self.broken(Trouble::Tls, format!("TLS setup: {e}")))?;
        let done = self.wire.start_tls(conn, Instant::now() + self.timeout);
        self.guard(done)?;
        self.encrypted = true;
        self.hello(opts)
    }

    /// Sends one command line and reads its reply; a code in `expect` is success. Input
    /// found waiting before the command is sent was not asked for: the connection is
    /// then unusable and the command is not sent.
    pub fn command(&mut self, line: &str, expect: &[u16]) -> Result<Reply, Error> {
        let verb = line.split(' ').next().unwrap_or("");
        if !self.usable {
            return Err(self.broken(
                Trouble::Closed,
                format!("{verb}: the connection is no longer usable"),
            ));
        }
        let waiting = self.wire.unsolicited();
        self.guard(waiting)?;
        let mut data = Vec::with_capacity(line.len() + 2);
        data.extend_from_slice(line.as_bytes());
        data.extend_from_slice(b"\r\n");
        let sent = self.wire.write_all(&data, Instant::now() + self.timeout);
        self.guard(sent)?;
        let reply = self.read_reply()?;
        self.judge(verb, reply, expect)
    }

    /// Success if the code is one of `expect`; a 4xx/5xx is a refusal; any other code
    /// cannot answer `what` and leaves the connection unusable.
    pub fn judge(&mut self, what: &str, reply: Reply, expect: &[u16]) -> Result<Reply, Error> {
        if expect.contains(&reply.code) {
            return Ok(reply);
        }
        if reply.code == 421 {
            // RFC 5321 §3.8: the server is closing the connection.
            self.usable = false;
        }
        if reply.is_refusal() {
            return Err(Error::Refused(reply));
        }
        Err(self.broken(
            Trouble::Protocol,
            format!("unexpected reply to {what}: {}", reply.describe()),
        ))
    }

    /// Sends the message in DATA form (dot-stuffed, CRLF, the final dot) after a `354`.
    /// `write` produces the message with LF line ends. Each piece written must go out
    /// within the timeout; input found waiting before a piece (the server answered before
    /// the dot) makes the connection unusable.
    pub fn send_message(
        &mut self,
        write: &mut dyn FnMut(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), Error> {
        let mut timed = Timed {
            wire: &mut self.wire,
            timeout: self.timeout,
            failed: None,
        };
        let mut stuffer = DotStuffer::new(&mut timed, true);
        let result = write(&mut stuffer).and_then(|_| stuffer.finish().map(|_| ()));
        let failed = timed.failed.take();
        match (result, failed) {
            (Ok(()), _) => Ok(()),
            (Err(_), Some(b)) => Err(self.fail(b)),
            (Err(e), None) => Err(self.broken(Trouble::Local, format!("reading the message to send: {e}"))),
        }
    }

    /// Reads one (possibly multi-line) reply, all of it within the timeout.
    pub fn read_reply(&mut self) -> Result<Reply, Error> {
        let deadline = Instant::now() + self.timeout;
        let mut lines = Vec::new();
        let mut code = 0;
        loop {
            let raw = self.wire.read_line(deadline, MAX_LINE);
            let raw = self.guard(raw)?;
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let Some((this, sep, text)) = parse_line(line) else {
                return Err(self.broken(
                    Trouble::Protocol,
                    format!("not an SMTP reply: {:?}", clean_text(line)),
                ));
            };
            if code != 0 && this != code {
                return Err(self.broken(Trouble::Protocol, "not an SMTP reply: codes differ between lines"));
            }
            code = this;
            lines.push(text.to_string());
            if sep == ' ' {
                return Ok(Reply { code, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(self.broken(Trouble::Protocol, "reply of too many lines"));
            }
        }
    }

    /// After the last reply a command has: anything more that is already there makes
    /// the connection unusable (a reply too many would answer the next command). The end
    /// of the connection is no reply: the replies stand, and the connection is not used
    /// again.
    pub fn nothing_more(&mut self) -> Result<(), Error> {
        let waiting = self.wire.ended_or_unsolicited();
        if self.guard(waiting)? {
            self.usable = false;
        }
        Ok(())
    }

    /// Says QUIT (best effort, a short wait) and closes.
    pub fn quit(mut self) {
        if !self.usable {
            return;
        }
        self.timeout = self.timeout.min(QUIT_WAIT);
        let _ = self.command("QUIT", &[221]);
    }

    /// Can the connection carry another command?
    pub fn usable(&self) -> bool {
        self.usable
    }

    /// The server's address, for logs and messages.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Marks the connection unusable; returns the error for this breakage.
    fn fail(&mut self, b: Broken) -> Error {
        self.usable = false;
        Error::Broken(b)
    }

    fn guard<T>(&mut self, r: Result<T, Broken>) -> Result<T, Broken> {
        if r.is_err() {
            self.usable = false;
        }
        r
    }

    fn broken(&mut self, trouble: Trouble, what: impl std::fmt::Display) -> Error {
        let b = Broken::new(trouble, format!("{}: {what}", self.target));
        self.fail(b)
    }
}

/// How long QUIT's answer is waited for at the end (its answer changes nothing).
const QUIT_WAIT: Duration = Duration::from_secs(2);

/// The message's bytes to the wire, each piece within the timeout.
struct Timed<'a> {
    wire: &'a mut Wire,
    timeout: Duration,
    failed: Option<Broken>,
}

impl Write for Timed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Nothing may come while the message is sent: a reply now (a 250 pipelined with
        // the 354) answers no dot, and read after the dot it would be taken for the
        // answer to it. Looked for before each piece, the last one (with the dot) too.
        let sent = self
            .wire
            .unsolicited()
            .and_then(|()| self.wire.write_all(buf, Instant::now() + self.timeout));
        match sent {
            Ok(()) => Ok(buf.len()),
            Err(b) => {
                self.failed = Some(b);
                Err(io::Error::other("the next hop connection failed"))
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
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
mod tests;
