//! The request: one `key value` line per fact, ended by an empty line.
//!
//! Values are one line each. A newline in a value is written `\n`, a carriage return `\r`,
//! a backslash `\\`, other ASCII control characters (except tab) `\xNN`, and the
//! characters some languages also split lines at (C1 controls such as U+0085 NEXT LINE,
//! U+2028, U+2029: Python's `splitlines`, JavaScript) `\uNNNN`; the same escapes are
//! understood in the values a plugin sends back. Ordinary values (addresses, host names,
//! header text) are unchanged.

use std::io::{self, Write};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::address::Address;
use crate::plugin::{Args, Context, Hook};
use crate::transaction::Params;

/// Hooks that get `message_file`: the complete message exists and may still be refused
/// or must be handed over.
pub const MESSAGE_HOOKS: [Hook; 3] = [Hook::DataPost, Hook::QueuePre, Hook::Queue];

/// A request being built.
#[derive(Debug, Default)]
pub struct Request {
    buf: Vec<u8>,
}

impl Request {
    /// Adds `key value` (the value escaped).
    pub fn fact(&mut self, key: &str, value: &str) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b' ');
        escape_into(&mut self.buf, value, false);
        self.buf.push(b'\n');
    }

    /// Adds `key name value`, the name escaped as one word.
    pub fn named(&mut self, key: &str, name: &str, value: &str) {
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.push(b' ');
        escape_into(&mut self.buf, name, true);
        self.buf.push(b' ');
        escape_into(&mut self.buf, value, false);
        self.buf.push(b'\n');
    }

    /// Adds `request_id N` right after the `hook` line (co-processes: the answer must
    /// carry it).
    pub fn with_id(mut self, id: u64) -> Request {
        let at = self.buf.iter().position(|b| *b == b'\n').map_or(0, |p| p + 1);
        let line = format!("request_id {id}\n");
        self.buf.splice(at..at, line.into_bytes());
        self
    }

    /// The request with its final empty line.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.push(b'\n');
        self.buf
    }
}

/// Builds the request for one hook call. `message` is the message file, when the hook
/// gets one.
pub fn request(hook: Hook, cx: &Context<'_>, args: Args<'_>, message: Option<(&Path, u64)>) -> Request {
    let mut r = Request::default();
    r.fact("hook", hook.name());
    connection(&mut r, cx);
    transaction(&mut r, cx);
    if let Some((path, size)) = message {
        r.fact("message_file", &path.to_string_lossy());
        r.fact("message_size", &size.to_string());
    }
    arguments(&mut r, args);
    r
}

fn connection(r: &mut Request, cx: &Context<'_>) {
    let c = &*cx.conn;
    r.fact("connection_id", &c.id);
    r.fact("me", cx.me());
    r.fact("remote_ip", &c.remote_ip);
    if let Some(port) = c.remote_port {
        r.fact("remote_port", &port.to_string());
    }
    r.fact("remote_host", &c.remote_host);
    r.fact("remote_info", &c.remote_info);
    r.fact("local_ip", &c.local_ip);
    if let Some(port) = c.local_port {
        r.fact("local_port", &port.to_string());
    }
    r.fact("local_host", &c.local_host);
    r.fact("relay_client", if c.relay_client { "1" } else { "0" });
    if let Some(g) = &c.hello {
        r.fact("helo_host", &g.host);
        r.fact("helo_verb", if g.esmtp { "EHLO" } else { "HELO" });
    }
    if let Some(tls) = &c.tls {
        r.fact("tls_version", &tls.version);
        r.fact("tls_cipher", &tls.cipher);
    }
    if let Some(auth) = &c.auth {
        r.fact("auth_user", &auth.user);
        r.fact("auth_mechanism", &auth.mechanism);
    }
    for (name, value) in &c.notes {
        r.named("note", name, value);
    }
}

fn transaction(r: &mut Request, cx: &Context<'_>) {
    let t = &*cx.txn;
    r.fact("transaction_id", &t.id);
    if let Some(sender) = &t.sender {
        r.fact("sender", &sender.address());
        params(r, "mail_param", &t.mail_params);
    }
    for rcpt in &t.recipients {
        r.fact("recipient", &rcpt.address());
    }
    for (name, value) in &t.notes {
        r.named("txn_note", name, value);
    }
    for field in t.header.fields() {
        let value: String = field
            .value()
            .chars()
            .filter(|c| *c != '\n' && *c != '\r')
            .collect();
        r.fact("header", &format!("{}: {value}", field.name));
    }
}

fn params(r: &mut Request, key: &str, params: &Params) {
    for (k, v) in params {
        match v {
            Some(v) => r.fact(key, &format!("{k}={v}")),
            None => r.fact(key, k),
        }
    }
}

fn address(r: &mut Request, addr: &Address) {
    r.fact("address", &addr.address());
}

fn arguments(r: &mut Request, args: Args<'_>) {
    match args {
        Args::None => {}
        Args::Hello { host, extra } => {
            r.fact("host", host);
            for word in extra {
                r.fact("extra", word);
            }
        }
        Args::Parse { line } => r.fact("line", line),
        Args::PreAddress { addr, params: p } => {
            r.fact("address", addr);
            params(r, "param", p);
        }
        Args::Address { addr, params: p } => {
            address(r, addr);
            params(r, "param", p);
        }
        Args::Vrfy { arg } => r.fact("argument", arg),
        Args::Help { topic } => {
            if let Some(t) = topic {
                r.fact("topic", t);
            }
        }
        Args::Unrecognized { cmd, rest } => {
            r.fact("command", cmd);
            r.fact("rest", rest);
        }
        Args::Decision { plugin, verdict, msg } => {
            r.fact("decision_plugin", plugin);
            r.fact("decision_verdict", verdict.name());
            for line in msg {
                r.fact("decision_message", line);
            }
        }
        Args::Config { name } => r.fact("config_name", name),
        Args::ReceivedLine { smtp, auth, tls } => {
            r.fact("received_protocol", smtp);
            r.fact("received_auth", auth);
            r.fact("received_tls", tls);
        }
        Args::Auth {
            mechanism,
            user,
            password,
            digest,
            ticket,
        } => login(r, mechanism, user, [password, digest, ticket]),
    }
}

/// The `auth-*` hooks' facts: the mechanism, the user and the response parts the
/// mechanism has (a password, a CRAM-MD5 digest, a ticket).
fn login(r: &mut Request, mechanism: &str, user: &str, secrets: [Option<&str>; 3]) {
    r.fact("login_mechanism", mechanism);
    r.fact("login_user", user);
    let keys = ["login_password", "login_digest", "login_ticket"];
    for (key, value) in keys.into_iter().zip(secrets) {
        if let Some(v) = value {
            r.fact(key, v);
        }
    }
}

/// Writes the message as it would be queued (header as edited so far, then the body)
/// into a temporary file beside the body's spool file, readable only by our user. The
/// file is removed when the returned handle is dropped, after the call.
pub fn message_file(cx: &mut Context<'_>) -> io::Result<(NamedTempFile, u64)> {
    let Some(body) = cx.txn.body.as_mut() else {
        return Err(io::Error::other("no message in this transaction"));
    };
    let dir = body
        .path()?
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| io::Error::other("spool file has no directory"))?;
    let mut file = tempfile::Builder::new()
        .prefix("qpsmtpd-rs.message.")
        .tempfile_in(dir)?;
    let size = {
        let mut out = io::BufWriter::with_capacity(64 * 1024, file.as_file_mut());
        let size = cx.txn.write_message(&mut out)?;
        out.flush()?;
        size
    };
    Ok((file, size))
}

/// Appends `s` escaped; `word` also escapes blanks (for names).
pub fn escape_into(out: &mut Vec<u8>, s: &str, word: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            ' ' | '\t' if word => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii_control() && c != '\t' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
}

/// Undoes [`escape_into`]; an unknown escape is kept as written.
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('u') => {
                let hex: String = chars.clone().skip(1).take(4).collect();
                let four = hex.len() == 4 && hex.chars().all(|c| c.is_ascii_hexdigit());
                match u32::from_str_radix(&hex, 16)
                    .ok()
                    .filter(|_| four)
                    .and_then(char::from_u32)
                {
                    Some(c) => {
                        out.push(c);
                        for _ in 0..4 {
                            chars.next();
                        }
                    }
                    None => {
                        out.push('\\');
                        continue;
                    }
                }
            }
            Some('x') => {
                let hex: String = chars.clone().skip(1).take(2).collect();
                match u8::from_str_radix(&hex, 16) {
                    Ok(b) if hex.len() == 2 && b.is_ascii() => {
                        out.push(b as char);
                        chars.next();
                        chars.next();
                    }
                    _ => {
                        out.push('\\');
                        continue;
                    }
                }
            }
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars.next();
    }
    out
}

#[cfg(test)]
mod tests;
