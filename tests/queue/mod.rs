//! Queue hand-off end to end: the binary over a real socket, real backends (Postfix,
//! Dovecot LMTP, a qmail-queue-compatible program), and the faults the guarantee is about.
//! Every check says what the client was told and that the message exists exactly once or
//! not at all.

mod dovecot;
mod envelope;
mod exim;
mod faults;
pub mod hop;
mod misbehaving;
mod postfix;
mod programs;
mod qmail;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestDir, binary_command};

/// Config lines for a test directory.
pub fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// One SMTP session with the binary, which has a real TCP socket as fd 0 and 1 (as under
/// inetd) and its log in `<dir>/server.log`.
pub struct Talk {
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    log: PathBuf,
}

impl Talk {
    /// Starts a session as the client 192.0.2.7 and reads the greeting.
    pub fn start(dir: &TestDir) -> Talk {
        Talk::start_with(dir, binary_command(dir))
    }

    /// Starts a session with a prepared command.
    pub fn start_with(dir: &TestDir, mut cmd: Command) -> Talk {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let fd0: OwnedFd = server.try_clone().unwrap().into();
        let fd1: OwnedFd = server.into();
        let n = std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
        let log = dir.path().join(format!("server.{n}.log"));
        let child = cmd
            .args(["--remote-ip", "192.0.2.7"])
            .stdin(Stdio::from(fd0))
            .stdout(Stdio::from(fd1))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        client.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut talk = Talk {
            child,
            reader: BufReader::new(client.try_clone().unwrap()),
            writer: client,
            log,
        };
        let greeting = talk.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        talk
    }

    /// Reads one reply (all its lines, joined with `\n`).
    pub fn reply(&mut self) -> String {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line).unwrap_or(0) == 0 {
                lines.push("<closed>".to_string());
                break;
            }
            let line = line.trim_end().to_string();
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line);
            if last {
                break;
            }
        }
        lines.join("\n")
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.writer.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }

    /// Sends raw bytes (a command line with its line end, or several) and returns the
    /// next reply.
    pub fn raw(&mut self, bytes: &[u8]) -> String {
        self.writer.write_all(bytes).unwrap();
        self.reply()
    }

    /// EHLO, MAIL and the RCPTs; returns the RCPT replies.
    pub fn envelope(&mut self, from: &str, rcpts: &[&str]) -> Vec<String> {
        assert!(self.cmd("EHLO client.example").starts_with("250"));
        let r = self.cmd(&format!("MAIL FROM:<{from}>"));
        assert!(r.starts_with("250"), "{r}");
        rcpts
            .iter()
            .map(|r| self.cmd(&format!("RCPT TO:<{r}>")))
            .collect()
    }

    /// DATA, the message (LF lines become CRLF, dots are stuffed), the final dot; the reply.
    pub fn data(&mut self, message: &[u8]) -> String {
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "{r}");
        self.writer.write_all(&wire(message)).unwrap();
        self.writer.write_all(b".\r\n").unwrap();
        self.reply()
    }

    /// A second transaction on the same connection: MAIL, RCPTs, DATA; the final reply.
    pub fn data_after_rset(&mut self, rcpts: &[&str], message: &[u8]) -> String {
        let r = self.cmd("MAIL FROM:<sender@example.net>");
        assert!(r.starts_with("250"), "{r}");
        for rcpt in rcpts {
            let r = self.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert!(r.starts_with("250"), "{r}");
        }
        self.data(message)
    }

    /// DATA and the message, then the client hangs up right after the final dot without
    /// reading the reply. Returns the server's log.
    pub fn data_and_vanish(mut self, message: &[u8]) -> String {
        let r = self.cmd("DATA");
        assert!(r.starts_with("354"), "{r}");
        self.writer.write_all(&wire(message)).unwrap();
        // The final dot and the close must arrive together, as when a client gives up
        // while we are busy: TCP_CORK holds the dot back until shutdown() adds the FIN
        // to the same segment (Python, because nix has no TCP_CORK).
        let python = crate::support::tool("python3").expect("python3");
        let script = "import socket\n\
                      s = socket.socket(fileno=0)\n\
                      s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)\n\
                      s.sendall(b'.\\r\\n')\n\
                      s.shutdown(socket.SHUT_RDWR)\n";
        let sock: OwnedFd = self.writer.try_clone().unwrap().into();
        let ok = Command::new(python)
            .arg("-c")
            .arg(script)
            .stdin(Stdio::from(sock))
            .status()
            .unwrap()
            .success();
        assert!(ok, "the vanishing client failed");
        let _ = self.writer.shutdown(Shutdown::Both);
        self.wait()
    }

    /// QUIT, then the server's log.
    pub fn quit(mut self) -> String {
        let r = self.cmd("QUIT");
        assert!(r.starts_with("221"), "{r}");
        self.wait()
    }

    fn wait(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The message as a client sends it: CRLF line ends, leading dots doubled.
pub fn wire(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in message.split_inclusive(|b| *b == b'\n') {
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        if text.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(text);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message that exercises the transparency rules: leading dots, a lone dot, a line of
/// two dots, trailing blanks, 8-bit text, an empty last line.
pub fn tricky_message(subject: &str) -> Vec<u8> {
    format!(
        "From: Alice <sender@example.net>\nTo: rcpt@example.org\nDate: Sun, 22 Nov 2026 04:00:00 +0000\n\
         Subject: {subject}\nMessage-Id: <{subject}@client.example>\n\n\
         first line\n.\n..\n.leading dot\ntrailing blanks   \nGrüße, 8 bit\n\nlast\n"
    )
    .into_bytes()
}

/// Everything after our own trace headers in a delivered file: must equal the client's
/// message exactly (LF line ends, dots unstuffed).
pub fn after_our_headers(file: &[u8]) -> &[u8] {
    let text = file;
    let start = find(text, b"\nFrom: Alice").map(|i| i + 1).unwrap_or(0);
    &text[start..]
}

/// Position of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Files below `dir` (recursively), sorted.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Waits until `f` holds (up to `secs`).
pub fn wait_for(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Are we root (needed for private Postfix and Dovecot instances and tmpfs mounts)?
/// When not, the test is skipped, unless everything is required (CI runs as root).
pub fn root_or_skip(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !crate::support::required(),
        "{what} needs root (QPSMTPD_RS_REQUIRE_ALL=1)"
    );
    eprintln!("SKIPPED: {what} needs root");
    false
}

/// Reads a file, or empty.
pub fn read(p: &Path) -> Vec<u8> {
    let mut v = Vec::new();
    if let Ok(mut f) = std::fs::File::open(p) {
        let _ = f.read_to_end(&mut v);
    }
    v
}
