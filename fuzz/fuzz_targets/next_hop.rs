//! The next-hop reply reader (queue/smtp-forward and queue/lmtp): the real client over a
//! Unix socket to a server that answers each command with the next reply from the fuzz
//! input, one command at a time. Whatever the server says:
//!
//! - nothing panics, and no exchange waits out its timeout (each reply is sent whole);
//! - every reply taken has a code from 200 to 599, at most 100 lines, and text fit for
//!   our own replies (no control character, at most 400 bytes);
//! - a command succeeds only with a code it asked for; a refusal is a 4xx or 5xx, and
//!   what our client would hear for it (README, "What the client hears from a next hop")
//!   renders as one well-formed reply.
//!
//! Input: a byte of flags (LMTP or SMTP, one or two recipients), then the server's
//! replies, cut where a line's fourth byte is not `-`.

#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::handoff::relay::{dot_code, rcpt_code};
use qpsmtpd_rs::handoff::smtp::{Client, Error, Options, Reply, Target, Tls};

/// The server's replies, one per command (the greeting first).
fn replies(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        cur.extend_from_slice(line);
        if line.get(3) != Some(&b'-') {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Does the reply end with a whole final line (not `NNN-...`, not cut off)?
fn whole(reply: &[u8]) -> bool {
    let Some(body) = reply.strip_suffix(b"\n") else {
        return false;
    };
    let last = body.rsplit(|b| *b == b'\n').next().unwrap_or(body);
    last.get(3) != Some(&b'-')
}

/// Answers one connection: the greeting, then one reply after each command line (after
/// DATA's `3xx`, after the message, as many as follow the dot); when the replies run
/// out, the sending side is closed (so the client never waits for one that will not
/// come) and the rest is read to the end.
fn serve(stream: UnixStream, work: Work) {
    let mut writer = stream.try_clone().expect("clone");
    let mut reader = BufReader::new(stream);
    let mut replies = work.replies.into_iter().peekable();
    let mut line = Vec::new();
    if let Some(greeting) = replies.next() {
        let _ = writer.write_all(&greeting);
    }
    while replies.peek().is_some() {
        line.clear();
        if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
            return;
        }
        let Some(reply) = replies.next() else { break };
        let _ = writer.write_all(&reply);
        // The client sends the message only after a whole 3xx reply (after an unfinished
        // one it waits for the rest, and the end of the replies ends that wait).
        if line.eq_ignore_ascii_case(b"DATA\r\n") && reply.first() == Some(&b'3') && whole(&reply) {
            loop {
                line.clear();
                if reader.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    return;
                }
                if line == b".\r\n" {
                    break;
                }
            }
            for reply in replies.by_ref().take(work.after_dot) {
                let _ = writer.write_all(&reply);
            }
        }
    }
    let _ = writer.shutdown(Shutdown::Write);
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut reader, &mut rest);
}

/// One connection's replies, and how many follow the final dot.
struct Work {
    replies: Vec<Vec<u8>>,
    after_dot: usize,
}

struct Server {
    path: PathBuf,
    work: Mutex<SyncSender<Work>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("qpsmtpd-rs-fuzz-next-hop.{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("socket");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let (tx, rx): (SyncSender<Work>, Receiver<Work>) = sync_channel(1);
        std::thread::spawn(move || {
            for work in rx {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                serve(stream, work);
            }
        });
        Server {
            path,
            work: Mutex::new(tx),
        }
    })
}

fn check_reply(r: &Reply) {
    assert!((200..600).contains(&r.code), "{r:?}");
    assert!(
        !r.lines.is_empty() && r.lines.len() <= 100,
        "{} lines",
        r.lines.len()
    );
    let text = r.text();
    assert!(
        text.len() <= 400 && !text.chars().any(char::is_control),
        "{text:?}"
    );
}

/// What our client hears for a refusal must be one well-formed reply.
fn check_ours(code: u16, r: &Reply) {
    let ours = qpsmtpd_rs::reply::Reply::from_plugin(code, "5.0.0", &[r.text()], "Refused by the next hop");
    let mut out = Vec::new();
    ours.render(&mut out);
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(line.len() <= 512 && line.ends_with(b"\r\n"), "{line:?}");
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        assert_eq!(
            &line[..4],
            format!("{code}{}", sep as char).as_bytes(),
            "{line:?}"
        );
        assert!(
            !line[..line.len() - 2].iter().any(|&b| b < 0x20 && b != b'\t'),
            "{line:?}"
        );
    }
}

/// Checks a command's result: success only with an expected code.
fn judged(r: &Result<Reply, Error>, expect: &[u16], ours: fn(u16) -> u16) -> bool {
    match r {
        Ok(reply) => {
            check_reply(reply);
            assert!(expect.contains(&reply.code), "{reply:?} taken for {expect:?}");
            true
        }
        Err(Error::Refused(reply)) => {
            check_reply(reply);
            assert!(reply.is_refusal(), "{reply:?}");
            check_ours(ours(reply.code), reply);
            false
        }
        Err(Error::Broken(b)) => {
            assert!(!b.detail.chars().any(char::is_control), "{b:?}");
            false
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let [flags, data @ ..] = input else {
        return;
    };
    let lmtp = flags & 1 == 1;
    let recipients = 1 + usize::from(flags & 2 != 0);
    let server = server();
    let work = Work {
        replies: replies(data),
        after_dot: if lmtp { recipients } else { 1 },
    };
    server.work.lock().expect("lock").send(work).expect("server");
    let started = Instant::now();
    let opts = Options {
        timeout: Duration::from_secs(5),
        lmtp,
        helo: "mx.example.com".into(),
        tls: Tls::Off,
    };
    let mut client = match Client::connect(&Target::Unix(server.path.clone()), &opts) {
        Ok(c) => c,
        Err(e) => {
            judged(&Err(e), &[], rcpt_code);
            return;
        }
    };
    check_reply(&client.greeting);
    let _ = client.keyword("SIZE");
    let _ = client.offers("8BITMIME");
    let mut go = judged(
        &client.command("MAIL FROM:<a@example.net>", &[250]),
        &[250],
        rcpt_code,
    );
    for i in 0..recipients {
        if go {
            let r = client.command(&format!("RCPT TO:<r{i}@example.com>"), &[250, 251]);
            go = judged(&r, &[250, 251], rcpt_code);
        }
    }
    if go {
        go = judged(&client.command("DATA", &[354]), &[354], dot_code);
    }
    if go {
        let sent = client.send_message(&mut |w| w.write_all(b"Subject: x\n\n.hello\n"));
        if sent.is_ok() {
            for _ in 0..(if lmtp { recipients } else { 1 }) {
                let r = client.read_reply();
                let ok = matches!(&r, Ok(reply) if reply.code == 250);
                let r = r.and_then(|reply| client.judge("the message", reply, &[250]));
                judged(&r, &[250], dot_code);
                if !ok {
                    break;
                }
            }
            let _ = client.nothing_more();
        }
    }
    client.quit();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "an exchange waited out its timeout"
    );
});
