//! The external-plugin answer reader: any lines a plugin program or co-process writes,
//! for any hook and request id. Must hold:
//!
//! - no panic in untagging, in the end-of-answer test or in the parser;
//! - untagging only removes `ID ` from each line, and a tagged line ends the answer
//!   exactly when the line without its id is a final verdict line;
//! - an answer that parses is carried out through the real chain (notes, header edits,
//!   relay, log, replies): every reply it makes renders as well-formed SMTP reply lines
//!   (a code from 200 to 599, CRLF, no control character but tab (RFC 5321 §4.2 textstring), at most 512 bytes), and every
//!   header field it adds is free of control characters.
//!
//! The lines are also read as a qmail-spp plugin's output, whose refusal must render
//! well-formed too.
//!
//! Input: a byte choosing the hook, a byte of request id, then the answer's lines.

#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::config::Config;
use qpsmtpd_rs::connection::Connection;
use qpsmtpd_rs::log::Logger;
use qpsmtpd_rs::plugin::external::answer::{apply, ends_tagged, is_final, parse, untag};
use qpsmtpd_rs::plugin::external::spp_commands::{self, Last};
use qpsmtpd_rs::plugin::{Args, Chain, Context, Env, Hook, Outcome, Plugin, PluginSpec, Verdict};
use qpsmtpd_rs::reply::Reply;
use qpsmtpd_rs::transaction::Transaction;

/// Applies a parsed answer as an external plugin does.
struct Answering {
    hook: Hook,
    lines: RefCell<Vec<String>>,
}

impl Plugin for Answering {
    fn hooks(&self) -> Vec<Hook> {
        vec![self.hook]
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let lines = self.lines.borrow();
        let Ok(answer) = parse(&lines) else {
            return Outcome::declined();
        };
        apply(answer, cx, hook).unwrap_or_else(|_| Outcome::new(Verdict::DenySoft))
    }
}

fn check_reply(r: &Reply) {
    let mut out = Vec::new();
    r.render(&mut out);
    assert!(out.ends_with(b"\r\n"));
    let lines: Vec<&[u8]> = out.split_inclusive(|b| *b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(line.len() <= 512, "{line:?}");
        let text = line.strip_suffix(b"\r\n").expect("CRLF");
        assert!(
            text.len() >= 4 && text[..3].iter().all(u8::is_ascii_digit),
            "{text:?}"
        );
        assert!((b'2'..=b'5').contains(&text[0]), "{text:?}");
        let last = i + 1 == lines.len();
        assert_eq!(text[3], if last { b' ' } else { b'-' }, "{text:?}");
        assert!(
            !text.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "control character in {text:?}"
        );
    }
}

/// The same lines as a qmail-spp plugin's output: an `E`/`R` reply and the printed
/// lines before it become a reply that must render well-formed.
fn spp(lines: &[String]) {
    let printed = spp_commands::parse(lines);
    let last = match &printed.last {
        Some(Last::Error(t) | Last::Drop(t)) => t,
        _ => return,
    };
    let Some((class, text)) = spp_commands::reply_text(last) else {
        return;
    };
    assert!((2..=5).contains(&class));
    let mut msg: Vec<String> = printed
        .printed
        .iter()
        .filter_map(|l| spp_commands::reply_text(l).map(|(_, t)| t.to_string()))
        .collect();
    msg.push(text.to_string());
    if let Some(v) = spp_commands::refusal(class, false) {
        let code = if v == Verdict::Deny { 550 } else { 451 };
        check_reply(&Reply::from_plugin(code, "5.7.1", &msg, "refused"));
    }
}

fuzz_target!(|input: &[u8]| {
    let [which, id, rest @ ..] = input else {
        return;
    };
    let hook = Hook::ALL[usize::from(*which) % Hook::COUNT];
    let id = u64::from(*id);
    let text = String::from_utf8_lossy(rest);
    let lines: Vec<String> = text.split('\n').map(str::to_string).collect();

    for line in &lines {
        let ends = ends_tagged(line, id);
        if let Some(stripped) = line.strip_prefix(&format!("{id} ")) {
            assert_eq!(ends, is_final(stripped), "{line:?}");
        }
    }
    if let Ok(untagged) = untag(&lines, id) {
        let tagged: Vec<&String> = lines.iter().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(untagged.len(), tagged.len());
        for (u, t) in untagged.iter().zip(tagged) {
            assert_eq!(format!("{id} {u}"), *t);
        }
    }
    spp(&lines);
    let Ok(answer) = parse(&lines) else {
        return;
    };
    let _ = answer.outcome.first_msg();

    let mut chain = Chain::new();
    chain.push(
        PluginSpec {
            name: "external".into(),
            args: Vec::new(),
            file: std::rc::Rc::from(std::path::Path::new("plugins")),
            line: 0,
            log_adjust: None,
        },
        Box::new(Answering {
            hook,
            lines: RefCell::new(lines),
        }),
    );
    let config = Config::empty();
    let log = Logger::silent("fuzz");
    let env = Env {
        config: &config,
        log: &log,
        me: "mx.example.com",
    };
    let mut conn = Connection::new("fuzz", "192.0.2.1");
    let mut txn = Transaction::new("fuzz.0".into());
    txn.header.add("Subject", "fuzz", None);
    let mut replies = Vec::new();
    let out = chain.run(hook, &mut conn, &mut txn, env, &mut replies, Args::None);
    for r in &replies {
        check_reply(r);
    }
    // What the session would make of the verdict's message.
    check_reply(&Reply::from_plugin(550, "5.7.1", &out.msg, "denied"));
    check_reply(&Reply::from_plugin(451, "4.3.0", &out.msg, "try later"));
    for line in txn.header.as_bytes().split(|b| *b == b'\n') {
        assert!(
            !line.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f),
            "control character in header line {line:?}"
        );
    }
});
