//! Message data and header integrity through the binary: the DATA reader's edge cases,
//! the headers we write, the memory a header block costs, and the whole-message deadline.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::clients::delivering_config;
use crate::support::{TestDir, binary_command, spawn_inetd};

/// A client of the binary on a socket.
struct Client {
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn start(dir: &TestDir) -> Client {
        let (child, stream) = spawn_inetd(binary_command(dir));
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut c = Client {
            child,
            reader,
            writer: stream,
        };
        c.expect("220");
        c
    }

    /// Reads one whole reply and checks its code; returns its last line.
    fn expect(&mut self, code: &str) -> String {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line;
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).unwrap();
    }

    /// HELO (or EHLO) with `name`, one sender, one recipient, DATA.
    fn open_data(&mut self, greeting: &[u8]) {
        self.send(greeting);
        self.send(b"\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n");
        for code in ["250", "250", "250", "354"] {
            self.expect(code);
        }
    }

    /// The process's peak resident set (VmHWM) in kB.
    fn peak_rss_kb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap()
    }

    fn quit(mut self) {
        let _ = self.writer.write_all(b"QUIT\r\n");
        let _ = self.writer.shutdown(Shutdown::Write);
        let _ = self.reader.read_to_end(&mut Vec::new());
        let _ = self.child.wait();
    }
}

fn spool_is_empty(dir: &TestDir) -> bool {
    std::fs::read_dir(dir.spool()).unwrap().count() == 0
}

/// A line of 65535 bytes and a CR: the CR is the last byte of a full 64 KiB read buffer,
/// so it reaches the DATA reader at the end of one piece and its fate shows in the next.
fn boundary_line(after_cr: &[u8]) -> Vec<u8> {
    let mut line = vec![b'a'; 64 * 1024 - 1];
    line.push(b'\r');
    line.extend_from_slice(after_cr);
    line
}

/// A bare CR exactly on the 64 KiB boundary is refused like every other bare CR (it
/// used to be dropped when the next piece ended with CRLF).
#[test]
fn bare_cr_on_the_read_boundary_is_refused() {
    for after in [&b"X\r\n"[..], b"\r\n"] {
        let dir = TestDir::new(&delivering_config());
        let mut c = Client::start(&dir);
        c.open_data(b"HELO c.example");
        c.send(b"Subject: boundary\r\n\r\n");
        c.send(&boundary_line(after));
        c.send(b"more\r\n.\r\n");
        let reply = c.expect("421");
        assert!(reply.starts_with("421 4.5.0 "), "{reply}");
        c.quit();
        assert_eq!(dir.messages().len(), 0, "after CR: {after:?}");
        assert!(spool_is_empty(&dir));
    }
    // The CR followed by its LF in the next piece is an ordinary line end.
    let dir = TestDir::new(&delivering_config());
    let mut c = Client::start(&dir);
    c.open_data(b"HELO c.example");
    c.send(b"Subject: boundary\r\n\r\n");
    c.send(&boundary_line(b"\nnext\r\n.\r\n"));
    c.expect("250");
    c.quit();
    let stored = dir.only_message();
    assert!(stored.ends_with(b"aaaa\nnext\n"), "line end lost at the boundary");
}

/// The published SMTP smuggling payloads placed where the 64 KiB read buffer cuts a long
/// line (just before, on and just after the cut) and sent in one write or a byte at a
/// time: none ends the message early, so the commands after it are never run; the
/// message is refused (`421` for a bare CR or LF, `554` for a NUL) and nothing is queued.
#[test]
fn smuggling_payloads_on_the_read_boundary_never_split_a_message() {
    let payloads: [&[u8]; 8] = [
        b"\n.\n",
        b"\n.\r\n",
        b"\r.\r",
        b"\r\n.\r",
        b".\r\r\n",
        b"\r.\r\n",
        b"\r\n\0.\r\n",
        b"\r\n.\r\0\n",
    ];
    let smuggled = b"MAIL FROM:<smuggled@evil.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n\
                     Subject: smuggled\r\n\r\nevil\r\n";
    let dir = TestDir::new(&delivering_config());
    for payload in payloads {
        for before_cut in [2, 1, 0] {
            for bytewise in [false, true] {
                let mut c = Client::start(&dir);
                c.open_data(b"HELO c.example");
                c.send(b"Subject: x\r\n\r\n");
                let mut line = vec![b'a'; 64 * 1024 - before_cut];
                line.extend_from_slice(payload);
                line.extend_from_slice(smuggled);
                line.extend_from_slice(b"tail\r\n.\r\nQUIT\r\n");
                let cut = 64 * 1024 - before_cut;
                if bytewise {
                    c.send(&line[..cut - 2]);
                    for b in &line[cut - 2..cut + payload.len() + 2] {
                        let _ = c.writer.write_all(std::slice::from_ref(b));
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    let _ = c.writer.write_all(&line[cut + payload.len() + 2..]);
                } else {
                    let _ = c.writer.write_all(&line);
                }
                let reply = c.expect("");
                let case = format!("{payload:?} {before_cut} bytes before the cut, bytewise {bytewise}");
                assert!(
                    reply.starts_with("421 4.5.0 ") || reply.starts_with("554 5.6.0 "),
                    "{case}: {reply}"
                );
                c.quit();
                assert_eq!(dir.messages().len(), 0, "{case}");
                assert!(spool_is_empty(&dir), "{case}");
            }
        }
    }
}

/// On a piped debug session a bare CR is kept, also on the boundary (it was dropped when
/// the next piece ended with CRLF).
#[test]
fn bare_cr_on_the_read_boundary_is_kept_on_a_pipe() {
    let dir = TestDir::new(&delivering_config());
    let mut child = binary_command(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut input = b"HELO c.example\nMAIL FROM:<a@b.example>\nRCPT TO:<x@example.org>\nDATA\n\
                      Subject: pipe\n\n"
        .to_vec();
    input.extend_from_slice(&boundary_line(b"X\r\n.\nQUIT\n"));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    child.wait().unwrap();
    assert!(out.contains("250 2.0.0 Queued!"), "{out}");
    let stored = dir.only_message();
    assert!(stored.ends_with(b"aaaa\rX\n"), "the bare CR was not kept");
}

/// A header block just under `max_header_size` (1 MiB) made of the smallest fields costs
/// a small multiple of its size, not the ~45x per-field bookkeeping it once did.
#[test]
fn megabyte_header_block_keeps_memory_small() {
    let dir = TestDir::new(&delivering_config());
    let peak = |header: &[u8]| {
        let mut c = Client::start(&dir);
        c.open_data(b"HELO c.example");
        c.send(header);
        c.send(b"\r\nbody\r\n.\r\n");
        c.expect("250");
        let kb = c.peak_rss_kb();
        c.quit();
        kb
    };
    let small = peak(b"Subject: small\r\n");
    // "a:\n" is 3 bytes as counted against max_header_size.
    let big = peak(&b"a:\r\n".repeat(340_000));
    let header_kb = 340_000 * 3 / 1024;
    eprintln!(
        "peak RSS: {small} kB with a one-field header, {big} kB with a {header_kb} kB header \
         of 340000 fields ({:.1}x the header)",
        (big - small) as f64 / header_kb as f64
    );
    assert!(
        big - small < 6 * header_kb,
        "a {header_kb} kB header block cost {} kB",
        big - small
    );
}

/// Hostile HELO names cannot break the Received line: a 16 KB name is cut to keep every
/// line within RFC 5322's 998 characters, and the field still parses with its date.
#[test]
fn huge_helo_name_keeps_received_within_998_characters() {
    let dir = TestDir::new(&delivering_config());
    let mut c = Client::start(&dir);
    let mut ehlo = b"EHLO ".to_vec();
    ehlo.extend(std::iter::repeat_n(b'h', 16 * 1024 - 100));
    ehlo.extend_from_slice(b"(;)");
    c.send(&ehlo);
    c.send(b"\r\n");
    c.expect("250");
    c.send(b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n");
    for code in ["250", "250", "354"] {
        c.expect(code);
    }
    c.send(b"Subject: helo\r\n\r\nbody\r\n.\r\n");
    c.expect("250");
    c.quit();
    let stored = dir.only_message();
    for line in stored.split(|b| *b == b'\n') {
        assert!(line.len() <= 998, "a line of {} characters", line.len());
    }
    let parsed = mail_parser::MessageParser::default()
        .parse_headers(&stored[..])
        .unwrap();
    let received = parsed.received().expect("a Received field that parses");
    assert!(received.date().is_some(), "no date in {received:?}");
}

/// Reads a reply if one arrives within `wait`; `None` if nothing came.
fn reply_within(c: &mut Client, wait: Duration) -> Option<String> {
    c.writer.set_read_timeout(Some(wait)).unwrap();
    let mut line = String::new();
    match c.reader.read_line(&mut line) {
        Ok(0) => Some(String::new()),
        Ok(_) => Some(line),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) => panic!("{e}"),
    }
}

/// Sends `piece` every `every` until a reply comes or `limit` passes; returns the reply
/// and when it came (after the start).
fn trickle(c: &mut Client, piece: &[u8], every: Duration, limit: Duration) -> Option<(String, Duration)> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(reply) = reply_within(c, every) {
            return Some((reply, start.elapsed()));
        }
        if c.writer.write_all(piece).is_err() {
            break;
        }
    }
    reply_within(c, Duration::from_millis(500)).map(|r| (r, start.elapsed()))
}

/// A client that keeps sending whole lines, each well within `timeout`, is cut when the
/// message as a whole has taken `data_deadline` seconds: 421, nothing queued.
#[test]
fn trickling_lines_are_cut_at_the_data_deadline() {
    let mut config = delivering_config();
    config.push(("timeout".into(), "10".into()));
    config.push(("data_deadline".into(), "2".into()));
    config.push(("size_threshold".into(), "0".into()));
    let dir = TestDir::new(&config);
    let mut c = Client::start(&dir);
    c.open_data(b"HELO c.example");
    c.send(b"Subject: slow\r\n\r\n");
    let got = trickle(
        &mut c,
        b"line\r\n",
        Duration::from_millis(200),
        Duration::from_secs(8),
    );
    let (reply, after) = got.expect("no reply while lines kept coming for 8 s");
    assert!(reply.starts_with("421 4.4.2 "), "{reply}");
    assert!(after < Duration::from_secs(6), "cut after {after:?}");
    c.quit();
    assert_eq!(dir.messages().len(), 0);
    assert!(spool_is_empty(&dir));
}

/// A client that sends one byte at a time never finishes a line: `timeout` bounds each
/// line of message data as a whole (as qpsmtpd's alarm per line did), not each read.
#[test]
fn trickling_bytes_are_cut_at_the_line_timeout() {
    let mut config = delivering_config();
    config.push(("timeout".into(), "2".into()));
    let dir = TestDir::new(&config);
    let mut c = Client::start(&dir);
    c.open_data(b"HELO c.example");
    c.send(b"Subject: slow\r\n\r\n");
    let got = trickle(&mut c, b"x", Duration::from_millis(200), Duration::from_secs(8));
    let (reply, after) = got.expect("no reply while bytes kept coming for 8 s");
    assert!(reply.starts_with("421 4.4.2 "), "{reply}");
    assert!(after < Duration::from_secs(6), "cut after {after:?}");
    c.quit();
    assert_eq!(dir.messages().len(), 0);
}
