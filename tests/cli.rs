//! The binary as a process: exit codes, flags, stderr safety, pipelining, a large message.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};
use std::time::Duration;

use qpsmtpd_rs::io::Scripted;
use qpsmtpd_rs::peer::{self, Overrides, SocketFacts};
use qpsmtpd_rs::server::{self, View};
use qpsmtpd_rs::startup::{self, Options};

use crate::clients::delivering_config;
use crate::support::{TestDir, binary, binary_command, spawn_inetd};

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn broken_config_answers_421_and_exits_1() {
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok"), ("plugins", "nonexistent_plugin")]));
    let out = binary_command(&dir).stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("421 4.3.0 ") && stdout.ends_with("\r\n"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("plugins, line 2: plugin nonexistent_plugin not found"),
        "{stderr}"
    );
}

#[test]
fn bad_flags_exit_2_and_help_and_version_exit_0() {
    let out = Command::new(binary()).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage: qpsmtpd-rs"));
    let out = Command::new(binary()).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("qpsmtpd-rs "));
    let out = Command::new(binary()).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--config DIR"));
}

#[test]
fn transcript_view_shows_both_sides() {
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok")]));
    let mut child = binary_command(&dir)
        .arg("--transcript")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"HELO me.example\nQUIT\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("S: 220 "), "{text}");
    assert!(
        text.contains("C: HELO me.example\nS: 250 test.example.org Hi [127.0.0.1]"),
        "{text}"
    );
    assert!(text.contains("C: QUIT\nS: 221 "), "{text}");
}

/// xinetd and systemd (by default) make fd 2 the client's socket: log lines must never
/// appear in the SMTP stream, even with a logging plugin that writes to stderr.
#[test]
fn no_log_lines_on_the_connection_when_stderr_is_the_socket() {
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("logging", "logging/warn LOGDEBUG"),
    ]));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let fd0: OwnedFd = server.try_clone().unwrap().into();
    let fd1: OwnedFd = server.try_clone().unwrap().into();
    let fd2: OwnedFd = server.into();
    let mut child = binary_command(&dir)
        .stdin(Stdio::from(fd0))
        .stdout(Stdio::from(fd1))
        .stderr(Stdio::from(fd2))
        .spawn()
        .unwrap();
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(b"HELO x.example\r\nFOO\r\nQUIT\r\n").unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    child.wait().unwrap();
    for line in all.lines() {
        assert!(
            line.len() >= 4 && line[..3].bytes().all(|b| b.is_ascii_digit()),
            "not an SMTP reply: {line:?}\n{all}"
        );
    }
    assert_eq!(all.lines().count(), 4, "{all}");
}

/// RFC 2920: the replies to a pipelined group leave in one write; nothing is lost.
#[test]
fn pipelined_group_is_answered_in_one_write() {
    let dir = TestDir::new(&delivering_config());
    let conn = peer::connection(
        "t",
        &|_| None,
        &SocketFacts {
            is_socket: true,
            ..SocketFacts::default()
        },
        &Overrides::default(),
    );
    let options = Options {
        config_dir: dir.config(),
        qmail_control: None,
        conn,
        sinks: Some(Vec::new()),
    };
    let mut session = startup::open(options).map_err(|f| f.error).unwrap();
    let mut transport = Scripted::new(vec![
        b"EHLO c.example\r\n".to_vec(),
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\nDATA\r\n".to_vec(),
        b"Subject: p\r\n\r\nbody\r\n.\r\nQUIT\r\n".to_vec(),
    ]);
    server::serve(&mut session, &mut transport, View::default());
    let text = String::from_utf8_lossy(&transport.written);
    assert_eq!(
        transport.writes, 4,
        "greeting, EHLO, the group of four, then 250+221:\n{text}"
    );
    assert!(text.contains("250 2.1.0 <a@b.example>, sender OK - how exciting to get mail from you!\r\n250 2.1.5 <x@example.org>, recipient ok\r\n250 2.1.5 <y@example.org>, recipient ok\r\n354 "));
    assert!(text.ends_with(
        "250 2.0.0 Queued!\r\n221 2.0.0 test.example.org closing connection. Have a wonderful day.\r\n"
    ));
    assert_eq!(dir.messages().len(), 1);
}

/// A client that pipelines QUIT after the final dot and then shuts its sending side still
/// reads our answers: its message is queued, not mistaken for a vanished client's.
#[test]
fn pipelined_quit_and_half_close_still_queues() {
    let dir = TestDir::new(&delivering_config());
    let (mut child, mut client) = spawn_inetd(binary_command(&dir));
    client
        .write_all(b"HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
        .unwrap();
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    while !line.starts_with("354") {
        line.clear();
        reader.read_line(&mut line).unwrap();
    }
    client
        .write_all(b"Subject: half\r\n\r\nbody\r\n.\r\nQUIT\r\n")
        .unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    child.wait().unwrap();
    assert!(
        rest.starts_with("250 2.0.0 Queued!") && rest.contains("\r\n221 "),
        "{rest}"
    );
    assert_eq!(dir.messages().len(), 1);
    assert_eq!(
        std::fs::read_dir(dir.spool()).unwrap().count(),
        0,
        "spool file left behind"
    );
}

/// A message far larger than the in-memory limit is streamed to the spool, not held whole:
/// stored byte for byte (dot-stuffing undone, LF line ends) while the process's peak
/// memory stays below half the message's size. (The figures for a 100 MB message, in a
/// release build, are the benchmark's: `bench/run`.)
#[test]
fn a_large_message_is_stored_intact_without_being_held_in_memory() {
    const SIZE: usize = 32 << 20;
    let dir = TestDir::new(&delivering_config());
    let (child, client) = spawn_inetd(binary_command(&dir));
    let pid = child.id();
    client.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut w = client.try_clone().unwrap();
    let mut r = BufReader::new(client);
    let mut line = String::new();
    let mut expect = |r: &mut BufReader<std::net::TcpStream>, code: &str| loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        assert!(line.starts_with(code), "expected {code}, got {line:?}");
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    };
    expect(&mut r, "220");
    w.write_all(b"HELO big.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
        .unwrap();
    for code in ["250", "250", "250", "354"] {
        expect(&mut r, code);
    }
    // Numbered lines, every seventh starting with a dot (sent doubled, stored single).
    let mut stored_body = b"Subject: big\n\n".to_vec();
    let mut chunk = b"Subject: big\r\n\r\n".to_vec();
    let mut n = 0u64;
    while stored_body.len() < SIZE {
        let text = format!(
            "{}line {n:09} of a large message, streamed to the spool",
            if n.is_multiple_of(7) { "." } else { "" }
        );
        stored_body.extend_from_slice(text.as_bytes());
        stored_body.push(b'\n');
        if text.starts_with('.') {
            chunk.push(b'.');
        }
        chunk.extend_from_slice(text.as_bytes());
        chunk.extend_from_slice(b"\r\n");
        if chunk.len() >= 1 << 20 {
            w.write_all(&chunk).unwrap();
            chunk.clear();
        }
        n += 1;
    }
    chunk.extend_from_slice(b".\r\n");
    w.write_all(&chunk).unwrap();
    expect(&mut r, "250");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: usize = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("VmHWM in /proc/PID/status");
    w.write_all(b"QUIT\r\n").unwrap();
    expect(&mut r, "221");
    assert!(
        hwm_kb * 1024 < SIZE / 2,
        "peak RSS {hwm_kb} kB for a {} MB message: it was held in memory",
        SIZE >> 20
    );
    let stored = dir.only_message();
    assert!(
        stored.ends_with(&stored_body),
        "the stored message differs from what was sent ({} bytes stored, {} sent)",
        stored.len(),
        stored_body.len()
    );
    assert!(
        dir.spool_files().is_empty(),
        "spool file left: {:?}",
        dir.spool_files()
    );
}

/// The same rule in-process, deterministically: the liveness probe says the client is gone.
#[test]
fn vanished_client_in_process() {
    let dir = TestDir::new(&delivering_config());
    let conn = peer::connection(
        "t",
        &|_| None,
        &SocketFacts {
            is_socket: true,
            ..SocketFacts::default()
        },
        &Overrides::default(),
    );
    let options = Options {
        config_dir: dir.config(),
        qmail_control: None,
        conn,
        sinks: Some(Vec::new()),
    };
    let mut session = startup::open(options).map_err(|f| f.error).unwrap();
    let mut transport = Scripted::new(vec![
        b"HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n".to_vec(),
        b"Subject: gone\r\n\r\nbody\r\n.\r\n".to_vec(),
    ]);
    transport.gone = true;
    server::serve(&mut session, &mut transport, View::default());
    let text = String::from_utf8_lossy(&transport.written);
    assert!(!text.contains("Queued"), "{text}");
    assert_eq!(dir.messages().len(), 0);
    assert_eq!(std::fs::read_dir(dir.spool()).unwrap().count(), 0);
}

/// RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets with its CRLF, and a log line
/// has a bound too, however long a peer fact is (a 10 KB TCPREMOTEINFO used to make a
/// 15 KB EHLO line and log lines as long).
#[test]
fn reply_and_log_lines_are_bounded_whatever_the_peer_facts() {
    use crate::support::transcript::{Step, Transcript};
    use crate::support::{run_in_process, run_over_socket};
    let t = Transcript {
        env: vec![
            ("TCPREMOTEIP".into(), "192.0.2.1".into()),
            ("TCPREMOTEINFO".into(), "i".repeat(10_000)),
        ],
        steps: vec![Step::Send(
            b"EHLO c.example\r\nHELO c.example\r\nQUIT\r\n".to_vec(),
        )],
        ..Transcript::default()
    };
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok")]));
    let runs = [
        ("binary", run_over_socket(&t, binary_command(&dir), false)),
        ("in-process", run_in_process(&t, &dir)),
    ];
    for (how, run) in runs {
        assert!(
            run.lines
                .iter()
                .any(|l| l.starts_with("250-test.example.org Hi iiii")),
            "{how}: {:?}",
            run.lines
        );
        assert!(run.lines.iter().any(|l| l.starts_with("221 ")), "{how}");
        for line in &run.lines {
            assert!(
                line.len() + 2 <= 512,
                "{how}: a reply line of {} octets",
                line.len() + 2
            );
        }
        assert!(
            run.log.iter().any(|l| l.contains("Connection from iiii")),
            "{how}"
        );
        for line in &run.log {
            assert!(
                line.len() <= qpsmtpd_rs::log::MAX_LINE,
                "{how}: a log line of {} bytes",
                line.len()
            );
        }
    }
}

/// Input the client sent that we never read must not turn our close into a TCP reset, which
/// can destroy the last reply in flight (the 221 here, a 421 after a timeout): the server
/// half-closes, reads what is left for a bounded time and then closes, so the client sees
/// the reply and then an orderly end of the connection.
#[test]
fn unread_input_at_the_end_is_drained_not_reset() {
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok")]));
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut writer = client.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let mut bytes = b"QUIT\r\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 300 * 1024));
        let _ = writer.write_all(&bytes);
        let _ = writer.shutdown(std::net::Shutdown::Write);
    });
    let mut got = Vec::new();
    let mut reader = client;
    let end = loop {
        let mut buf = [0u8; 4096];
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break Err(e),
        }
    };
    sender.join().unwrap();
    child.wait().unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("\r\n221 2.0.0 "), "{text}");
    assert!(end.is_ok(), "the connection ended in {end:?} after {text:?}");
}

/// The drain at the end is bounded: a client that never stops sending cannot keep the
/// process after QUIT.
#[test]
fn draining_at_the_end_is_bounded() {
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok")]));
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    let mut writer = client.try_clone().unwrap();
    let started = std::time::Instant::now();
    let sender = std::thread::spawn(move || {
        let mut first = b"QUIT\r\n".to_vec();
        first.extend(std::iter::repeat_n(b'x', 100 * 1024));
        let _ = writer.write_all(&first);
        let junk = [b'x'; 4096];
        while started.elapsed() < Duration::from_secs(30) && writer.write_all(&junk).is_ok() {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            eprintln!("the process ended {:?} after QUIT", started.elapsed());
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still running while the client sends"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    drop(client);
    sender.join().unwrap();
}
