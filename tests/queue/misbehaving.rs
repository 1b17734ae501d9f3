//! queue/smtp-forward and queue/lmtp against a next hop that breaks the protocol at every
//! step (the scripted hop of hop.rs), through the binary: for each case the client's
//! replies are checked, and that what the hop took agrees with them. Our client gets
//! `250` after the dot only when the hop said `250` to it; when the hop took a message but
//! then broke the protocol, the client gets a 4xx (a retry may deliver a second copy,
//! which is the lesser harm, and is logged).

use std::time::{Duration, Instant};

use super::Talk;
use super::faults::forward_dir;
use super::hop::{Act, Hop, Script};

/// One way to misbehave and what our client must hear.
struct Case {
    name: &'static str,
    lmtp: bool,
    script: Script,
    /// Replies to RCPT one@ and (if given) two@, as prefixes.
    rcpt: &'static [&'static str],
    /// The reply after the final dot (exact), when a recipient was accepted.
    dot: Option<&'static str>,
    /// Messages the hop took (per recipient for LMTP); `None`: timing decides.
    taken: Option<usize>,
    /// A second transaction on the same connection: its RCPT (one@) and dot replies.
    then: Option<(&'static str, &'static str)>,
    /// Pause before DATA and before the second transaction (for replies that arrive
    /// late: one that comes while a command is outstanding cannot be told from its
    /// answer; these show what is caught between commands).
    pause_ms: u64,
    /// Connections the hop must have seen (0: not checked).
    conns: usize,
}

fn smtp(
    name: &'static str,
    script: Script,
    rcpt: &'static [&'static str],
    dot: Option<&'static str>,
    taken: usize,
) -> Case {
    Case {
        name,
        lmtp: false,
        script,
        rcpt,
        dot,
        taken: Some(taken),
        then: None,
        pause_ms: 0,
        conns: 0,
    }
}

fn good() -> Script {
    Script::good()
}

fn smtp_cases() -> Vec<Case> {
    let ok: &[&str] = &["250 2.1.5"];
    let queued = Some("250 2.0.0 Queued! queued as HOP1");
    let mut cases = vec![
        smtp(
            "every reply in two-byte writes",
            Script {
                greeting: Act::Split("220 hop.example ESMTP\r\n"),
                ehlo: Act::Split("250-hop.example\r\n250-PIPELINING\r\n250 8BITMIME\r\n"),
                mail: Act::Split("250 2.1.0 Ok\r\n"),
                rcpt: Act::Split("250 2.1.5 Ok\r\n"),
                data: Act::Split("354 go ahead\r\n"),
                dot: Act::Split("250 2.0.0 Ok: queued as HOP1\r\n"),
                ..good()
            },
            ok,
            queued,
            1,
        ),
        smtp(
            "greeting dripped a byte at a time",
            Script {
                greeting: Act::Drip("220 hop.example ESMTP here\r\n", 100),
                ..good()
            },
            &["450 4.4.2 Next hop did not answer in time"],
            None,
            0,
        ),
        smtp(
            "RCPT reply dripped",
            Script {
                rcpt: Act::Drip("250 2.1.5 Recipient ok\r\n", 100),
                ..good()
            },
            &["450 4.4.2 Next hop did not answer in time"],
            None,
            0,
        ),
        smtp(
            "multi-line EHLO reply whose last line never comes",
            Script {
                ehlo: Act::Say("250-hop.example\r\n250-8BITMIME\r\n"),
                ..good()
            },
            &["450 4.4.2 Next hop did not answer in time"],
            None,
            0,
        ),
        smtp(
            "multi-line RCPT reply whose last line never comes",
            Script {
                rcpt: Act::Say("250-2.1.5 one\r\n"),
                ..good()
            },
            &["450 4.4.2 Next hop did not answer in time"],
            None,
            0,
        ),
        smtp(
            "multi-line reply to the dot whose last line never comes",
            Script {
                dot: Act::Say("250-2.0.0 Ok\r\n"),
                ..good()
            },
            ok,
            Some("451 4.4.2 Next hop did not answer in time"),
            0,
        ),
        smtp(
            "garbage for a reply",
            Script {
                rcpt: Act::Say("hello there\r\n"),
                ..good()
            },
            &["450 4.5.0 Next hop answered out of protocol"],
            None,
            0,
        ),
        smtp(
            "354 to MAIL",
            Script {
                mail: Act::Say("354 go ahead\r\n"),
                ..good()
            },
            &["450 4.5.0 Next hop answered out of protocol"],
            None,
            0,
        ),
        smtp(
            "354 to RCPT",
            Script {
                rcpt: Act::Say("354 go ahead\r\n"),
                ..good()
            },
            &["450 4.5.0 Next hop answered out of protocol"],
            None,
            0,
        ),
        smtp(
            "250 to DATA instead of 354",
            Script {
                data: Act::Say("250 2.0.0 Ok\r\n"),
                ..good()
            },
            ok,
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            0,
        ),
        smtp(
            "221 to the dot",
            Script::answering("221 2.0.0 Bye\r\n"),
            ok,
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            0,
        ),
        smtp(
            "354 to the dot",
            Script::answering("354 go ahead\r\n"),
            ok,
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            0,
        ),
        smtp(
            "421 to MAIL, then a fresh connection",
            Script {
                mail: Act::SayThenClose("421 4.3.2 Service shutting down\r\n"),
                first_only: true,
                ..good()
            },
            &["450 4.3.2 Service shutting down", "250 2.1.5"],
            queued,
            1,
        ),
        smtp(
            "421 to RCPT, then a fresh connection",
            Script {
                rcpt: Act::SayThenClose("421 4.3.2 Service shutting down\r\n"),
                first_only: true,
                ..good()
            },
            &["450 4.3.2 Service shutting down", "250 2.1.5"],
            queued,
            1,
        ),
        smtp(
            "421 to DATA (replayed once)",
            Script {
                data: Act::SayThenClose("421 4.4.2 Error: timeout exceeded\r\n"),
                first_only: true,
                ..good()
            },
            ok,
            queued,
            1,
        ),
        smtp(
            "421 to the dot",
            Script::answering("421 4.3.2 Service shutting down\r\n"),
            ok,
            Some("451 4.3.2 Service shutting down"),
            0,
        ),
        smtp(
            "closes after the greeting",
            Script {
                greeting: Act::SayThenClose("220 hop.example ESMTP\r\n"),
                ..good()
            },
            &["450 4.4.2 Next hop closed the connection"],
            None,
            0,
        ),
        smtp(
            "closes at EHLO",
            Script {
                ehlo: Act::Close,
                ..good()
            },
            &["450 4.4.2 Next hop closed the connection"],
            None,
            0,
        ),
        smtp(
            "closes at MAIL",
            Script {
                mail: Act::Close,
                ..good()
            },
            &["450 4.4.2 Next hop closed the connection"],
            None,
            0,
        ),
        smtp(
            "closes at RCPT",
            Script {
                rcpt: Act::Close,
                ..good()
            },
            &["450 4.4.2 Next hop closed the connection"],
            None,
            0,
        ),
        smtp(
            "closes at DATA (replayed once, closes again)",
            Script {
                data: Act::Close,
                ..good()
            },
            ok,
            Some("451 4.4.2 Next hop closed the connection; try again later"),
            0,
        ),
        smtp(
            "closes in the middle of the message",
            Script {
                close_mid_message: true,
                ..good()
            },
            ok,
            Some("451 4.4.2 Next hop closed the connection; try again later"),
            0,
        ),
        smtp(
            "closes after the dot without a reply",
            Script {
                dot: Act::Close,
                ..good()
            },
            ok,
            Some("451 4.4.2 Next hop closed the connection; try again later"),
            0,
        ),
        smtp(
            "reply to the dot dripped",
            Script {
                dot: Act::Drip("250 2.0.0 Ok: queued as HOP1\r\n", 100),
                ..good()
            },
            ok,
            Some("451 4.4.2 Next hop did not answer in time"),
            0,
        ),
        smtp(
            "two replies to RCPT",
            Script {
                rcpt: Act::Say("250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"),
                ..good()
            },
            &["250 2.1.5", "450 4.5.0 Next hop answered out of protocol"],
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            0,
        ),
    ];
    // A reply to the dot that comes before the dot (here pipelined with the 354) was
    // not given to it: the hop then refuses the message, and our client must not have
    // heard 250.
    cases.push(smtp(
        "250 with the 354, before the message; 550 to the dot",
        Script {
            data: Act::Say("354 go ahead\r\n250 2.0.0 Ok: queued as EARLY\r\n"),
            dot: Act::Say("550 5.7.1 refused after all\r\n"),
            ..good()
        },
        ok,
        Some("451 4.5.0 Next hop answered out of protocol; try again later"),
        0,
    ));
    cases.push(smtp(
        "250 with the 354, before the message; no answer to the dot",
        Script {
            data: Act::Say("354 go ahead\r\n250 2.0.0 Ok: queued as EARLY\r\n"),
            dot: Act::Hang,
            ..good()
        },
        ok,
        Some("451 4.5.0 Next hop answered out of protocol; try again later"),
        0,
    ));
    for c in cases.iter_mut() {
        if c.name.contains("fresh connection")
            || c.name.contains("replayed once")
            || c.name.contains("250 to DATA")
        {
            c.conns = 2;
        }
    }
    // Timing decides whether the dripping hop still counts its 250 as written.
    cases
        .iter_mut()
        .find(|c| c.name == "reply to the dot dripped")
        .unwrap()
        .taken = None;
    cases.push(Case {
        then: Some(("250 2.1.5", "250 2.0.0 Queued! queued as HOP1")),
        ..smtp(
            "250 and a stale 554 to the dot; the next message on a fresh connection",
            Script {
                dot: Act::Say("250 2.0.0 Ok: queued as HOP1\r\n554 5.0.0 stale\r\n"),
                first_only: true,
                ..good()
            },
            ok,
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            2,
        )
    });
    cases.push(Case {
        then: Some(("250 2.1.5", "250 2.0.0 Queued! queued as HOP1")),
        pause_ms: 500,
        ..smtp(
            "a late extra reply after the dot; the next message on a fresh connection",
            Script {
                dot: Act::SayThenLater("250 2.0.0 Ok: queued as HOP1\r\n", "250 2.0.0 again\r\n", 200),
                first_only: true,
                ..good()
            },
            ok,
            queued,
            2,
        )
    });
    cases.push(Case {
        pause_ms: 700,
        ..smtp(
            "an unasked 421 (idle timeout) before DATA (replayed once)",
            Script {
                rcpt: Act::SayThenLater(
                    "250 2.1.5 Ok\r\n",
                    "421 4.4.2 hop.example Error: timeout exceeded\r\n",
                    200,
                ),
                first_only: true,
                ..good()
            },
            ok,
            queued,
            1,
        )
    });
    for c in cases
        .iter_mut()
        .filter(|c| c.name.contains("fresh connection") || c.name.contains("replayed once"))
    {
        c.conns = 2;
    }
    cases
}

/// Reply lines that are not what they seem: codes that change between the lines of one
/// reply, a multi-line reply cut off, codes of four digits or with a letter, lines longer
/// than any reply may be, a reply of too many lines, a refused greeting; and replies
/// ending in a bare LF, which are fine.
fn reply_format_cases() -> Vec<Case> {
    let ok: &[&str] = &["250 2.1.5"];
    let out_of_protocol: &[&str] = &["450 4.5.0 Next hop answered out of protocol"];
    let long: &'static str = Box::leak(format!("250 2.1.5 {}\r\n", "x".repeat(5000)).into_boxed_str());
    let many: &'static str =
        Box::leak(format!("{}250 8BITMIME\r\n", "250-hop.example\r\n".repeat(100)).into_boxed_str());
    let rcpt = |name, act| smtp(name, Script { rcpt: act, ..good() }, out_of_protocol, None, 0);
    vec![
        rcpt(
            "RCPT: 250- then 550",
            Act::Say("250-2.1.5 fine\r\n550 5.1.1 not fine\r\n"),
        ),
        rcpt("RCPT: 2500", Act::Say("2500 ok\r\n")),
        rcpt("RCPT: 25O", Act::Say("25O ok\r\n")),
        rcpt("RCPT: a line of 5000 bytes", Act::Say(long)),
        smtp(
            "RCPT: 250- then close",
            Script {
                rcpt: Act::SayThenClose("250-2.1.5 one\r\n"),
                ..good()
            },
            &["450 4.4.2 Next hop closed the connection"],
            None,
            0,
        ),
        smtp(
            "EHLO: 101 lines",
            Script {
                ehlo: Act::Say(many),
                ..good()
            },
            out_of_protocol,
            None,
            0,
        ),
        smtp(
            "a 554 greeting",
            Script {
                greeting: Act::Say("554 5.3.2 hop.example not accepting mail\r\n"),
                ..good()
            },
            &["450 4.4.0 Next hop refused the session"],
            None,
            0,
        ),
        smtp(
            "the dot: 250- then 550",
            Script::answering("250-2.0.0 Ok\r\n550 5.7.1 but no\r\n"),
            ok,
            Some("451 4.5.0 Next hop answered out of protocol; try again later"),
            0,
        ),
        smtp(
            "every reply with a bare LF",
            Script {
                greeting: Act::Say("220 hop.example ESMTP\n"),
                ehlo: Act::Say("250-hop.example\n250 8BITMIME\n"),
                mail: Act::Say("250 2.1.0 Ok\n"),
                rcpt: Act::Say("250 2.1.5 Ok\n"),
                data: Act::Say("354 go ahead\n"),
                dot: Act::Say("250 2.0.0 Ok: queued as LF1\n"),
                ..good()
            },
            ok,
            Some("250 2.0.0 Queued! queued as LF1"),
            1,
        ),
    ]
}

fn lmtp(name: &'static str, dot: Act, reply: &'static str, taken: usize) -> Case {
    Case {
        name,
        lmtp: true,
        script: Script { dot, ..good() },
        rcpt: &["250 2.1.5", "250 2.1.5"],
        dot: Some(reply),
        taken: Some(taken),
        then: None,
        pause_ms: 0,
        conns: 0,
    }
}

fn lmtp_cases() -> Vec<Case> {
    let saved = "250 2.0.0 <one@example.org> Saved\r\n250 2.0.0 <two@example.org> Saved\r\n";
    let mut cases = vec![
        lmtp(
            "LMTP: both replies in two-byte writes",
            Act::Split(saved),
            "250 2.0.0 Queued! Delivered to 2 recipients",
            2,
        ),
        lmtp(
            "LMTP: both replies dripped",
            Act::Drip(saved, 100),
            "451 4.4.2 Next hop did not answer in time",
            0,
        ),
        lmtp(
            "LMTP: one reply for two recipients",
            Act::Say("250 2.0.0 <one@example.org> Saved\r\n"),
            "451 4.4.2 Next hop did not answer in time",
            1,
        ),
        lmtp(
            "LMTP: closes after the first reply",
            Act::SayThenClose("250 2.0.0 <one@example.org> Saved\r\n"),
            "451 4.4.2 Next hop closed the connection; try again later",
            1,
        ),
        lmtp(
            "LMTP: a multi-line reply whose last line never comes",
            Act::Say("250-2.0.0 <one@example.org>\r\n"),
            "451 4.4.2 Next hop did not answer in time",
            0,
        ),
        lmtp(
            "LMTP: 354 for the second recipient",
            Act::Say("250 2.0.0 <one@example.org> Saved\r\n354 go ahead\r\n"),
            "451 4.5.0 Next hop answered out of protocol; try again later",
            1,
        ),
        lmtp(
            "LMTP: 221 for both",
            Act::Say("221 2.0.0 Bye\r\n221 2.0.0 Bye\r\n"),
            "451 4.5.0 Next hop answered out of protocol; try again later",
            0,
        ),
        lmtp(
            "LMTP: both refused permanently",
            Act::Say("554 5.7.1 <one@example.org> rejected\r\n550 5.1.1 <two@example.org> gone\r\n"),
            "554 5.7.1 <one@example.org> rejected",
            0,
        ),
        lmtp(
            "LMTP: both refused for now",
            Act::Say("451 4.3.0 <one@example.org> later\r\n452 4.2.2 <two@example.org> full\r\n"),
            "451 4.3.0 <one@example.org> later",
            0,
        ),
    ];
    cases
        .iter_mut()
        .find(|c| c.name.contains("dripped"))
        .unwrap()
        .taken = None;
    cases.push(lmtp(
        "LMTP: both 250s with the 354, before the message; 550s to the dot",
        Act::Say("550 5.7.1 <one@example.org> no\r\n550 5.7.1 <two@example.org> no\r\n"),
        "451 4.5.0 Next hop answered out of protocol; try again later",
        0,
    ));
    cases.last_mut().unwrap().script.data = Act::Say(
        "354 go ahead\r\n250 2.0.0 <one@example.org> Saved\r\n250 2.0.0 <two@example.org> Saved\r\n",
    );
    // Three replies for two recipients: the extra one must not answer the next message's
    // recipients (a refused one got our 250 and a valid one 550 before).
    cases.push(Case {
        rcpt: &["250 2.1.5", "250 2.1.5"],
        then: Some(("550 5.1.1 No such user here", "250 2.0.0 Queued! Ok: queued as HOP1")),
        ..lmtp(
            "LMTP: three replies for two recipients; the next message on a fresh connection",
            Act::Say(
                "250 2.0.0 <one@example.org> Saved\r\n250 2.0.0 <two@example.org> Saved\r\n550 5.1.1 <x@example.org> stale\r\n",
            ),
            "451 4.5.0 Next hop answered out of protocol; try again later",
            3,
        )
    });
    let last = cases.last_mut().unwrap();
    last.script.first_only = true;
    last.conns = 2;
    cases
}

/// Runs one case; `Err` says what differed.
fn run(case: &Case) -> Result<String, String> {
    let hop = Hop::start(case.script);
    let plugin = if case.lmtp {
        "queue/lmtp 127.0.0.1:PORT"
    } else {
        "queue/smtp-forward 127.0.0.1 PORT"
    };
    let dir = forward_dir(plugin, hop.port);
    let mut t = Talk::start(&dir);
    assert!(t.cmd("EHLO client.example").starts_with("250"));
    assert!(t.cmd("MAIL FROM:<a@example.net>").starts_with("250"));
    let started = Instant::now();
    let mut problems = Vec::new();
    let mut accepted = false;
    for (rcpt, want) in ["one@example.org", "two@example.org"].iter().zip(case.rcpt) {
        let got = t.cmd(&format!("RCPT TO:<{rcpt}>"));
        accepted |= got.starts_with("250");
        if !got.starts_with(want) {
            problems.push(format!("RCPT {rcpt}: wanted {want:?}, got {got:?}"));
        }
    }
    let mut dot = String::from("(no DATA)");
    if accepted {
        std::thread::sleep(Duration::from_millis(case.pause_ms));
        dot = t.data(&super::tricky_message("misbehaving"));
        if case.dot != Some(dot.as_str()) {
            problems.push(format!("dot: wanted {:?}, got {dot:?}", case.dot));
        }
    } else if case.dot.is_some() {
        problems.push("no recipient accepted".into());
    }
    if let Some((rcpt_want, dot_want)) = case.then {
        std::thread::sleep(Duration::from_millis(case.pause_ms));
        assert!(t.cmd("MAIL FROM:<a@example.net>").starts_with("250"));
        if case.lmtp {
            let got = t.cmd("RCPT TO:<bad@example.org>");
            if !got.starts_with(rcpt_want) {
                problems.push(format!(
                    "second message, RCPT bad@: wanted {rcpt_want:?}, got {got:?}"
                ));
            }
        }
        let got = t.cmd("RCPT TO:<one@example.org>");
        if !got.starts_with("250") || (!case.lmtp && !got.starts_with(rcpt_want)) {
            problems.push(format!("second message, RCPT one@: got {got:?}"));
        }
        let got = t.data(&super::tricky_message("second"));
        if got != dot_want {
            problems.push(format!("second message, dot: wanted {dot_want:?}, got {got:?}"));
        }
    }
    let elapsed = started.elapsed();
    let log = t.quit();
    // The hop notes a message as taken just after writing its reply, so it may lag behind
    // our client: wait for the count this case expects (a larger one shows all the same).
    super::wait_for(5, || hop.confirmed() >= case.taken.unwrap_or(0));
    let taken = hop.confirmed();
    if let Some(want) = case.taken
        && taken != want
    {
        problems.push(format!("the hop took {taken} messages, wanted {want}"));
    }
    if case.conns > 0 && hop.connections() != case.conns {
        problems.push(format!(
            "the hop saw {} connections, wanted {}",
            hop.connections(),
            case.conns
        ));
    }
    // The guarantee: a 250 to our client only for a message the hop took.
    if dot.starts_with("250") && taken == 0 {
        problems.push("our client got 250 for a message the hop did not take".into());
    }
    // Each reply has one deadline (timeout 2 s): no case may take much longer.
    if elapsed > Duration::from_secs(8) {
        problems.push(format!("took {elapsed:?}"));
    }
    if problems.is_empty() {
        Ok(format!("{}: RCPT {:?}, dot {dot:?}", case.name, case.rcpt))
    } else {
        Err(format!(
            "{}:\n    {}\n    hop saw: {:?}\n    log:\n{log}",
            case.name,
            problems.join("\n    "),
            hop.lines()
        ))
    }
}

/// Runs the cases on a few threads; all failures are reported together.
fn run_all(cases: Vec<Case>) {
    let cases = std::sync::Arc::new(std::sync::Mutex::new(cases));
    let workers: Vec<_> = (0..3)
        .map(|_| {
            let cases = cases.clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let Some(case) = cases.lock().unwrap().pop() else {
                        return out;
                    };
                    // A panic inside (a reply the helpers did not expect) is that case's
                    // failure, not the end of the others.
                    let result = std::panic::catch_unwind(|| run(&case)).unwrap_or_else(|p| {
                        let what = p
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Err(format!("{}: panicked: {what}", case.name))
                    });
                    out.push(result);
                }
            })
        })
        .collect();
    let results: Vec<Result<String, String>> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    for line in results.iter().flatten() {
        eprintln!("ok: {line}");
    }
    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(!results.is_empty());
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        results.len(),
        failures.iter().map(|s| s.as_str()).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn smtp_next_hop_misbehaving_at_every_step() {
    run_all(smtp_cases());
}

#[test]
fn lmtp_next_hop_misbehaving_after_the_dot() {
    run_all(lmtp_cases());
}

#[test]
fn next_hop_replies_that_are_not_what_they_seem() {
    run_all(reply_format_cases());
}

/// `tls may` is opportunistic: a next hop that offers STARTTLS but refuses it (`454`, as a
/// server whose certificate cannot be read answers) gets the message in clear text; the
/// session is as it was before the refused command (RFC 3207 §4). It used to defer
/// every message.
#[test]
fn tls_may_goes_on_in_clear_text_when_starttls_is_refused() {
    let hop = Hop::start(Script {
        ehlo: Act::Say("250-hop.example\r\n250-STARTTLS\r\n250 8BITMIME\r\n"),
        ..good()
    });
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT tls may", hop.port);
    let mut t = Talk::start(&dir);
    let r = t.envelope("a@example.net", &["one@example.org"]);
    assert!(r[0].starts_with("250 "), "{r:?}: {:?}", hop.lines());
    assert_eq!(
        t.data(&super::tricky_message("clear")),
        "250 2.0.0 Queued! queued as HOP1"
    );
    let log = t.quit();
    assert!(log.contains("STARTTLS refused"), "{log}");
    assert_eq!(hop.confirmed(), 1);
    // `tls verify` does not go on without TLS.
    let dir = forward_dir(
        "queue/smtp-forward 127.0.0.1 PORT tls verify tls_name hop.example",
        hop.port,
    );
    let mut t = Talk::start(&dir);
    let r = t.envelope("a@example.net", &["one@example.org"]);
    assert!(r[0].starts_with("450 "), "{r:?}");
    t.quit();
}

/// A next hop that answers the dot with `250` and closes at once, the reply and the end
/// of the connection in one segment (Python, for TCP_CORK): it took the message, and the
/// end of the connection is no reply. Our client used to hear `451` (and send the message
/// again, a duplicate) whenever the end arrived with the reply.
#[test]
fn a_hop_that_closes_right_after_its_250_to_the_dot_took_the_message() {
    let Some(python) = crate::support::tool("python3") else {
        return;
    };
    const HOP: &str = r#"
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(5)
print(l.getsockname()[1], flush=True)
while True:
    c, _ = l.accept(); f = c.makefile("rb")
    c.sendall(b"220 hop.example ESMTP\r\n")
    while True:
        line = f.readline()
        if not line: break
        verb = line[:4].upper()
        if verb == b"DATA":
            c.sendall(b"354 go ahead\r\n")
            while f.readline() not in (b".\r\n", b""): pass
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
            c.sendall(b"250 2.0.0 Ok: queued as CLOSE1\r\n")
            c.shutdown(socket.SHUT_WR)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            print("TAKEN", flush=True)
            break
        c.sendall(b"221 bye\r\n" if verb == b"QUIT" else b"250 hop.example\r\n")
    c.close()
"#;
    let mut hop = std::process::Command::new(python)
        .arg("-c")
        .arg(HOP)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(hop.stdout.take().unwrap());
    let mut port = String::new();
    std::io::BufRead::read_line(&mut out, &mut port).unwrap();
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", port.trim().parse().unwrap());
    let mut replies = Vec::new();
    for _ in 0..3 {
        let mut t = Talk::start(&dir);
        t.envelope("a@example.net", &["one@example.org"]);
        replies.push(t.data(&super::tricky_message("close")));
        t.quit();
    }
    let _ = hop.kill();
    let _ = hop.wait();
    let mut taken = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut taken);
    assert_eq!(taken.matches("TAKEN").count(), 3);
    for r in replies {
        assert_eq!(r, "250 2.0.0 Queued! queued as CLOSE1");
    }
}

/// A next hop's refusal text reaches our client, cut so that the reply line stays within
/// RFC 5321's 512 octets (§4.5.3.1.5) however many bytes its characters take.
#[test]
fn a_long_refusal_text_is_cut_to_a_reply_line_smtp_allows() {
    let text: &'static str =
        Box::leak(format!("550 5.1.1 {}\r\n", "\u{1F600}".repeat(1000)).into_boxed_str());
    let hop = Hop::start(Script {
        rcpt: Act::Say(text),
        ..good()
    });
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
    let mut t = Talk::start(&dir);
    let r = t.envelope("a@example.net", &["one@example.org"]);
    t.quit();
    let start: String = r[0].chars().take(20).collect();
    assert!(r[0].starts_with("550 5.1.1 \u{1F600}"), "{start}");
    assert!(r[0].len() + 2 <= 512, "a reply line of {} bytes", r[0].len() + 2);
}
