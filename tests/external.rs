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

/// Wall time (median) and CPU time (mean, ours and the plugin's) of one session.
#[derive(Clone, Copy)]
struct Cost {
    wall: Duration,
    cpu: Duration,
}

/// CPU time used so far by reaped children and their reaped children.
fn children_cpu() -> Duration {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let tv = |t: nix::sys::time::TimeVal| {
        Duration::from_secs(t.tv_sec() as u64) + Duration::from_micros(t.tv_usec() as u64)
    };
    tv(usage.user_time()) + tv(usage.system_time())
}

/// Runs `runs` piped sessions with `rcpts` recipients.
fn session_cost(dir: &TestDir, rcpts: usize, runs: usize) -> Cost {
    let mut input = String::from("HELO c.example\r\nMAIL FROM:<a@c.example>\r\n");
    for i in 0..rcpts {
        input.push_str(&format!("RCPT TO:<r{i}@example.org>\r\n"));
    }
    input.push_str("QUIT\r\n");
    let cpu_before = children_cpu();
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
    let cpu = (children_cpu() - cpu_before) / runs as u32;
    times.sort();
    Cost {
        wall: times[runs / 2],
        cpu,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `a - b` in milliseconds, negative when noise makes it so.
fn diff(a: Duration, b: Duration) -> f64 {
    ms(a) - ms(b)
}

/// What an external plugin costs per connection and per recipient in each mode: prints
/// figures, asserts nothing about time. Run it on a release build:
/// `cargo test --release --test integration external_plugin_cost -- --ignored --nocapture`
#[test]
#[ignore = "a benchmark: prints figures"]
fn external_plugin_cost() {
    const MANY: u32 = 21;
    const RUNS: usize = 21;
    let base = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("rcpthosts", "example.org"),
        ("logging", "logging/devnull"),
    ]));
    let (b1, bn) = (
        session_cost(&base, 1, RUNS),
        session_cost(&base, MANY as usize, RUNS),
    );
    println!(
        "{RUNS} piped sessions each (HELO, MAIL, N x RCPT, QUIT), one plugin on rcpt answering DECLINED"
    );
    println!(
        "no external plugin, 1 recipient: {:.2} ms wall (median), {:.2} ms CPU (mean)",
        ms(b1.wall),
        ms(b1.cpu)
    );
    println!(
        "{:<8} {:<10} {:>22} {:>22}",
        "", "", "per connection", "per further recipient"
    );
    println!(
        "{:<8} {:<10} {:>11} {:>10} {:>11} {:>10}",
        "language", "mode", "wall ms", "CPU ms", "wall ms", "CPU ms"
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
        let one = session_cost(&dir, 1, RUNS);
        let many = session_cost(&dir, MANY as usize, RUNS);
        let per = |a: Duration, b: Duration, base_a: Duration, base_b: Duration| {
            (diff(a, b) - diff(base_a, base_b)) / f64::from(MANY - 1)
        };
        println!(
            "{lang:<8} {mode:<10} {:>11.2} {:>10.2} {:>11.3} {:>10.3}",
            diff(one.wall, b1.wall),
            diff(one.cpu, b1.cpu),
            per(many.wall, one.wall, bn.wall, b1.wall),
            per(many.cpu, one.cpu, bn.cpu, b1.cpu),
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
