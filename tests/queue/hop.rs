//! A scripted next hop on loopback (SMTP or LMTP) that can misbehave at every step: say
//! its reply in pieces or a byte at a time, leave a multi-line reply unfinished, answer
//! with a code the command cannot have, add replies nobody asked for, close, or hang.
//! It records what it was sent and when it took a message (a `250` to the final dot,
//! written in full).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the hop does where a reply is due.
#[derive(Clone, Copy, Debug)]
pub enum Act {
    /// Writes these bytes at once (no reply, one reply or several).
    Say(&'static str),
    /// Writes these bytes two at a time, 5 ms apart.
    Split(&'static str),
    /// Writes these bytes one at a time, this many milliseconds apart.
    Drip(&'static str, u64),
    /// Writes the first bytes, then, this many milliseconds later, the second, unasked.
    SayThenLater(&'static str, &'static str, u64),
    /// Writes these bytes, then closes the connection.
    SayThenClose(&'static str),
    /// Closes the connection instead of answering.
    Close,
    /// Never answers (holds the connection for 30 s).
    Hang,
}

/// The hop's behaviour; each field is the act where that reply is due.
#[derive(Clone, Copy, Debug)]
pub struct Script {
    pub greeting: Act,
    pub ehlo: Act,
    pub mail: Act,
    pub rcpt: Act,
    pub data: Act,
    /// After the final dot (LMTP: all the per-recipient replies).
    pub dot: Act,
    pub rset: Act,
    /// Closes after the first line of the message.
    pub close_mid_message: bool,
    /// Stops reading after the first line of the message (and holds the connection 30 s).
    pub stall_mid_message: bool,
    /// The script applies to the first connection only; later ones behave.
    pub first_only: bool,
}

impl Script {
    /// A well-behaved SMTP server (or LMTP: no difference until the dot).
    pub fn good() -> Script {
        Script {
            greeting: Act::Say("220 hop.example ESMTP\r\n"),
            ehlo: Act::Say("250-hop.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
            mail: Act::Say("250 2.1.0 Ok\r\n"),
            rcpt: Act::Say("250 2.1.5 Ok\r\n"),
            data: Act::Say("354 End data with <CR><LF>.<CR><LF>\r\n"),
            dot: Act::Say("250 2.0.0 Ok: queued as HOP1\r\n"),
            rset: Act::Say("250 2.0.0 Ok\r\n"),
            close_mid_message: false,
            stall_mid_message: false,
            first_only: false,
        }
    }

    /// A well-behaved server whose answer to the final dot is `dot`.
    pub fn answering(dot: &'static str) -> Script {
        Script {
            dot: Act::Say(dot),
            ..Script::good()
        }
    }
}

/// A running hop.
pub struct Hop {
    pub port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Hop {
    /// Listens on loopback; each connection is served by `script` in its own thread.
    pub fn start(script: Script) -> Hop {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for (n, conn) in listener.incoming().enumerate() {
                let Ok(conn) = conn else { return };
                let log = log.clone();
                let script = if n > 0 && script.first_only {
                    Script::good()
                } else {
                    script
                };
                std::thread::spawn(move || serve(conn, script, n, &log));
            }
        });
        Hop { port, seen }
    }

    /// Messages the hop took (a `250` to the dot written in full; LMTP: per recipient).
    pub fn confirmed(&self) -> usize {
        self.lines().iter().filter(|l| l.ends_with("CONFIRMED")).count()
    }

    /// What it was sent, `N: line` for connection N.
    pub fn lines(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    /// How many connections it saw.
    pub fn connections(&self) -> usize {
        self.lines().iter().filter(|l| l.ends_with(": CONNECT")).count()
    }
}

/// Performs an act; `false` when the connection is to end.
fn act(w: &mut TcpStream, a: Act) -> bool {
    let pause = |ms| std::thread::sleep(Duration::from_millis(ms));
    match a {
        Act::Say(text) => w.write_all(text.as_bytes()).is_ok(),
        Act::Split(text) => text.as_bytes().chunks(2).all(|c| {
            pause(5);
            w.write_all(c).is_ok()
        }),
        Act::Drip(text, ms) => text.as_bytes().iter().all(|b| {
            pause(ms);
            w.write_all(&[*b]).is_ok()
        }),
        Act::SayThenLater(first, later, ms) => {
            let ok = w.write_all(first.as_bytes()).is_ok();
            let mut w2 = w.try_clone().unwrap();
            std::thread::spawn(move || {
                pause(ms);
                let _ = w2.write_all(later.as_bytes());
            });
            ok
        }
        Act::SayThenClose(text) => {
            let _ = w.write_all(text.as_bytes());
            false
        }
        Act::Close => false,
        Act::Hang => {
            pause(30_000);
            false
        }
    }
}

fn text_of(a: Act) -> &'static str {
    match a {
        Act::Say(t) | Act::Split(t) | Act::Drip(t, _) | Act::SayThenClose(t) => t,
        Act::SayThenLater(t, _, _) => t,
        Act::Close | Act::Hang => "",
    }
}

fn serve(conn: TcpStream, script: Script, n: usize, log: &Mutex<Vec<String>>) {
    let note = |s: String| log.lock().unwrap().push(format!("{n}: {s}"));
    note("CONNECT".into());
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    if !act(&mut w, script.greeting) {
        return;
    }
    let mut lmtp = false;
    let mut rcpts = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        note(line.trim_end().to_string());
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        lmtp |= verb == "LHLO";
        let a = match verb.as_str() {
            "EHLO" | "LHLO" => script.ehlo,
            "MAIL" => script.mail,
            "RCPT" if line.contains("bad") => Act::Say("550 5.1.1 No such user here\r\n"),
            "RCPT" => script.rcpt,
            "RSET" => script.rset,
            "NOOP" => Act::Say("250 2.0.0 Ok\r\n"),
            "QUIT" => Act::SayThenClose("221 2.0.0 Bye\r\n"),
            "DATA" => script.data,
            _ => Act::Say("502 5.5.2 Error: command not recognized\r\n"),
        };
        if !act(&mut w, a) {
            return;
        }
        if verb == "RCPT" && text_of(a).starts_with("25") {
            rcpts += 1;
        }
        if verb == "MAIL" || verb == "RSET" {
            rcpts = 0;
        }
        if verb != "DATA" || !text_of(a).starts_with("354") {
            continue;
        }
        // The message, up to the final dot.
        loop {
            let mut l = String::new();
            if r.read_line(&mut l).unwrap_or(0) == 0 {
                return;
            }
            if script.close_mid_message {
                return;
            }
            if script.stall_mid_message {
                note("STALLED".into());
                std::thread::sleep(Duration::from_secs(30));
                return;
            }
            if l == ".\r\n" {
                break;
            }
        }
        note("DOT".into());
        if !act(&mut w, script.dot) && !matches!(script.dot, Act::SayThenClose(_)) {
            return;
        }
        // SMTP: the first reply decides; LMTP: each recipient's.
        let said: Vec<&str> = text_of(script.dot)
            .split("\r\n")
            .filter(|l| l.get(3..4) == Some(" "))
            .collect();
        let taken = if lmtp {
            said.iter().take(rcpts).filter(|l| l.starts_with("250 ")).count()
        } else {
            usize::from(said.first().is_some_and(|l| l.starts_with("250 ")))
        };
        for _ in 0..taken {
            note("CONFIRMED".into());
        }
        if matches!(script.dot, Act::SayThenClose(_)) {
            return;
        }
    }
}
