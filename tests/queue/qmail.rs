//! queue/qmail-queue with a qmail-queue-compatible stand-in: a shell script that reads the
//! message from fd 0 and the envelope from fd 1 as qmail-queue does, keeps them only when
//! it exits 0 (so "stored" means exactly what a real queue would hold), and can fail in
//! every way the guarantee has to cover.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Talk, after_our_headers, cfg, files_in, read, tricky_message};
use crate::support::{TestDir, binary_command};

const STAND_IN: &str = r#"#!/bin/sh
# qmail-queue stand-in for tests. FAKE_QQ_MODE: ok (exit FAKE_QQ_EXIT), hang, hang-group,
# die (killed mid-transfer), custom (writes FAKE_QQ_CUSTOM to fd 6, exits 82).
d="$FAKE_QQ_DIR"
exec 9>"$d/fds.$$"
for f in 0 1 2 6; do echo "$f -> $(readlink /proc/$$/fd/$f)" >&9; done
ls -l /proc/$$/fd >&9 2>&1
exec 9>&-
case "$FAKE_QQ_MODE" in
  hang) echo $$ > "$d/pid.$$"; exec sleep 60 ;;
  hang-group) sleep 60 & echo $! > "$d/pid.$$"; exec sleep 60 ;;
  die) head -c 10 >/dev/null; kill -9 $$ ;;
esac
cat > "$d/msg.tmp.$$" || exit 54
cat <&1 > "$d/env.tmp.$$" || exit 54
case "$FAKE_QQ_MODE" in custom) printf '%s' "$FAKE_QQ_CUSTOM" >&6; rm -f "$d"/*.tmp.$$; exit 82 ;; esac
code=${FAKE_QQ_EXIT:-0}
if [ "$code" = 0 ]; then
  mv "$d/msg.tmp.$$" "$d/msg.$$" && mv "$d/env.tmp.$$" "$d/env.$$"
else
  rm -f "$d"/*.tmp.$$
fi
exit "$code"
"#;

struct Setup {
    dir: TestDir,
    out: PathBuf,
}

fn setup(extra: &[(&str, &str)]) -> Setup {
    let probe = TestDir::new(&[]);
    let script = probe.path().join("qmail-queue");
    std::fs::write(&script, STAND_IN).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = format!("queue/qmail-queue {} timeout 2", script.display());
    let mut pairs = vec![
        ("plugins", "rcpt_ok"),
        ("plugins", line.as_str()),
        ("rcpthosts", "example.org"),
    ];
    pairs.extend_from_slice(extra);
    let dir = TestDir::new(&cfg(&pairs));
    let out = dir.path().join("qq");
    std::fs::create_dir(&out).unwrap();
    // Keep the script's directory alive as long as the test's.
    std::mem::forget(probe);
    Setup { dir, out }
}

fn command(s: &Setup, mode: &str, env: &[(&str, &str)]) -> Command {
    let mut cmd = binary_command(&s.dir);
    cmd.env("FAKE_QQ_DIR", &s.out)
        .env("FAKE_QQ_MODE", mode)
        .env_remove("QMAILQUEUE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn stored(out: &Path, prefix: &str) -> Vec<PathBuf> {
    files_in(out)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect()
}

/// One message through the stand-in; returns the reply to the final dot.
fn deliver(s: &Setup, mode: &str, env: &[(&str, &str)]) -> String {
    let mut t = Talk::start_with(&s.dir, command(s, mode, env));
    let r = t.envelope("sender@example.net", &["rcpt@example.org", "second@example.org"]);
    assert!(r.iter().all(|r| r.starts_with("250")), "{r:?}");
    let reply = t.data(&tricky_message(mode));
    t.quit();
    reply
}

/// The reply's time is the session's clock, which a test fixes with `test_clock`.
#[test]
fn the_queued_reply_shows_the_sessions_clock() {
    let s = setup(&[("test_clock", "1700000000")]);
    let reply = deliver(&s, "ok", &[]);
    assert!(reply.starts_with("250 2.0.0 Queued! 1700000000 qp "), "{reply}");
}

#[test]
fn accepted_message_and_envelope_arrive_intact_without_the_client_socket() {
    let s = setup(&[]);
    let reply = deliver(&s, "ok", &[]);
    assert!(
        reply.starts_with("250 2.0.0 Queued! ") && reply.ends_with("<ok@client.example>"),
        "{reply}"
    );
    let msgs = stored(&s.out, "msg.");
    assert_eq!(msgs.len(), 1, "exactly one message queued");
    let msg = read(&msgs[0]);
    assert_eq!(
        after_our_headers(&msg),
        &tricky_message("ok")[..],
        "{}",
        String::from_utf8_lossy(&msg)
    );
    assert!(msg.starts_with(b"Authentication-Results: test.example.org; auth=none\nReceived: from "));
    let env = read(&stored(&s.out, "env.")[0]);
    assert_eq!(
        env,
        b"Fsender@example.net\0Trcpt@example.org\0Tsecond@example.org\0\0"
    );
    // fds 0, 1, 2 and 6 are our pipes; nothing is the client's socket.
    let fds = String::from_utf8_lossy(&read(&stored(&s.out, "fds.")[0])).into_owned();
    assert!(!fds.contains("socket:"), "the child inherited a socket:\n{fds}");
    for fd in ["0 -> pipe:", "1 -> pipe:", "2 -> pipe:", "6 -> pipe:"] {
        assert!(fds.lines().any(|l| l.starts_with(fd)), "{fd} missing:\n{fds}");
    }
}

#[test]
fn exit_codes_give_permanent_and_temporary_answers() {
    let s = setup(&[]);
    let r = deliver(&s, "ok", &[("FAKE_QQ_EXIT", "31")]);
    assert!(
        r.starts_with("552 5.3.0 mail server permanently rejected message"),
        "{r}"
    );
    let r = deliver(&s, "ok", &[("FAKE_QQ_EXIT", "53")]);
    assert!(r.starts_with("452 4.3.0 qq write error or disk full"), "{r}");
    let r = deliver(&s, "ok", &[("FAKE_QQ_EXIT", "1")]);
    assert!(r.starts_with("452 4.3.0 "), "{r}");
    let r = deliver(
        &s,
        "custom",
        &[("FAKE_QQ_CUSTOM", "Dyour message looks like spam (#5.7.1)")],
    );
    assert_eq!(r, "552 5.7.1 your message looks like spam (#5.7.1)");
    let r = deliver(&s, "custom", &[("FAKE_QQ_CUSTOM", "Zscanner busy, try later")]);
    assert_eq!(r, "452 4.3.0 scanner busy, try later");
    assert!(stored(&s.out, "msg.").is_empty(), "nothing may be queued");
}

#[test]
fn a_hanging_queue_is_killed_with_its_children_and_the_client_told_451() {
    let s = setup(&[]);
    for mode in ["hang", "hang-group"] {
        let started = std::time::Instant::now();
        let r = deliver(&s, mode, &[]);
        assert_eq!(r, "451 4.3.0 Mail system did not answer in time; try again later");
        assert!(started.elapsed().as_secs() < 15);
        for pidfile in stored(&s.out, "pid.") {
            let pid = String::from_utf8_lossy(&read(&pidfile)).trim().to_string();
            let gone = super::wait_for(5, || {
                !Path::new(&format!("/proc/{pid}")).exists()
                    || std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains(") Z "))
            });
            assert!(gone, "{mode}: process {pid} still running");
        }
    }
    assert!(stored(&s.out, "msg.").is_empty());
}

#[test]
fn a_queue_killed_mid_transfer_or_missing_gives_451() {
    let s = setup(&[]);
    let r = deliver(&s, "die", &[]);
    assert_eq!(r, "451 4.3.0 Unable to queue message; try again later");
    assert!(stored(&s.out, "msg.").is_empty());
    // Not executable (a permission error) and not there at all.
    let plain = s.dir.path().join("not-executable");
    std::fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    for program in [
        plain.to_string_lossy().into_owned(),
        "/nonexistent/qmail-queue".to_string(),
    ] {
        let r = deliver(&s, "ok", &[("QMAILQUEUE", &program)]);
        // Why it could not start (and the path) is for the log only.
        assert_eq!(
            r, "451 4.3.0 Unable to queue message; try again later",
            "{program}"
        );
    }
    let spool = files_in(&s.dir.spool());
    assert!(spool.is_empty(), "spool files left: {spool:?}");
}

/// Without a path in config/plugins the program is `$QMAIL/bin/qmail-queue`, qmail's own
/// variable (empty or unset: /var/qmail).
#[test]
fn without_a_path_the_program_is_found_through_qmail() {
    let home = TestDir::new(&[]);
    let bin = home.path().join("qmail/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("qmail-queue"), STAND_IN).unwrap();
    std::fs::set_permissions(bin.join("qmail-queue"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/qmail-queue timeout 2"),
        ("rcpthosts", "example.org"),
    ]));
    let out = dir.path().join("qq");
    std::fs::create_dir(&out).unwrap();
    let s = Setup { dir, out };
    let qmail = home.path().join("qmail");
    let r = deliver(&s, "ok", &[("QMAIL", qmail.to_str().unwrap())]);
    assert!(r.starts_with("250 2.0.0 Queued! "), "{r}");
    assert_eq!(stored(&s.out, "msg.").len(), 1);
    if !Path::new("/var/qmail/bin/qmail-queue").exists() {
        let r = deliver(&s, "ok", &[("QMAIL", "")]);
        assert_eq!(r, "451 4.3.0 Unable to queue message; try again later");
        assert_eq!(stored(&s.out, "msg.").len(), 1);
    }
}

#[test]
fn a_client_gone_after_the_dot_gets_nothing_queued() {
    let s = setup(&[("size_threshold", "0")]);
    let mut t = Talk::start_with(&s.dir, command(&s, "ok", &[]));
    t.envelope("sender@example.net", &["rcpt@example.org"]);
    let log = t.data_and_vanish(&tricky_message("vanish"));
    assert!(
        log.contains("client gone before queueing; message discarded"),
        "{log}"
    );
    assert!(
        stored(&s.out, "msg.").is_empty(),
        "a message for a vanished client was queued"
    );
    assert!(stored(&s.out, "fds.").is_empty(), "qmail-queue was started");
    assert!(files_in(&s.dir.spool()).is_empty(), "spool file left");
}

/// A NUL in an address separates qmail-queue's envelope entries: `x\0Tevil@evil.com\0Ty@`
/// would be three recipients, one of them remote. Refused at the command; a quoted local
/// part with a space goes into the envelope unquoted, as qmail-smtpd writes it.
#[test]
fn no_client_byte_can_add_an_envelope_entry() {
    let s = setup(&[]);
    let mut t = Talk::start_with(&s.dir, command(&s, "ok", &[]));
    assert!(t.cmd("EHLO client.example").starts_with("250"));
    let r = t.raw(b"MAIL FROM:<a\0Tevil@evil.example\0@example.net>\r\n");
    assert!(r.starts_with("501 "), "{r}");
    assert!(t.cmd("MAIL FROM:<sender@example.net>").starts_with("250"));
    for hostile in [
        &b"RCPT TO:<x\0Tevil@evil.com\0Ty@example.org>\r\n"[..],
        b"RCPT TO:<\"x\0Tevil@evil.com\0Ty\"@example.org>\r\n",
        b"RCPT TO:<x@example.org\0Tevil@evil.com>\r\n",
    ] {
        let r = t.raw(hostile);
        assert!(r.starts_with("501 "), "{}: {r}", String::from_utf8_lossy(hostile));
    }
    assert!(t.cmd("RCPT TO:<\"x y\"@example.org>").starts_with("250"));
    assert!(t.cmd("RCPT TO:<y@example.org>").starts_with("250"));
    assert!(t.data(&tricky_message("nul")).starts_with("250 "));
    t.quit();
    let env = read(&stored(&s.out, "env.")[0]);
    assert_eq!(
        env,
        b"Fsender@example.net\0Tx y@example.org\0Ty@example.org\0\0",
        "{}",
        String::from_utf8_lossy(&env)
    );
}
