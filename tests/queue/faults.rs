//! Faults between the final dot and the backend's answer: a next hop that never answers,
//! hangs after the dot, dies mid-transfer, times us out while the client uploads; LMTP
//! with mixed per-recipient results; a full file system; a permission error. The next hops
//! here are scripted servers on loopback (the real Postfix and Dovecot runs are in
//! postfix.rs and dovecot.rs); each records whether it confirmed the message.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Talk, cfg, files_in, root_or_skip, tricky_message};
use crate::support::TestDir;

/// What a scripted next hop does after it read the final dot (or instead).
#[derive(Clone, Copy, PartialEq)]
enum Hop {
    Silent,
    HangAfterDot,
    DieMidTransfer,
    Reply(&'static str),
    IdleTimeoutThenAccept,
    Lmtp(&'static str),
}

struct FakeHop {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

fn fake_hop(hop: Hop) -> FakeHop {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || serve(conn, hop, n, &log));
        }
    });
    FakeHop { port, seen }
}

fn serve(conn: TcpStream, hop: Hop, n: usize, log: &Mutex<Vec<String>>) {
    if hop == Hop::Silent {
        std::thread::sleep(Duration::from_secs(10));
        return;
    }
    let mut r = BufReader::new(conn.try_clone().unwrap());
    let mut w = conn;
    let _ = w.write_all(b"220 hop.example ESMTP\r\n");
    let mut rcpts = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        log.lock().unwrap().push(format!("{n}: {}", line.trim_end()));
        let answer: String = match verb.as_str() {
            "EHLO" | "LHLO" => "250-hop.example\r\n250 8BITMIME\r\n".into(),
            "MAIL" | "RSET" | "NOOP" => "250 2.1.0 ok\r\n".into(),
            "RCPT" => {
                rcpts += 1;
                "250 2.1.5 ok\r\n".into()
            }
            "QUIT" => {
                let _ = w.write_all(b"221 bye\r\n");
                return;
            }
            "DATA" if hop == Hop::IdleTimeoutThenAccept && n == 0 => {
                let _ = w.write_all(b"421 4.4.2 hop.example Error: timeout exceeded\r\n");
                return;
            }
            "DATA" => {
                let _ = w.write_all(b"354 go\r\n");
                if hop == Hop::DieMidTransfer {
                    let mut first = String::new();
                    let _ = r.read_line(&mut first);
                    return;
                }
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 {
                        return;
                    }
                    if l == ".\r\n" {
                        break;
                    }
                }
                match hop {
                    Hop::HangAfterDot => {
                        std::thread::sleep(Duration::from_secs(10));
                        return;
                    }
                    Hop::Reply(text) => {
                        if text.starts_with('2') {
                            log.lock().unwrap().push(format!("{n}: CONFIRMED"));
                        }
                        text.into()
                    }
                    Hop::IdleTimeoutThenAccept => {
                        log.lock().unwrap().push(format!("{n}: CONFIRMED"));
                        "250 2.0.0 Ok: queued as ABC123\r\n".into()
                    }
                    Hop::Lmtp(text) => text.into(),
                    _ => return,
                }
            }
            _ => "500 what\r\n".into(),
        };
        let _ = rcpts;
        if w.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn forward_dir(plugin: &str, port: u16) -> TestDir {
    let line = format!("{plugin} timeout 1");
    let line = line.replace("PORT", &port.to_string());
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]))
}

fn confirmed(hop: &FakeHop) -> usize {
    hop.seen
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.ends_with("CONFIRMED"))
        .count()
}

#[test]
fn next_hop_faults_give_4xx_and_its_refusals_pass_through() {
    // Never answers: the recipient gets 450 after the timeout, nothing goes further.
    let hop = fake_hop(Hop::Silent);
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
    let mut t = Talk::start(&dir);
    let started = Instant::now();
    let r = t.envelope("a@example.net", &["rcpt@example.org"]);
    assert_eq!(
        r[0],
        "450 4.4.1 Temporary failure reaching the next hop; try again later"
    );
    assert!(started.elapsed() < Duration::from_secs(8));
    assert_eq!(t.cmd("DATA"), "503 5.5.1 RCPT first");
    t.quit();

    let cases: [(Hop, &str); 5] = [
        (
            Hop::HangAfterDot,
            "451 4.3.0 Unable to queue message (127.0.0.1:PORT: reading the reply: ",
        ),
        (
            Hop::DieMidTransfer,
            "451 4.3.0 Unable to queue message (127.0.0.1:PORT: ",
        ),
        (
            Hop::Reply("554 5.7.1 rejected as spam\r\n"),
            "552 5.7.1 rejected as spam",
        ),
        (
            Hop::Reply("452 4.3.1 insufficient system storage\r\n"),
            "452 4.3.1 insufficient system storage",
        ),
        (
            Hop::Reply("250 2.0.0 Ok: queued as XYZ\r\n"),
            "250 2.0.0 Queued! queued as XYZ",
        ),
    ];
    for (behaviour, want) in cases {
        let hop = fake_hop(behaviour);
        let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
        let mut t = Talk::start(&dir);
        let r = t.envelope("a@example.net", &["rcpt@example.org"]);
        assert!(r[0].starts_with("250"), "{r:?}");
        let reply = t.data(&tricky_message("fault"));
        let want = want.replace("PORT", &hop.port.to_string());
        assert!(reply.starts_with(&want), "wanted {want:?}, got {reply:?}");
        t.quit();
        let expected = usize::from(reply.starts_with("250"));
        assert_eq!(confirmed(&hop), expected, "{want}");
        assert!(files_in(&dir.spool()).is_empty());
    }
}

#[test]
fn a_session_the_next_hop_closed_during_the_upload_is_replayed_once() {
    let hop = fake_hop(Hop::IdleTimeoutThenAccept);
    let dir = forward_dir("queue/smtp-forward 127.0.0.1 PORT", hop.port);
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["one@example.org", "two@example.org"]);
    assert_eq!(
        t.data(&tricky_message("replay")),
        "250 2.0.0 Queued! queued as ABC123"
    );
    t.quit();
    let seen = hop.seen.lock().unwrap().clone();
    assert_eq!(confirmed(&hop), 1, "{seen:?}");
    for rcpt in ["one", "two"] {
        let line = format!("1: RCPT TO:<{rcpt}@example.org>");
        assert!(seen.contains(&line), "{line} not replayed: {seen:?}");
    }
}

#[test]
fn lmtp_mixed_results_after_data_are_a_4xx_never_a_250() {
    let hop = fake_hop(Hop::Lmtp(
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

    let hop = fake_hop(Hop::Lmtp(
        "550 5.1.1 <one@example.org> gone\r\n552 5.2.2 <two@example.org> over quota\r\n",
    ));
    let dir = forward_dir("queue/lmtp 127.0.0.1:PORT", hop.port);
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["one@example.org", "two@example.org"]);
    assert_eq!(
        t.data(&tricky_message("allfail")),
        "552 5.1.1 <one@example.org> gone"
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
