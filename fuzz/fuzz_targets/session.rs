//! The whole session in-process: any byte stream from a client, through the real line
//! reader and `Session::step`/`output`, with a fixed plugin chain and a queue that keeps
//! messages in memory. Whatever the client sends:
//!
//! - nothing panics, and the session ends (a bounded number of steps);
//! - every reply line is `NNN-text` or `NNN text` with CRLF, a code from 200 to 599, no
//!   control character but tab (RFC 5321 §4.2) in the text, at most 512 bytes, and the lines of one reply share
//!   its code;
//! - a message is queued only in the step whose reply is a `250`, and each `250` after
//!   message data is a queued message; a client that is gone by then queues nothing;
//! - what is queued holds no NUL, no CR on a network connection, a sender and
//!   recipients, and a client that may not relay only reaches our own domains, with no
//!   sender-specified routing.
//!
//! Input: a byte of flags (network or pipe, relay client or not, client still there
//! after the dot, timeout or end of input last), then the client's bytes.

#![no_main]

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::config::Config;
use qpsmtpd_rs::connection::Connection;
use qpsmtpd_rs::io::{Line, LineReader, ReadError, Scripted, Transport};
use qpsmtpd_rs::log::Logger;
use qpsmtpd_rs::plugin::{Args, Chain, Context, Hook, Outcome, Plugin, PluginSpec};
use qpsmtpd_rs::server::MAX_COMMAND_LINE;
use qpsmtpd_rs::session::{Input, Opening, Session, Setup, Want};
use qpsmtpd_rs::tls::TlsError;

const ME: &str = "mx.example.com";
const OURS: [&str; 2] = ["example.com", ME];

thread_local! {
    static QUEUE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    static NETWORK: RefCell<bool> = const { RefCell::new(true) };
}

/// The queue: checks what it is given and keeps it in memory.
struct MemoryQueue;

impl Plugin for MemoryQueue {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        assert!(cx.txn.sender.is_some(), "queued without a sender");
        assert!(!cx.txn.recipients.is_empty(), "queued without recipients");
        if !cx.conn.relay_client {
            for r in &cx.txn.recipients {
                // A recipient without a domain (`<postmaster>`, RFC 5321 §4.5.1) is local.
                let host = r.host().unwrap_or(ME).to_ascii_lowercase();
                assert!(OURS.contains(&host.as_str()), "relayed to {r}");
                assert!(!r.has_routing(), "routed recipient {r}");
            }
        }
        let mut message = Vec::new();
        cx.txn.write_message(&mut message).expect("memory write");
        assert!(!message.contains(&0), "NUL queued");
        if NETWORK.with(|n| *n.borrow()) {
            assert!(!message.contains(&b'\r'), "CR queued from a network client");
        }
        QUEUE.with(|q| q.borrow_mut().push(message));
        Outcome::ok_with("Queued!")
    }
}

/// The config directory, written once.
fn config_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("qpsmtpd-rs-fuzz-session.{}", std::process::id()));
        let spool = dir.join("spool");
        std::fs::create_dir_all(&spool).expect("config dir");
        let files: [(&str, String); 10] = [
            (
                "plugins",
                "count_unrecognized_commands 4\ndont_require_anglebrackets\nbadmailfrom\nbadrcptto\n\
                 help\nauth/auth_flat_file\nrcpt_ok\n"
                    .into(),
            ),
            ("me", format!("{ME}\n")),
            ("rcpthosts", "example.com\n".into()),
            ("badmailfrom", "bad@example.net\n@spam.example\n".into()),
            ("badrcptto", "blocked@example.com\n".into()),
            ("flat_auth_pw", "good@example.com:good_pass\n".into()),
            ("databytes", "20000\n".into()),
            ("max_header_size", "4000\n".into()),
            ("spool_dir", format!("{}\n", spool.display())),
            ("loglevel", "0\n".into()),
        ];
        for (name, text) in files {
            std::fs::write(dir.join(name), text).expect("config file");
        }
        dir
    })
}

fn session(network: bool, relay: bool) -> Session {
    let config = Config::open(config_dir(), None).expect("config");
    let mut chain = Chain::load(&config).expect("plugins");
    chain.push(
        PluginSpec {
            name: "memory_queue".into(),
            args: Vec::new(),
            file: std::rc::Rc::from(std::path::Path::new("plugins")),
            line: 0,
            log_adjust: None,
        },
        Box::new(MemoryQueue),
    );
    let mut conn = Connection::new("fuzz", "192.0.2.1");
    conn.network = network;
    conn.relay_client = relay;
    Session::new(Setup {
        conn,
        config,
        chain,
        log: Logger::silent("fuzz"),
    })
    .expect("session")
}

/// Checks the replies one step rendered; returns how many are `250`.
fn check_replies(out: &[u8]) -> usize {
    assert!(out.is_empty() || out.ends_with(b"\r\n"), "{out:?}");
    let mut ok = 0;
    let mut open: Option<&[u8]> = None;
    for line in out.split_inclusive(|b| *b == b'\n') {
        assert!(line.len() <= 512, "reply line of {} bytes", line.len());
        let text = line.strip_suffix(b"\r\n").expect("CRLF");
        assert!(text.len() >= 4, "{text:?}");
        let (code, sep) = (&text[..3], text[3]);
        assert!(
            code.iter().all(u8::is_ascii_digit) && (b'2'..=b'5').contains(&code[0]),
            "{text:?}"
        );
        assert!(sep == b' ' || sep == b'-', "{text:?}");
        assert!(
            !text.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "control character in {text:?}"
        );
        if let Some(c) = open {
            assert_eq!(c, code, "codes differ within a reply: {out:?}");
        }
        if sep == b'-' {
            open = Some(code);
        } else {
            open = None;
            ok += usize::from(code == b"250");
        }
    }
    assert!(open.is_none(), "reply ends with a continuation line: {out:?}");
    ok
}

fuzz_target!(|input: &[u8]| {
    let [flags, stream @ ..] = input else {
        return;
    };
    let network = flags & 1 == 0;
    let relay = flags & 2 != 0;
    let alive = flags & 4 == 0;
    NETWORK.with(|n| *n.borrow_mut() = network);
    QUEUE.with(|q| q.borrow_mut().clear());
    let mut chunks = vec![stream.to_vec()];
    if flags & 8 != 0 {
        chunks.push(Vec::new()); // a timeout after the last byte
    }
    let mut transport = Scripted::new(chunks);
    let mut reader = LineReader::new();
    let mut s = session(network, relay);
    let mut out = Vec::new();
    let mut want = s.step(Input::Connected(Opening::default()));
    let mut steps = 0usize;
    loop {
        out.clear();
        s.output(&mut out, b"");
        let ok = check_replies(&out);
        steps += 1;
        assert!(steps < 4 * stream.len() + 100, "the session does not end");
        let queued_before = QUEUE.with(|q| q.borrow().len());
        let (next, data_step) = match want {
            Want::Closed => break,
            // The earlytalker wait: the scripted transport says whether input is waiting.
            Want::Quiet { timeout } => (
                s.step(Input::Talked(transport.readable(timeout).unwrap_or(true))),
                false,
            ),
            Want::StartTls { .. } => (
                s.step(Input::TlsFailed {
                    why: &TlsError::NoPlugin,
                    discarded: reader.discard(),
                }),
                false,
            ),
            Want::Command { .. } | Want::AuthResponse { .. } => {
                let input = match reader.read_line(&mut transport, MAX_COMMAND_LINE, Duration::from_secs(5)) {
                    Ok(Line::Text(line)) => Input::Line(line),
                    Ok(Line::TooLong) => Input::LineTooLong,
                    Err(e) => failed(e),
                };
                (s.step(input), false)
            }
            Want::Data { deadline, .. } => {
                let input = match reader.read_data(&mut transport, Duration::from_secs(5), deadline) {
                    Ok((piece, read_ahead)) => Input::Data { piece, read_ahead },
                    Err(e) => failed(e),
                };
                (s.step(input), true)
            }
            Want::Liveness => {
                let next = s.step(Input::Alive(alive));
                let queued = QUEUE.with(|q| q.borrow().len()) - queued_before;
                assert!(alive || queued == 0, "queued for a client that was gone");
                (next, true)
            }
        };
        assert_eq!(ok, 0, "replies left unrendered");
        out.clear();
        s.output(&mut out, b"");
        let ok = check_replies(&out);
        let queued = QUEUE.with(|q| q.borrow().len()) - queued_before;
        assert!(queued <= 1, "two messages from one step");
        if data_step {
            assert_eq!(queued, ok, "queued {queued} with {ok} 250 replies: {out:?}");
        } else {
            assert_eq!(queued, 0, "queued outside message data");
        }
        want = next;
    }
    assert!(matches!(s.step(Input::Finished), Want::Closed));
    out.clear();
    s.output(&mut out, b"");
    check_replies(&out);
});

fn failed(e: ReadError) -> Input<'static> {
    match e {
        ReadError::Timeout => Input::TimedOut,
        ReadError::Terminated => Input::Terminated,
        ReadError::Eof | ReadError::Io(_) => Input::Ended,
    }
}
