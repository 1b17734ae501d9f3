//! The transcript format (`tests/transcripts/**/*.smtp`):
//!
//! ```text
//! # A comment.
//! ! env TCPREMOTEIP=192.0.2.7        environment for the session
//! ! config rcpthosts example.org     appends a line to config/<name> ($DIR = the test dir,
//!                                    $ROOT = the repository)
//! ! config morercpthosts.cdb a.example
//!                                    a name ending in .cdb: the lines (`key [value]`) are
//!                                    made into a cdb by tinycdb's `cdb -c -m`
//! ! pipe                             fd 0 is a pipe (debug session), not a socket
//! ! in-process-only                  skip the run through the binary
//! ! differential                     also run through Perl qpsmtpd and compare codes
//! ! dns tests/dns/test.zone [ARGS]    start the test DNS server (tests/dns/testdns.py) with
//!                                    this zone and ARGS for the transcript; every run asks
//!                                    it (`dns_servers`; Perl: RES_NAMESERVERS/RES_OPTIONS)
//! S: 220 *                           an expected reply line; `*` at the end = prefix match
//! C: HELO client.example             a client line, sent with CRLF
//! R: a\n.\r\n                        raw client bytes (\r \n \t \\ \xNN escapes)
//! W: 1.5                              pause (longer than the timeout: in-process, a timeout)
//! X: close                           the client closes its side of the connection
//! ? messages 1                       after the session: number of delivered messages
//! ? message contains TEXT            the last delivered message contains TEXT (escapes as R:)
//! ? message lacks TEXT               ... does not contain TEXT
//! ? message 2 contains TEXT          the second message delivered in the session
//! ? message to x@example.org lacks TEXT
//!                                    the one message whose header has
//!                                    `Delivered-To: x@example.org`
//! ? maildir mail/example.org/x has 1 files in $DIR/mail/example.org/x/new
//! ? spool empty                      no file left in the spool directory
//! ? log contains TEXT                a log line contains TEXT
//! ? log lacks TEXT                   no log line contains TEXT
//! ? dns log contains TEXT            a line of the test DNS server's query log contains
//!                                    TEXT (`udp|tcp CLIENT QNAME QTYPE OUTCOME ANSWERS`)
//! ? dns log lacks TEXT               ... no line contains TEXT
//! ? dns queries N                    the server got N queries during the run
//! ```
//!
//! Consecutive `C:`/`R:` lines are sent in one write (a pipelined group). An `S:` line may
//! end in `[perl NNN]`: Perl qpsmtpd answers NNN there (a deliberate, documented fix).
//! `C:`/`R:` lines before the first `S:` line are sent before the greeting: the client
//! talks early (in-process, the wait before the greeting finds them; otherwise it finds
//! nothing, as with a client that waits for each reply).
//!
//! Every run is also held to two rules that need no line: the spool directory is empty
//! after the session, and unless the transcript says `? messages N`, nothing was delivered
//! (a transcript that delivers must say how many). A `? message ...` check fails when the
//! message it names was not delivered, `lacks` included. "Delivered" means a file in any
//! `new/` directory below the test directory, in the order they were written.

use std::path::{Path, PathBuf};

/// One step of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Bytes the client sends (one pipelined group).
    Send(Vec<u8>),
    /// Reply lines the server must send next.
    Expect(Vec<Expected>),
    /// Client pauses.
    Wait(f64),
    /// Client closes its sending side.
    Close,
}

/// One expected reply line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// The text (without the `*`).
    pub text: String,
    /// Prefix match?
    pub prefix: bool,
    /// What Perl qpsmtpd answers instead, if it differs.
    pub perl_code: Option<String>,
}

impl Expected {
    /// Does a received line match?
    pub fn matches(&self, line: &str) -> bool {
        if self.prefix {
            line.starts_with(&self.text)
        } else {
            line == self.text
        }
    }

    /// The reply code expected.
    pub fn code(&self) -> &str {
        self.text.get(..3).unwrap_or("")
    }
}

/// Which delivered message a `? message` check reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The last one delivered.
    Last,
    /// The n-th delivered (from 1).
    Nth(usize),
    /// The only one with `Delivered-To: <address>` in its header.
    To(String),
}

/// A check after the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Number of delivered messages.
    Messages(usize),
    /// The chosen message contains (`lacks: false`) or lacks this text.
    Message { pick: Pick, lacks: bool, text: Vec<u8> },
    /// Number of files in `<test dir>/<path>/new`.
    Maildir { path: String, count: usize },
    /// The spool directory is empty.
    SpoolEmpty,
    /// Some log line contains this text.
    LogContains(String),
    /// No log line contains this text.
    LogLacks(String),
    /// A line of the test DNS server's query log contains this text.
    DnsLogContains(String),
    /// No line of the test DNS server's query log contains this text.
    DnsLogLacks(String),
    /// The test DNS server got this many queries.
    DnsQueries(usize),
}

/// A parsed transcript.
#[derive(Debug, Clone, Default)]
pub struct Transcript {
    /// File it came from.
    pub path: PathBuf,
    /// `! env` settings.
    pub env: Vec<(String, String)>,
    /// `! config` lines in order: (file name, line).
    pub config: Vec<(String, String)>,
    /// fd 0 is a pipe.
    pub pipe: bool,
    /// Do not run through the binary.
    pub in_process_only: bool,
    /// Also run through Perl qpsmtpd.
    pub differential: bool,
    /// `! dns`: the test DNS server's arguments (zone file first).
    pub dns: Option<Vec<String>>,
    /// The conversation.
    pub steps: Vec<Step>,
    /// Checks after the session.
    pub checks: Vec<Check>,
}

impl Transcript {
    /// Parses a transcript file.
    pub fn load(path: &Path) -> Result<Transcript, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Transcript::parse(&text, path)
    }

    /// Parses transcript text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Transcript, String> {
        let mut t = Transcript {
            path: path.to_path_buf(),
            ..Transcript::default()
        };
        for (i, line) in text.lines().enumerate() {
            t.parse_line(line)
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        }
        Ok(t)
    }

    fn parse_line(&mut self, line: &str) -> Result<(), String> {
        if line.trim().is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let (tag, rest) = line.split_at(line.find(' ').unwrap_or(line.len()));
        let rest = rest.strip_prefix(' ').unwrap_or(rest);
        match tag {
            "C:" => self.send(format!("{rest}\r\n").into_bytes()),
            "R:" => self.send(unescape(rest)?),
            "S:" => {
                let (text, perl_code) = match rest.rfind(" [perl ") {
                    Some(i) if rest.ends_with(']') => {
                        (&rest[..i], Some(rest[i + 7..rest.len() - 1].to_string()))
                    }
                    _ => (rest, None),
                };
                let (text, prefix) = match text.strip_suffix('*') {
                    Some(t) => (t, true),
                    None => (text, false),
                };
                let exp = Expected {
                    text: text.to_string(),
                    prefix,
                    perl_code,
                };
                match self.steps.last_mut() {
                    Some(Step::Expect(v)) => v.push(exp),
                    _ => self.steps.push(Step::Expect(vec![exp])),
                }
            }
            "W:" => self.steps.push(Step::Wait(rest.parse().map_err(|_| "bad wait")?)),
            "X:" => self.steps.push(Step::Close),
            "!" => self.directive(rest)?,
            "?" => self.check(rest)?,
            other => return Err(format!("unknown line tag {other:?}")),
        }
        Ok(())
    }

    fn send(&mut self, bytes: Vec<u8>) {
        match self.steps.last_mut() {
            Some(Step::Send(v)) => v.extend(bytes),
            _ => self.steps.push(Step::Send(bytes)),
        }
    }

    fn directive(&mut self, rest: &str) -> Result<(), String> {
        let (word, arg) = rest.split_once(' ').unwrap_or((rest, ""));
        match word {
            "env" => {
                let (k, v) = arg.split_once('=').ok_or("env needs NAME=VALUE")?;
                self.env.push((k.to_string(), v.to_string()));
            }
            "config" => {
                let (name, value) = arg.split_once(' ').unwrap_or((arg, ""));
                self.config.push((name.to_string(), value.to_string()));
            }
            "pipe" => self.pipe = true,
            "in-process-only" => self.in_process_only = true,
            "differential" => self.differential = true,
            "dns" => self.dns = Some(arg.split_whitespace().map(str::to_string).collect()),
            other => return Err(format!("unknown directive {other:?}")),
        }
        Ok(())
    }

    fn check(&mut self, rest: &str) -> Result<(), String> {
        let check = if let Some(n) = rest.strip_prefix("messages ") {
            Check::Messages(n.trim().parse().map_err(|_| "messages needs a number")?)
        } else if let Some(m) = rest.strip_prefix("message ") {
            message_check(m)?
        } else if let Some(m) = rest.strip_prefix("maildir ") {
            let (path, n) = m.rsplit_once(" has ").ok_or("maildir needs PATH has N")?;
            Check::Maildir {
                path: path.trim().to_string(),
                count: n.trim().parse().map_err(|_| "maildir ... has needs a number")?,
            }
        } else if rest == "spool empty" {
            Check::SpoolEmpty
        } else if let Some(t) = rest.strip_prefix("log contains ") {
            Check::LogContains(t.to_string())
        } else if let Some(t) = rest.strip_prefix("log lacks ") {
            Check::LogLacks(t.to_string())
        } else if let Some(t) = rest.strip_prefix("dns log contains ") {
            Check::DnsLogContains(t.to_string())
        } else if let Some(t) = rest.strip_prefix("dns log lacks ") {
            Check::DnsLogLacks(t.to_string())
        } else if let Some(n) = rest.strip_prefix("dns queries ") {
            Check::DnsQueries(n.trim().parse().map_err(|_| "dns queries needs a number")?)
        } else {
            return Err(format!("unknown check {rest:?}"));
        };
        self.checks.push(check);
        Ok(())
    }

    /// Does the transcript say how many messages are delivered?
    pub fn counts_messages(&self) -> bool {
        self.checks.iter().any(|c| matches!(c, Check::Messages(_)))
    }

    /// All expected lines in order.
    pub fn expected(&self) -> Vec<&Expected> {
        self.steps
            .iter()
            .flat_map(|s| match s {
                Step::Expect(v) => v.iter().collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// All input chunks.
    pub fn chunks(&self) -> Vec<Vec<u8>> {
        self.steps
            .iter()
            .filter_map(|s| match s {
                Step::Send(b) => Some(b.clone()),
                _ => None,
            })
            .collect()
    }
}

/// `[N | to ADDRESS] contains|lacks TEXT` (after `? message `).
fn message_check(m: &str) -> Result<Check, String> {
    let (pick, rest) = if let Some(r) = m.strip_prefix("to ") {
        let (addr, r) = r.split_once(' ').ok_or("message to needs an address")?;
        (Pick::To(addr.to_string()), r)
    } else {
        match m.split_once(' ') {
            Some((n, r)) if n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: usize = n.parse().map_err(|_| "bad message number")?;
                if n == 0 {
                    return Err("messages are numbered from 1".into());
                }
                (Pick::Nth(n), r)
            }
            _ => (Pick::Last, m),
        }
    };
    let (lacks, text) = if let Some(t) = rest.strip_prefix("contains ") {
        (false, t)
    } else if let Some(t) = rest.strip_prefix("lacks ") {
        (true, t)
    } else {
        return Err(format!("message check needs contains or lacks: {rest:?}"));
    };
    Ok(Check::Message {
        pick,
        lacks,
        text: unescape(text)?,
    })
}

/// `\r`, `\n`, `\t`, `\\`, `\xNN`.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'r') => out.push(b'\r'),
            Some(b'n') => out.push(b'\n'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or("short \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad \\x escape")?);
                i += 2;
            }
            _ => return Err("bad escape".into()),
        }
        i += 2;
    }
    Ok(out)
}

/// Every transcript file below a directory, sorted.
pub fn all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "smtp") {
                out.push(p);
            }
        }
    }
    // While working on some transcripts, QPSMTPD_RS_TRANSCRIPTS=TEXT runs only those
    // whose path contains TEXT.
    if let Ok(only) = std::env::var("QPSMTPD_RS_TRANSCRIPTS") {
        out.retain(|p| p.to_string_lossy().contains(&only));
    }
    out.sort();
    out
}
