//! External plugins through the binary as a super-server starts it, and what each mode
//! costs. (Their behaviour, one transcript per case, is in tests/transcripts/external/.)

use std::io::{BufReader, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{TestDir, binary_command, tool};

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// xinetd hands the client's socket over as fds 0, 1 and 2: a plugin's stderr lines and
/// its fds must stay away from it, and the client sees nothing but SMTP replies.
#[test]
fn plugins_never_touch_the_socket_when_stderr_is_the_socket() {
    let dir = TestDir::new(&cfg(&[
        ("plugin_dirs", "$ROOT/tests/fixtures/plugins"),
        ("plugins", "stderr_talk"),
        ("plugins", "fd_check"),
        ("plugins", "rcpt_ok"),
        ("rcpthosts", "example.org"),
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
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(b"HELO x.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@example.org>\r\nQUIT\r\n")
        .unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    child.wait().unwrap();
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines.len(), 5, "{all}");
    assert!(lines[3].starts_with("250 2.1.5"), "fd_check refused: {all}");
    for line in lines {
        assert!(
            line.len() >= 4 && line[..3].bytes().all(|b| b.is_ascii_digit()),
            "not an SMTP reply: {line:?}\n{all}"
        );
    }
}

/// One trivial plugin per language and mode: it reads each request and answers DECLINED.
fn trivial_plugins() -> Vec<(&'static str, &'static str, String)> {
    let sh_once = "#!/bin/sh\n# qpsmtpd-rs: hooks rcpt\nwhile read -r k v; do [ -z \"$k\" ] && break; done\necho DECLINED\n";
    let sh_co = "#!/bin/sh\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode coprocess\nwhile read -r k v; do [ -z \"$k\" ] && echo DECLINED; done\n";
    let py = "#!/usr/bin/env python3\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode MODE\nimport sys\nfor line in sys.stdin:\n    if line == '\\n':\n        print('DECLINED', flush=True)\n";
    let pl = "#!/usr/bin/env perl\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode MODE\n$| = 1;\nwhile (<STDIN>) { print \"DECLINED\\n\" if $_ eq \"\\n\" }\n";
    vec![
        ("sh", "once", sh_once.to_string()),
        ("sh", "coprocess", sh_co.to_string()),
        ("python3", "once", py.replace("MODE", "once")),
        ("python3", "coprocess", py.replace("MODE", "coprocess")),
        ("perl", "once", pl.replace("MODE", "once")),
        ("perl", "coprocess", pl.replace("MODE", "coprocess")),
    ]
}

/// The median wall time of `runs` piped sessions with `rcpts` recipients.
fn session_time(dir: &TestDir, rcpts: usize, runs: usize) -> Duration {
    let mut input = String::from("HELO c.example\r\nMAIL FROM:<a@c.example>\r\n");
    for i in 0..rcpts {
        input.push_str(&format!("RCPT TO:<r{i}@example.org>\r\n"));
    }
    input.push_str("QUIT\r\n");
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            let mut child = binary_command(dir)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            let mut out = String::new();
            BufReader::new(child.stdout.take().unwrap())
                .read_to_string(&mut out)
                .unwrap();
            child.wait().unwrap();
            let elapsed = start.elapsed();
            assert_eq!(out.matches("250 2.1.5").count(), rcpts, "{out}");
            elapsed
        })
        .collect();
    times.sort();
    times[runs / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What an external plugin costs per connection and per recipient in each mode: prints
/// figures, asserts nothing about time. Run it on a release build:
/// `cargo test --release --test integration external_plugin_cost -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: prints figures"]
fn external_plugin_cost() {
    const MANY: usize = 21;
    const RUNS: usize = 21;
    let base = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("rcpthosts", "example.org"),
        ("logging", "logging/devnull"),
    ]));
    let (base1, base_many) = (session_time(&base, 1, RUNS), session_time(&base, MANY, RUNS));
    let base_per_rcpt = (base_many.saturating_sub(base1)) / (MANY as u32 - 1);
    println!("median of {RUNS} piped sessions (HELO, MAIL, N x RCPT, QUIT), one plugin on rcpt");
    println!(
        "no external plugin: {:.2} ms per session with 1 recipient, {:.3} ms per further recipient",
        ms(base1),
        ms(base_per_rcpt)
    );
    println!(
        "{:<8} {:<10} {:>16} {:>18}",
        "language", "mode", "per connection", "per recipient"
    );
    for (lang, mode, text) in trivial_plugins() {
        if lang != "sh" && tool(lang).is_none() {
            continue;
        }
        let dir = TestDir::new(&cfg(&[
            ("plugins", "trivial"),
            ("plugins", "rcpt_ok"),
            ("rcpthosts", "example.org"),
            ("logging", "logging/devnull"),
        ]));
        let path = dir.config().join("plugins.d/trivial");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        let one = session_time(&dir, 1, RUNS);
        let many = session_time(&dir, MANY, RUNS);
        let per_rcpt = many.saturating_sub(one) / (MANY as u32 - 1);
        println!(
            "{lang:<8} {mode:<10} {:>13.2} ms {:>15.3} ms",
            ms(one.saturating_sub(base1)),
            ms(per_rcpt.saturating_sub(base_per_rcpt))
        );
    }
}

/// A supervisor's SIGTERM while a plugin hangs: the plugin is killed at once, the client
/// gets the failure reply and `421`, and the process exits (no waiting out the budget).
#[test]
fn termination_signal_during_a_plugin_call() {
    let dir = TestDir::new(&cfg(&[
        ("plugin_dirs", "$ROOT/tests/fixtures/plugins"),
        ("plugins", "hang timeout 60"),
        ("plugins", "rcpt_ok"),
        ("rcpthosts", "example.org"),
    ]));
    let (mut child, client) = crate::support::spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(b"HELO x.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@example.org>\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    child.wait().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let lines: Vec<&str> = all.lines().collect();
    assert!(lines[3].starts_with("450 4.3.0"), "{all}");
    assert!(lines[4].starts_with("421 4.3.2"), "{all}");
}
