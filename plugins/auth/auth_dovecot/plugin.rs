//! auth/auth_dovecot: checks AUTH with Dovecot's authentication server over its
//! auth-client socket (Dovecot's auth protocol 1.2), so a site's IMAP users can send
//! mail. See README.md beside this file.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::auth::encode;
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values};

/// The plugin instance.
pub struct Dovecot {
    socket: PathBuf,
    timeout: Duration,
}

/// `auth/auth_dovecot [socket PATH] [timeout SECONDS]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut socket = PathBuf::from("/run/dovecot/auth-client");
    let mut timeout = Duration::from_secs(30);
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "socket" => socket = PathBuf::from(v),
            "timeout" => {
                let secs: u64 = v
                    .parse()
                    .map_err(|_| format!("timeout must be seconds, not {v:?}"))?;
                timeout = Duration::from_secs(secs.max(1));
            }
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: socket, timeout)"
                )));
            }
        }
    }
    Ok(Box::new(Dovecot { socket, timeout }))
}

const NAME: &str = "auth_dovecot";

/// What Dovecot answered.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// Accepted; `user=` is the name Dovecot knows the user by (after its
    /// `auth_username_format`, e.g. `%Ln`), when it said.
    Ok {
        user: Option<String>,
    },
    Fail {
        temporary: bool,
        reason: Option<String>,
    },
}

impl Plugin for Dovecot {
    /// Only the clear-text mechanisms: Dovecot verifies the password we pass on.
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::AuthPlain, Hook::AuthLogin]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Auth {
            user,
            password: Some(password),
            ..
        } = args
        else {
            return Outcome::declined();
        };
        let request = Request {
            user,
            password,
            local_ip: &cx.conn.local_ip,
            remote_ip: &cx.conn.remote_ip,
            secured: cx.conn.tls.is_some(),
        };
        match self.ask(&request) {
            Ok(Answer::Ok { user: canonical }) => {
                cx.log(Level::Info, "pass: dovecot accepted");
                // The session records this name (Authentication-Results, notes, logs).
                if let Some(name) = canonical.filter(|n| crate::auth::valid_name(n)) {
                    if name != user {
                        cx.log(Level::Info, format_args!("dovecot knows {user} as {name}"));
                    }
                    cx.conn.notes.insert("authuser".into(), name);
                }
                Outcome::with(Verdict::Ok, NAME)
            }
            Ok(Answer::Fail {
                temporary: true,
                reason,
            }) => {
                cx.log(
                    Level::Warn,
                    format_args!("dovecot temporary failure: {}", reason.unwrap_or_default()),
                );
                Outcome::with(Verdict::DenySoft, format!("{NAME} - temporary failure"))
            }
            Ok(Answer::Fail { reason, .. }) => {
                cx.log(
                    Level::Info,
                    format_args!("fail: {}", reason.as_deref().unwrap_or("refused")),
                );
                Outcome::with(Verdict::Declined, format!("{NAME} - authentication failed"))
            }
            Err(e) => {
                cx.log(Level::Error, format_args!("{}: {e}", self.socket.display()));
                Outcome::with(
                    Verdict::DenySoft,
                    format!("{NAME} - authentication service unavailable"),
                )
            }
        }
    }
}

/// One PLAIN authentication to pass on.
struct Request<'a> {
    user: &'a str,
    password: &'a str,
    local_ip: &'a str,
    remote_ip: &'a str,
    secured: bool,
}

/// The longest line accepted from Dovecot.
const MAX_LINE: u64 = 64 * 1024;

impl Dovecot {
    /// Handshake (`VERSION`, `CPID`; the server lists its mechanisms up to `DONE`), then one
    /// `AUTH` with the PLAIN response, then `OK` or `FAIL`. The timeout bounds the reading
    /// of the whole exchange: a server that keeps sending lines without finishing its
    /// handshake, or answers other requests and never ours, cannot hold the session.
    fn ask(&self, r: &Request<'_>) -> std::io::Result<Answer> {
        let deadline = Instant::now() + self.timeout;
        let stream = UnixStream::connect(&self.socket)?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        let mut writer = stream.try_clone()?;
        let mut reader = BufReader::new(stream);
        writer.write_all(format!("VERSION\t1\t2\nCPID\t{}\n", std::process::id()).as_bytes())?;
        if !offers_plain(&mut reader, deadline)? {
            return Err(std::io::Error::other(
                "Dovecot does not offer PLAIN (auth_mechanisms)",
            ));
        }
        writer.write_all(auth_line(r).as_bytes())?;
        loop {
            let line = read_line(&mut reader, deadline)?;
            let mut fields = line.split('\t');
            let (kind, id) = (fields.next(), fields.next());
            if id == Some("1") {
                return Ok(answer(kind, &fields.collect::<Vec<_>>(), &line));
            }
        }
    }
}

/// Reads the server's handshake up to `DONE`: does it offer PLAIN?
fn offers_plain(reader: &mut BufReader<UnixStream>, deadline: Instant) -> std::io::Result<bool> {
    let mut plain = false;
    loop {
        let line = read_line(reader, deadline)?;
        let mut fields = line.split('\t');
        match fields.next() {
            Some("VERSION") if fields.next() != Some("1") => {
                return Err(std::io::Error::other(format!("unsupported protocol: {line}")));
            }
            Some("MECH") if fields.next() == Some("PLAIN") => plain = true,
            Some("DONE") => return Ok(plain),
            _ => {}
        }
    }
}

/// `AUTH 1 PLAIN ...` with the client's facts and the PLAIN response.
fn auth_line(r: &Request<'_>) -> String {
    let mut blob = Vec::with_capacity(r.user.len() + r.password.len() + 2);
    blob.push(0);
    blob.extend_from_slice(r.user.as_bytes());
    blob.push(0);
    blob.extend_from_slice(r.password.as_bytes());
    let mut auth = format!(
        "AUTH\t1\tPLAIN\tservice=smtp\tnologin\tlip={}\trip={}",
        escape(r.local_ip),
        escape(r.remote_ip)
    );
    if r.secured {
        auth.push_str("\tsecured");
    }
    auth.push_str(&format!("\tresp={}\n", encode(&blob)));
    auth
}

/// The answer to our `AUTH` request: `OK` (with the user name Dovecot settled on) or
/// `FAIL`.
fn answer(kind: Option<&str>, params: &[&str], line: &str) -> Answer {
    match kind {
        Some("OK") => Answer::Ok {
            user: params.iter().find_map(|p| p.strip_prefix("user=")).map(unescape),
        },
        Some("FAIL") => Answer::Fail {
            temporary: params.iter().any(|p| *p == "temp" || p.starts_with("code=temp")),
            reason: params
                .iter()
                .find_map(|p| p.strip_prefix("reason="))
                .map(str::to_string),
        },
        // PLAIN with an initial response never needs a continuation.
        _ => Answer::Fail {
            temporary: false,
            reason: Some(format!("unexpected answer: {line}")),
        },
    }
}

/// One line from Dovecot, bounded in size and by the exchange's deadline; end of input
/// is an error.
fn read_line(reader: &mut BufReader<UnixStream>, deadline: Instant) -> std::io::Result<String> {
    let timed_out = || std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within the timeout");
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(timed_out());
    }
    reader.get_ref().set_read_timeout(Some(left))?;
    let mut line = String::new();
    // A socket read timeout shows as EAGAIN.
    let n = match reader.by_ref().take(MAX_LINE).read_line(&mut line) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Err(timed_out()),
        read => read?,
    };
    if n == 0 || !line.ends_with('\n') {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
    }
    line.pop();
    Ok(line)
}

/// Undoes [`escape`] (Dovecot's `str_tabunescape`), for values Dovecot sends.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\x01' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('1') => out.push('\x01'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// Dovecot's escaping for parameter values: `\x01` + `1`/`t`/`n` for 0x01, TAB, LF.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\x01' => out.push_str("\x011"),
            '\t' => out.push_str("\x01t"),
            '\n' => out.push_str("\x01n"),
            '\r' => out.push_str("\x01r"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;
    use std::sync::mpsc;
    use std::time::Instant;

    use super::*;

    /// A server on a Unix socket that sends `first`, then `each` every 100 ms until the
    /// client goes away.
    fn dripping(first: &'static str, each: &'static str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth-client");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let _ = s.write_all(first.as_bytes());
            while s.write_all(each.as_bytes()).is_ok() {
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        (dir, path)
    }

    /// Asks within a thread; the answer, or None if it took longer than `limit`.
    fn ask_within(socket: PathBuf, limit: Duration) -> Option<(std::io::Result<Answer>, Duration)> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let d = Dovecot {
                socket,
                timeout: Duration::from_secs(1),
            };
            let request = Request {
                user: "good@example.com",
                password: "good_pass",
                local_ip: "127.0.0.1",
                remote_ip: "192.0.2.1",
                secured: false,
            };
            let start = Instant::now();
            let answer = d.ask(&request);
            let _ = tx.send((answer, start.elapsed()));
        });
        rx.recv_timeout(limit).ok()
    }

    /// A server that keeps sending handshake lines and never says DONE, or keeps
    /// answering other requests and never ours, each line well within the timeout: the
    /// timeout bounds the whole exchange, not each line (it once waited for ever).
    #[test]
    fn a_server_that_never_finishes_is_cut_at_the_timeout() {
        for (first, each) in [
            ("VERSION\t1\t2\n", "MECH\tLOGIN\tplaintext\n"),
            (
                "VERSION\t1\t2\nMECH\tPLAIN\nDONE\n",
                "FAIL\t7\treason=not yours\n",
            ),
        ] {
            let (_dir, socket) = dripping(first, each);
            let Some((answer, took)) = ask_within(socket, Duration::from_secs(10)) else {
                panic!("still waiting after 10 s: {each:?}");
            };
            let e = answer.expect_err("no answer was given");
            assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
            assert!(took < Duration::from_secs(3), "{took:?}");
        }
    }
}
