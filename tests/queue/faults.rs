//! Faults between the final dot and the backend's answer: a next hop that never answers,
//! hangs after the dot, dies mid-transfer, times us out while the client uploads; LMTP
//! with mixed per-recipient results; a full file system; a permission error. The next hops
//! here are scripted servers on loopback (hop.rs; the real Postfix and Dovecot runs are in
//! postfix.rs and dovecot.rs, every way a next hop can break the protocol in
//! misbehaving.rs); each records whether it took the message.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use super::hop::{Act, Hop, Script};
use super::{Talk, cfg, files_in, root_or_skip, tricky_message};
use crate::support::TestDir;

/// A config forwarding to the hop (`PORT` in `plugin` is replaced), timeout 2 s.
pub fn forward_dir(plugin: &str, port: u16) -> TestDir {
    let line = format!("{plugin} timeout 2");
    let line = line.replace("PORT", &port.to_string());
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]))
}

#[test]
fn next_hop_faults_give_4xx_and_its_refusals_pass_through() {
    // Never answers: the recipient gets 450 after the timeout, nothing goes further.
    let hop = Hop::start(Script {
        greeting: Act::Hang,
        ..Script::good()
    });
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
    let mut t = Talk::start(&dir);
    let started = Instant::now();
    let r = t.envelope("a@example.net", &["rcpt@example.org"]);
    assert_eq!(r[0], "450 4.4.2 Next hop did not answer in time");
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(t.cmd("DATA"), "503 5.5.1 RCPT first");
    let log = t.quit();
    // The details are in the log, not in the reply.
    assert!(log.contains("waiting for the reply: timed out"), "{log}");

    let cases: [(Script, &str); 8] = [
        (
            Script {
                dot: Act::Hang,
                ..Script::good()
            },
            "451 4.4.2 Next hop did not answer in time",
        ),
        (
            Script {
                close_mid_message: true,
                ..Script::good()
            },
            "451 4.4.2 Next hop closed the connection; try again later",
        ),
        // A permanent refusal keeps its code: 554 is not "storage exceeded" (552).
        (
            Script::answering("554 5.7.1 rejected as spam\r\n"),
            "554 5.7.1 rejected as spam",
        ),
        (
            Script::answering("550 5.7.1 no thanks\r\n"),
            "550 5.7.1 no thanks",
        ),
        (
            Script::answering("452 4.3.1 insufficient system storage\r\n"),
            "452 4.3.1 insufficient system storage",
        ),
        // Without an enhanced status code of its own, the refusal gets the class's.
        (
            Script::answering("554 rejected as spam\r\n"),
            "554 5.0.0 rejected as spam",
        ),
        (
            Script::answering("452 try again later\r\n"),
            "452 4.0.0 try again later",
        ),
        (
            Script::answering("250 2.0.0 Ok: queued as XYZ\r\n"),
            "250 2.0.0 Queued! queued as XYZ",
        ),
    ];
    for (script, want) in cases {
        let hop = Hop::start(script);
        let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
        let mut t = Talk::start(&dir);
        let r = t.envelope("a@example.net", &["rcpt@example.org"]);
        assert!(r[0].starts_with("250"), "{r:?}");
        let reply = t.data(&tricky_message("fault"));
        assert_eq!(reply, want);
        t.quit();
        let expected = usize::from(reply.starts_with("250"));
        assert_eq!(hop.confirmed(), expected, "{want}");
        assert!(files_in(&dir.spool()).is_empty());
    }
}

#[test]
fn a_session_the_next_hop_closed_during_the_upload_is_replayed_once() {
    let hop = Hop::start(Script {
        data: Act::SayThenClose("421 4.4.2 hop.example Error: timeout exceeded\r\n"),
        first_only: true,
        ..Script::answering("250 2.0.0 Ok: queued as ABC123\r\n")
    });
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["one@example.org", "two@example.org"]);
    assert_eq!(
        t.data(&tricky_message("replay")),
        "250 2.0.0 Queued! queued as HOP1"
    );
    t.quit();
    let seen = hop.lines();
    assert_eq!(hop.confirmed(), 1, "{seen:?}");
    for rcpt in ["one", "two"] {
        let line = format!("1: RCPT TO:<{rcpt}@example.org>");
        assert!(seen.contains(&line), "{line} not replayed: {seen:?}");
    }
}

#[test]
fn lmtp_mixed_results_after_data_are_a_4xx_never_a_250() {
    let hop = Hop::start(Script::answering(
        "250 2.0.0 <one@example.org> Saved\r\n452 4.2.2 <two@example.org> Mailbox is full\r\n",
    ));
    let dir = forward_dir("queue/lmtp 127.0.0.1:PORT", hop.port);
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["one@example.org", "two@example.org"]);
    assert_eq!(
        t.data(&tricky_message("mixed")),
        "452 4.2.0 Delivery failed for some recipients; try again later"
    );
    let log = t.quit();
    assert!(
        log.contains("LMTP delivered to one@example.org but not to two@example.org"),
        "{log}"
    );

    let hop = Hop::start(Script::answering(
        "550 5.1.1 <one@example.org> gone\r\n552 5.2.2 <two@example.org> over quota\r\n",
    ));
    let dir = forward_dir("queue/lmtp 127.0.0.1:PORT", hop.port);
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["one@example.org", "two@example.org"]);
    assert_eq!(
        t.data(&tricky_message("allfail")),
        "550 5.1.1 <one@example.org> gone"
    );
    t.quit();
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: std::path::PathBuf, size: &str) -> Tmpfs {
        std::fs::create_dir_all(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=1777"), "tmpfs"])
            .arg(&path)
            .status()
            .unwrap()
            .success();
        assert!(ok, "mounting a tmpfs failed");
        Tmpfs(path)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn big_message() -> Vec<u8> {
    let mut m = b"Subject: big\n\n".to_vec();
    for i in 0..6000 {
        m.extend_from_slice(
            format!("line {i:05} of a message that does not fit on the small disk\n").as_bytes(),
        );
    }
    m
}

#[test]
fn a_full_disk_gives_451_and_leaves_nothing_behind() {
    if !root_or_skip("mounting a tmpfs") {
        return;
    }
    let probe = TestDir::new(&[]);
    let full = Tmpfs::mount(probe.path().join("full"), "128k");
    // The maildir on the full disk.
    let line = format!("queue/maildir {}/maildir", full.0.display());
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["rcpt@example.org"]);
    assert_eq!(t.data(&big_message()), "451 4.3.0 queue error (write)");
    t.quit();
    let left = files_in(&full.0);
    assert!(left.is_empty(), "files left on the full disk: {left:?}");
    // The spool on the full disk.
    let spool = full.0.display().to_string();
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("rcpthosts", "example.org"),
        ("spool_dir", &spool),
        ("size_threshold", "0"),
    ]));
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["rcpt@example.org"]);
    assert_eq!(
        t.data(&big_message()),
        "451 4.3.0 Temporary failure writing the message; try again later"
    );
    t.quit();
    assert!(files_in(&full.0).is_empty());
    assert!(dir.messages().is_empty());
}

#[test]
fn a_permission_error_gives_451() {
    if !root_or_skip("running the server as nobody") {
        return;
    }
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/locked/maildir"),
        ("rcpthosts", "example.org"),
    ]));
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(dir.spool(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::create_dir(dir.path().join("locked")).unwrap();
    std::fs::set_permissions(dir.path().join("locked"), std::fs::Permissions::from_mode(0o700)).unwrap();
    // A copy of the binary nobody can reach (the build tree may be under /root).
    let copy = dir.path().join("qpsmtpd-rs");
    std::fs::copy(crate::support::binary(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = Command::new(&copy);
    cmd.arg("--config")
        .arg(dir.config())
        .current_dir(dir.path())
        .env_remove("QPSMTPD_CONFIG");
    cmd.uid(65534).gid(65534);
    let mut t = Talk::start_with(&dir, cmd);
    t.envelope("a@example.net", &["rcpt@example.org"]);
    assert_eq!(t.data(&tricky_message("perm")), "451 4.3.0 queue error (mkdir)");
    t.quit();
    assert!(dir.messages().is_empty());
    assert!(files_in(&dir.spool()).is_empty());
}
