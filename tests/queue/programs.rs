//! What the client hears when a queue program (qmail-queue, sendmail, Postfix's sendmail,
//! Exim's `-bS`) fails without a definite answer: a plain text, never the program's
//! path, an OS error or its own words about our system; the details are in the log.
//! The programs are small shell scripts that fail on purpose (the real qmail-queue,
//! Postfix and Exim runs are in qmail.rs, postfix.rs and exim.rs).

use std::os::unix::fs::PermissionsExt;

use super::{Talk, cfg, tricky_message};
use crate::support::TestDir;

/// One way for a program to fail, and what the client and the log must show.
struct Case {
    name: &'static str,
    /// The script's body (after `#!/bin/sh`); `None`: the program does not exist.
    script: Option<&'static str>,
    /// The reply to the final dot, exactly.
    reply: &'static str,
    /// Something the log must say.
    logged: &'static str,
}

const TIMED_OUT: &str = "451 4.3.0 Mail system did not answer in time; try again later";
const BROKEN: &str = "451 4.3.0 Unable to queue message; try again later";

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "hangs past its timeout",
            script: Some("exec sleep 30"),
            reply: TIMED_OUT,
            logged: "timed out after 1s; killed",
        },
        Case {
            name: "is not there",
            script: None,
            reply: BROKEN,
            logged: "cannot start: No such file or directory",
        },
        Case {
            name: "is killed by a signal",
            script: Some("kill -9 $$"),
            reply: BROKEN,
            logged: "killed by signal 9",
        },
        Case {
            name: "exits 0 without reading the message",
            script: Some("exit 0"),
            reply: BROKEN,
            logged: "before reading the whole",
        },
    ]
}

/// The plugin line for `kind` running `program`, timeout 1 s.
fn plugin_line(kind: &str, program: &str) -> String {
    match kind {
        "qmail-queue" => format!("queue/qmail-queue {program} timeout 1"),
        "sendmail" => format!("queue/sendmail {program} timeout 1"),
        "postfix-queue" => format!("queue/postfix-queue sendmail {program} timeout 1"),
        "exim-bsmtp" => format!("queue/exim-bsmtp exim_path {program} timeout 1"),
        _ => unreachable!(),
    }
}

/// One message through `kind` running the case's program: the reply and the log.
fn deliver(kind: &str, script: Option<&str>) -> (String, String) {
    let mut message = tricky_message("program");
    message.extend(std::iter::repeat_n(b'x', 200_000));
    message.push(b'\n');
    deliver_message(kind, script, &message)
}

/// [`deliver`] with this message.
fn deliver_message(kind: &str, script: Option<&str>, message: &[u8]) -> (String, String) {
    let probe = TestDir::new(&[]);
    let program = probe.path().join("program");
    if let Some(body) = script {
        // A large message does not fit a pipe, so "exits 0 without reading" is seen.
        std::fs::write(&program, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let line = plugin_line(kind, &program.to_string_lossy());
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let mut cmd = crate::support::binary_command(&dir);
    cmd.env_remove("QMAILQUEUE");
    let mut t = Talk::start_with(&dir, cmd);
    let r = t.envelope("a@example.net", &["rcpt@example.org"]);
    assert!(r[0].starts_with("250"), "{r:?}");
    let reply = t.data(message);
    (reply, t.quit())
}

#[test]
fn a_queue_program_that_fails_gives_a_plain_451_and_the_details_in_the_log() {
    let mut problems = Vec::new();
    for kind in ["qmail-queue", "sendmail", "postfix-queue", "exim-bsmtp"] {
        for case in cases() {
            let (reply, log) = deliver(kind, case.script);
            if reply != case.reply {
                problems.push(format!(
                    "{kind} {}: wanted {:?}, got {reply:?}",
                    case.name, case.reply
                ));
            }
            if !log.contains(case.logged) {
                problems.push(format!(
                    "{kind} {}: the log does not say {:?}:\n{log}",
                    case.name, case.logged
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A message small enough to fit in the pipe is written in full whether or not the
/// program reads it: a program that exits 0 without reading it (a wrapper whose own
/// configuration is broken, `exec true`) must not make the client hear 250 either.
#[test]
fn a_queue_program_that_exits_0_without_reading_a_small_message_is_no_250() {
    let mut problems = Vec::new();
    for kind in ["qmail-queue", "sendmail", "postfix-queue", "exim-bsmtp"] {
        let (reply, log) = deliver_message(kind, Some("exit 0"), &tricky_message("small"));
        if reply != BROKEN || !log.contains("before reading the whole") {
            problems.push(format!("{kind}: {reply:?}\n{log}"));
        }
        // One that reads everything and exits 0 has the message.
        let (reply, _) = deliver_message(
            kind,
            Some("cat > /dev/null; cat <&1 > /dev/null; exit 0"),
            &tricky_message("small"),
        );
        if !reply.starts_with("250 ") {
            problems.push(format!("{kind}, reading everything: {reply:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// What a sendmail program writes goes to the log; a quiet one adds no line.
#[test]
fn what_a_sendmail_program_says_goes_to_the_log() {
    for kind in ["sendmail", "postfix-queue"] {
        let (reply, log) = deliver_message(
            kind,
            Some("cat > /dev/null; echo 'warning: odd' >&2; exit 0"),
            &tricky_message("said"),
        );
        assert!(reply.starts_with("250 "), "{kind}: {reply}");
        assert!(log.contains(" said: warning: odd"), "{kind}: {log}");
        let (reply, log) = deliver_message(kind, Some("cat > /dev/null; exit 0"), &tricky_message("quiet"));
        assert!(reply.starts_with("250 "), "{kind}: {reply}");
        assert!(!log.contains(" said:"), "{kind}: {log}");
    }
}

/// Exim's temporary error replies speak about our own system (its spool, its
/// configuration): the client gets a plain text, the log Exim's words. A permanent one
/// (a policy refusal from `acl_not_smtp`) keeps Exim's text.
#[test]
fn exims_temporary_error_text_stays_in_the_log() {
    let body = "cat > /dev/null\n\
                echo '451 Failed to create spool file /var/spool/exim4/input/1xZ-D: Permission denied'\n\
                exit 1";
    let (reply, log) = deliver("exim-bsmtp", Some(body));
    assert_eq!(reply, "452 4.3.0 Mail system unavailable; try again later");
    assert!(log.contains("exim: 451 Failed to create spool file"), "{log}");
    let body = "cat > /dev/null\necho '550 5.7.1 refused by policy'\nexit 1";
    let (reply, _) = deliver("exim-bsmtp", Some(body));
    assert_eq!(reply, "552 5.7.1 refused by policy");
}
