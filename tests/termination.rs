//! Nothing holds a session for ever, and a supervisor's SIGTERM ends one at any point:
//! a FIFO named as a config file or TLS certificate, a next hop that never answers at any
//! step, a log reader that stopped reading. Config values that would break a session
//! later (a number of seconds too large for the clock) are refused at start.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::queue::hop::{Act, Hop, Script};
use crate::support::{TestDir, binary_command, spawn_inetd};

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

fn fifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

/// Waits up to `secs` for the child to exit.
fn exited_within(child: &mut Child, secs: u64) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn term(child: &Child) {
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
}

/// A FIFO as a config file or behind `$include` is refused at once (it used to block the
/// open for ever, and SIGTERM did not end it: the open was restarted after the signal).
#[test]
fn a_fifo_config_file_is_refused_not_waited_on() {
    // Read at start-up: the client gets 421 and the process exits 1.
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok"), ("plugins", "$include waiting")]));
    fifo(&dir.config().join("waiting"));
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = String::new();
    let _ = BufReader::new(client).read_line(&mut greeting);
    assert!(greeting.starts_with("421 4.3.0"), "{greeting:?}");
    let status = exited_within(&mut child, 5).expect("the session hung on the FIFO");
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains("not a regular file"), "{err}");

    // Read during the session: that command gets a temporary failure.
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok")]));
    fifo(&dir.config().join("rcpthosts"));
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut w = client.try_clone().unwrap();
    w.write_all(b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@example.org>\r\nQUIT\r\n")
        .unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    assert!(all.contains("450 4.3.0 Local configuration problem"), "{all}");
    assert!(exited_within(&mut child, 5).is_some());
}

/// SIGTERM while we wait for a next hop that never answers (timeout 60 s): the wait ends
/// at once, the client hears 450 for that recipient and 421, and the process exits.
#[test]
fn sigterm_while_waiting_for_a_next_hop() {
    let hop = Hop::start(Script {
        rcpt: Act::Hang,
        ..Script::good()
    });
    let line = format!("queue/smtp-forward 127.0.0.1 {} timeout 60", hop.port);
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = client.try_clone().unwrap();
    w.write_all(b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@example.org>\r\n")
        .unwrap();
    assert!(crate::queue::wait_for(10, || hop
        .lines()
        .iter()
        .any(|l| l.contains("RCPT TO"))));
    let started = Instant::now();
    term(&child);
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    let status = exited_within(&mut child, 10).expect("still running after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines.get(3),
        Some(&"450 4.3.2 Shutting down; try again later"),
        "{all}"
    );
    assert!(lines.get(4).is_some_and(|l| l.starts_with("421 4.3.2")), "{all}");
}

/// A wait no signal can cut short (here the log: stderr is a pipe nobody reads, and a
/// write to it blocks and is restarted after the signal) still ends within the watchdog's
/// 10 s after SIGTERM.
#[test]
fn sigterm_ends_even_a_session_stuck_where_no_signal_reaches() {
    let dir = TestDir::new(&[]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let fd0: std::os::fd::OwnedFd = server.try_clone().unwrap().into();
    let fd1: std::os::fd::OwnedFd = server.into();
    // The read end is kept open and never read: the pipe fills up.
    let (reader, writer) = std::io::pipe().unwrap();
    let mut child = binary_command(&dir)
        .stdin(Stdio::from(fd0))
        .stdout(Stdio::from(fd1))
        .stderr(Stdio::from(writer))
        .spawn()
        .unwrap();
    // Each NOOP logs at LOGDEBUG; 4000 of them write far more than a pipe holds.
    let mut w = client.try_clone().unwrap();
    let noops = "NOOP\r\n".repeat(4000);
    let _ = w.write_all(noops.as_bytes());
    let stuck = crate::support::wait_until(10, || crate::support::blocked_in_write(child.id(), 2));
    assert!(stuck, "the session should be stuck writing its log to fd 2");
    assert!(child.try_wait().unwrap().is_none());
    let started = Instant::now();
    term(&child);
    let status = exited_within(&mut child, 20).expect("still running 20 s after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.signal(), Some(Signal::SIGALRM as i32), "{status:?}");
    drop(reader);
}

/// SIGTERM while a queue program runs (here one that hangs, with a 60 s timeout): it is
/// killed with everything it started, the client hears 451 (the message is not queued)
/// and 421, and the process exits.
#[test]
fn sigterm_while_a_queue_program_runs() {
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/qmail-queue $DIR/qq timeout 60"),
        ("rcpthosts", "example.org"),
    ]));
    let script = dir.path().join("qq");
    let pid_file = dir.path().join("qq.pid");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsleep 60 &\necho $! > {}\nwait\n", pid_file.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let (mut child, client) = spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut w = client.try_clone().unwrap();
    w.write_all(
        b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\nhi\r\n.\r\n",
    )
    .unwrap();
    assert!(crate::queue::wait_for(10, || pid_file.exists()));
    let started = Instant::now();
    term(&child);
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    let status = exited_within(&mut child, 10).expect("still running after SIGTERM");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(
        lines.get(5),
        Some(&"451 4.3.2 Shutting down; try again later"),
        "{all}"
    );
    assert!(lines.get(6).is_some_and(|l| l.starts_with("421 4.3.2")), "{all}");
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let gone = crate::queue::wait_for(5, || {
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
    });
    assert!(gone, "the queue program's child is still running");
}

/// Runs a session (stdin at its end) and `--check` on `dir`; both must refuse the config
/// with a message that contains `names` (the file and line at fault), the session with
/// `421` and exit status 1. Returns what went wrong, if anything.
fn refused_at_start(dir: &TestDir, names: &str) -> Result<(), String> {
    let out = binary_command(dir).stdin(Stdio::null()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) || !stdout.starts_with("421 4.3.0 ") || !stderr.contains(names) {
        return Err(format!(
            "session: {:?}, {stdout:?}, wanted {names:?} in {stderr:?}",
            out.status
        ));
    }
    let out = std::process::Command::new(crate::support::binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() != Some(1) || !stderr.contains(names) {
        return Err(format!(
            "--check: {:?}, wanted {names:?} in {stderr:?}",
            out.status
        ));
    }
    Ok(())
}

/// A number of seconds too large for the clock (`timeout 18446744073709551615`) used to
/// pass the start and panic at the first wait: a plugin that panics is skipped, so an
/// external rcpt check, a next hop's opinion at RCPT or a queue program was silently left
/// out. Each is refused at start now, naming the file and line.
#[test]
fn huge_numbers_of_seconds_are_refused_at_start() {
    const HUGE: &str = "18446744073709551615";
    let fixtures = ("plugin_dirs", "$ROOT/tests/fixtures/plugins");
    let mut problems = Vec::new();
    // The config file hook_timeout, the default budget of external plugins.
    let dir = TestDir::new(&cfg(&[
        fixtures,
        ("plugins", "counter"),
        ("plugins", "rcpt_ok"),
        ("hook_timeout", HUGE),
    ]));
    if let Err(e) = refused_at_start(&dir, "hook_timeout, line 1") {
        problems.push(format!("hook_timeout: {e}"));
    }
    // A plugin's own timeout argument.
    let lines = [
        format!("counter timeout {HUGE}"),
        "counter timeout 1e400".to_string(),
        format!("queue/qmail-queue /bin/true timeout {HUGE}"),
        format!("queue/sendmail /bin/true timeout {HUGE}"),
        format!("queue/postfix-queue sendmail /bin/true timeout {HUGE}"),
        format!("queue/exim-bsmtp exim_path /bin/true timeout {HUGE}"),
        format!("queue/smtp-forward 127.0.0.1 2525 timeout {HUGE}"),
        format!("queue/lmtp 127.0.0.1:2424 timeout {HUGE}"),
        format!("auth/auth_checkpassword checkpw /bin/false true /bin/true timeout {HUGE}"),
    ];
    for line in &lines {
        let dir = TestDir::new(&cfg(&[fixtures, ("plugins", "rcpt_ok"), ("plugins", line)]));
        if let Err(e) = refused_at_start(&dir, "plugins, line 2: ") {
            problems.push(format!("{line}: {e}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The ticket-key rotation of `tls_ticket_keys` is a number of seconds too: a huge one
/// panicked the session at STARTTLS (debug builds) or wrapped around in the key file's
/// arithmetic. Read only when TLS is used, so STARTTLS gets `454` and `--check` names it.
/// More than 7 days is refused: a ticket's lifetime is the rotation period, and RFC 8446
/// §4.6.1 allows at most 604800 seconds.
#[test]
fn a_huge_ticket_key_rotation_is_refused() {
    for rotation in ["18446744073709551615", "604801"] {
        let line = format!("$DIR/ticket.keys {rotation}");
        let dir = TestDir::new(&cfg(&[
            ("plugins", "tls"),
            ("plugins", "rcpt_ok"),
            ("tls_ticket_keys", &line),
        ]));
        if crate::tls::make_cert(&dir).is_none() {
            return;
        }
        let mut t = crate::queue::Talk::start(&dir);
        assert!(t.cmd("EHLO c.example").contains("STARTTLS"));
        let r = t.cmd("STARTTLS");
        assert!(r.starts_with("454 "), "{rotation}: {r}");
        let log = t.quit();
        assert!(log.contains("tls_ticket_keys: rotation"), "{rotation}: {log}");
        let out = std::process::Command::new(crate::support::binary())
            .args(["--check", "--config"])
            .arg(dir.config())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{rotation}: {stderr}");
        assert!(
            stderr.contains("tls_ticket_keys: rotation"),
            "{rotation}: {stderr}"
        );
    }
}

/// Read as root for another account (`user` and `group` before the switch), `$include`
/// is not followed into a file not everybody may read; a session that serves as root
/// (`user root`) reads what root may read, private includes too.
#[test]
fn serving_as_root_includes_a_private_file() {
    if !nix::unistd::geteuid().is_root() {
        assert!(!crate::support::required(), "needs root");
        eprintln!("SKIPPED: needs root");
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let private = |dir: &TestDir, name: &str, text: &str| {
        let path = dir.config().join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let dir = TestDir::new(&cfg(&[
        ("plugins", "$include private-plugins"),
        ("rcpthosts", "example.org"),
    ]));
    private(&dir, "private-plugins", "rcpt_ok\n");
    let mut t = crate::queue::Talk::start(&dir);
    let r = t.envelope("a@example.net", &["b@example.org"]);
    assert!(r[0].starts_with("250"), "{r:?}");
    t.quit();
    let out = std::process::Command::new(crate::support::binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `user` itself is read as root before the switch to that account.
    let dir = TestDir::new(&cfg(&[("plugins", "rcpt_ok"), ("user", "$include private-user")]));
    private(&dir, "private-user", "nobody\n");
    let out = binary_command(&dir).stdin(Stdio::null()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not everybody may read"), "{stderr}");
    assert!(!stderr.contains("nobody"), "{stderr}");
}

/// SIGTERM at each step of a hand-off to a next hop that stops answering (timeout 60 s):
/// the wait ends at once, the client hears `4.3.2 Shutting down` for the command that
/// waited (its RCPT, or the final dot) and `421`, nothing is queued, and the process exits.
#[test]
fn sigterm_at_each_step_of_a_next_hop_hand_off() {
    let good = Script::good;
    let rcpt_step = "450 4.3.2 Shutting down; try again later";
    let dot_step = "451 4.3.2 Shutting down; try again later";
    let cases: [(&str, Script, &str, &str); 6] = [
        (
            "greeting",
            Script {
                greeting: Act::Hang,
                ..good()
            },
            "CONNECT",
            rcpt_step,
        ),
        (
            "EHLO",
            Script {
                ehlo: Act::Hang,
                ..good()
            },
            "EHLO",
            rcpt_step,
        ),
        (
            "MAIL",
            Script {
                mail: Act::Hang,
                ..good()
            },
            "MAIL",
            rcpt_step,
        ),
        (
            "DATA",
            Script {
                data: Act::Hang,
                ..good()
            },
            ": DATA",
            dot_step,
        ),
        (
            "the message (the hop stopped reading)",
            Script {
                stall_mid_message: true,
                ..good()
            },
            "STALLED",
            dot_step,
        ),
        (
            "the final dot",
            Script {
                dot: Act::Hang,
                ..good()
            },
            "DOT",
            dot_step,
        ),
    ];
    let mut problems = Vec::new();
    for (step, script, seen, want) in cases {
        let hop = Hop::start(script);
        let line = format!("queue/smtp-forward 127.0.0.1 {} timeout 60", hop.port);
        let dir = TestDir::new(&cfg(&[
            ("plugins", "rcpt_ok"),
            ("plugins", &line),
            ("rcpthosts", "example.org"),
        ]));
        let (mut child, client) = spawn_inetd(binary_command(&dir));
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = client.try_clone().unwrap();
        let mut reader = BufReader::new(client);
        let data_phase = want == dot_step;
        let _ = w.write_all(b"HELO c.example\r\nMAIL FROM:<a@c.example>\r\nRCPT TO:<b@example.org>\r\n");
        // The message only once the recipient is accepted: unread input at the end would
        // make the server's close a reset, which can eat the last replies.
        let mut all = String::new();
        let mut writer = None;
        if data_phase {
            for _ in 0..4 {
                let _ = reader.read_line(&mut all);
            }
            if !all.lines().last().is_some_and(|l| l.starts_with("250 2.1.5")) {
                problems.push(format!("{step}: the recipient was not accepted: {all}"));
                let _ = child.kill();
                continue;
            }
            writer = Some(std::thread::spawn(move || {
                let mut data = b"DATA\r\nSubject: x\r\n\r\n".to_vec();
                data.extend(b"a line of a message larger than the socket buffers\r\n".repeat(160_000));
                data.extend_from_slice(b".\r\n");
                let _ = w.write_all(&data);
            }));
        }
        // The server has sent the command and waits for the hop: signal it now.
        if !crate::queue::wait_for(10, || hop.lines().iter().any(|l| l.contains(seen))) {
            problems.push(format!("{step}: the hop never saw {seen:?}: {:?}", hop.lines()));
            let _ = child.kill();
            continue;
        }
        let started = Instant::now();
        term(&child);
        let _ = reader.read_to_string(&mut all);
        let status = exited_within(&mut child, 10);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let replies: Vec<&str> = all.lines().collect();
        let n = replies.len();
        if status.and_then(|s| s.code()) != Some(0) || started.elapsed() > Duration::from_secs(5) {
            problems.push(format!("{step}: {status:?} after {:?}", started.elapsed()));
        }
        if n < 2 || replies[n - 2] != want || !replies[n - 1].starts_with("421 4.3.2") {
            problems.push(format!("{step}: wanted {want:?} and 421 at the end: {all}"));
        }
        if hop.lines().iter().any(|l| l.ends_with("CONFIRMED")) || !dir.messages().is_empty() {
            problems.push(format!("{step}: a message was handed off"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The tls plugin's certificate and key are config files too: a FIFO there (or a device,
/// or a socket) is refused at once. It used to hang every session started as root before
/// its greeting (the files are opened before the switch to `user`), every STARTTLS of a
/// session serving as root, and `--check`; `/dev/zero` filled the memory.
#[test]
fn a_fifo_or_device_as_the_tls_certificate_is_refused_not_waited_on() {
    use std::os::unix::fs::PermissionsExt;
    let mut problems = Vec::new();
    for (what, cert) in [("a FIFO", "$DIR/cert.fifo"), ("/dev/zero", "/dev/zero")] {
        let line = format!("tls {cert} {cert}");
        let dir = TestDir::new(&cfg(&[
            ("plugins", &line),
            ("plugins", "rcpt_ok"),
            ("timeout", "5"),
        ]));
        fifo(&dir.path().join("cert.fifo"));
        // Serving as root: the files are read at STARTTLS.
        let (mut child, client) = spawn_inetd(binary_command(&dir));
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut w = client.try_clone().unwrap();
        let mut r = BufReader::new(client);
        let mut reply = || {
            let mut all = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return all;
                }
                all.push_str(&line);
                if line.as_bytes().get(3) == Some(&b' ') {
                    return all;
                }
            }
        };
        reply();
        w.write_all(b"EHLO c.example\r\n").unwrap();
        reply();
        let started = Instant::now();
        w.write_all(b"STARTTLS\r\n").unwrap();
        let got = reply();
        if !got.starts_with("454 ") || started.elapsed() > Duration::from_secs(3) {
            problems.push(format!(
                "{what}: STARTTLS got {got:?} after {:?}",
                started.elapsed()
            ));
        }
        let _ = w.write_all(b"QUIT\r\n");
        if exited_within(&mut child, 10).is_none() {
            problems.push(format!("{what}: the session did not end"));
        }
        // --check says what is wrong, and returns.
        let mut check = std::process::Command::new(crate::support::binary());
        check.args(["--check", "--config"]).arg(dir.config());
        let mut check = check
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        match exited_within(&mut check, 10) {
            Some(status) if status.code() == Some(1) => {}
            other => problems.push(format!("{what}: --check ended {other:?}")),
        }
        // Started as root for another account: the files are opened before the switch.
        if nix::unistd::geteuid().is_root() {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            std::fs::write(dir.config().join("user"), "nobody\n").unwrap();
            let (mut child, client) = spawn_inetd(binary_command(&dir));
            client.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut greeting = String::new();
            let _ = BufReader::new(client).read_line(&mut greeting);
            if !greeting.starts_with("220 ") {
                problems.push(format!(
                    "{what}: as root for nobody, the greeting was {greeting:?}"
                ));
            }
            term(&child);
            let _ = exited_within(&mut child, 15);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
