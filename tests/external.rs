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
    assert!(
        matches!(lines.as_slice(), [_, _, _, rcpt, _] if rcpt.starts_with("250 2.1.5")),
        "wanted five replies, the fourth 250 2.1.5 (fd_check did not refuse): {all}"
    );
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
    // A co-process starts its answer lines with the request's id; in once mode `id` stays
    // empty and the plain form is written.
    let sh_co = "#!/bin/sh\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode coprocess\nwhile read -r k v; do [ \"$k\" = request_id ] && id=\"$v \"; [ -z \"$k\" ] && echo \"${id}DECLINED\"; done\n";
    let py = "#!/usr/bin/env python3\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode MODE\nimport sys\nid = ''\nfor line in sys.stdin:\n    if line.startswith('request_id '):\n        id = line[11:].strip() + ' '\n    if line == '\\n':\n        print(id + 'DECLINED', flush=True)\n";
    let pl = "#!/usr/bin/env perl\n# qpsmtpd-rs: hooks rcpt\n# qpsmtpd-rs: mode MODE\n$| = 1;\nmy $id = '';\nwhile (<STDIN>) { $id = \"$1 \" if /^request_id (\\d+)$/; print \"${id}DECLINED\\n\" if $_ eq \"\\n\" }\n";
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
    // The plugin call is under way once the plugin's process exists.
    let running = crate::support::wait_until(10, || !crate::support::children(child.id()).is_empty());
    assert!(running, "the hang plugin was never started");
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
    // Greeting, HELO, MAIL, then the plugin's failure for RCPT and the shutdown notice.
    assert!(
        matches!(lines.as_slice(), [_, _, _, rcpt, bye] if rcpt.starts_with("450 4.3.0") && bye.starts_with("421 4.3.2")),
        "wanted 220, 250, 250, 450 4.3.0 and 421 4.3.2:\n{all}"
    );
}

/// A co-process that does not exit when its input closes at the end of the connection
/// gets a short grace, then its process group is killed: the connection's process does
/// not wait out the plugin's 30 s budget, and nothing it started is left running.
#[test]
fn a_lingering_coprocess_is_killed_soon_after_quit() {
    let dir = TestDir::new(&cfg(&[
        ("plugin_dirs", "$ROOT/tests/fixtures/plugins"),
        ("plugins", "coproc_linger"),
        ("plugins", "rcpt_ok"),
        ("rcpthosts", "example.org"),
    ]));
    let (mut child, client) = crate::support::spawn_inetd(binary_command(&dir));
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(b"HELO x.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@example.org>\r\nQUIT\r\n")
        .unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    let started = Instant::now();
    child.wait().unwrap();
    let took = started.elapsed();
    assert!(all.contains("250 2.1.5") && all.contains("221 "), "{all}");
    assert!(took < Duration::from_secs(10), "the session lingered {took:?}");
    let pids = std::fs::read_to_string(dir.config().join("linger.pids")).unwrap();
    for pid in pids.split_whitespace() {
        let gone = crate::queue::wait_for(5, || !std::path::Path::new(&format!("/proc/{pid}")).exists());
        assert!(gone, "process {pid} of the co-process is still running");
    }
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(
        log.contains("did not exit within 2.0s of the end of its input; killed with its process group"),
        "{log}"
    );
}

/// Every program we start gets the default signal dispositions (plugins/EXTERNAL.md), even
/// when we were started with some ignored (here SIGUSR1 and SIGQUIT, as a shell starting
/// us in the background or a careless super-server leaves them) and although we handle
/// SIGPIPE and SIGXFSZ ourselves: each child reports the SigIgn mask of
/// /proc/self/status.
#[test]
fn children_start_with_default_signal_dispositions() {
    let dir = TestDir::new(&cfg(&[
        ("plugin_dirs", "$DIR/bin"),
        ("plugins", "sigplug"),
        ("plugins", "sigplug:co mode coprocess"),
        ("plugins", "qmail-spp"),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/qmail-queue $DIR/bin/qq"),
        ("smtpplugins", "[rcpt]"),
        ("smtpplugins", ":sh $DIR/bin/report spp"),
        ("rcpthosts", "example.org"),
        (
            "logging",
            "logging/file loglevel LOGINFO |sh $DIR/bin/report log; cat >/dev/null",
        ),
    ]));
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let out = dir.path().join("sigign");
    let scripts = [
        (
            "report",
            format!(
                "#!/bin/sh\nwhile read -r k v; do [ \"$k\" = SigIgn: ] && echo \"$1 $v\" >> {}; done < /proc/$$/status\n",
                out.display()
            ),
        ),
        (
            "sigplug",
            "#!/bin/sh\n# qpsmtpd-rs: hooks rcpt\nmode=once\nwhile read -r k v; do\n  case $k in\n    request_id) id=\"$v \"; mode=coprocess ;;\n    '') sh \"$(dirname \"$0\")/report\" \"$mode\"; echo \"${id}DECLINED\"; [ $mode = once ] && exit 0 ;;\n  esac\ndone\n"
                .to_string(),
        ),
        (
            "qq",
            "#!/bin/sh\nsh \"$(dirname \"$0\")/report\" queue\ncat >/dev/null; cat <&1 >/dev/null\n".to_string(),
        ),
    ];
    for (name, text) in scripts {
        let path = bin.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let bin_cmd = binary_command(&dir);
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("trap '' USR1 QUIT; exec \"$0\" \"$@\"")
        .arg(bin_cmd.get_program())
        .args(bin_cmd.get_args())
        .current_dir(dir.path())
        .env_remove("QPSMTPD_CONFIG");
    let (mut child, client) = crate::support::spawn_inetd(cmd);
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut c = client.try_clone().unwrap();
    c.write_all(
        b"HELO x.example\r\nMAIL FROM:<a@x.example>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: s\r\n\r\nhi\r\n.\r\nQUIT\r\n",
    )
    .unwrap();
    let mut all = String::new();
    BufReader::new(client).read_to_string(&mut all).unwrap();
    child.wait().unwrap();
    assert!(all.contains("250 2.0.0"), "{all}");
    let report = std::fs::read_to_string(&out).unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    // Signals 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID; applications start at
    // SIGRTMIN, 34): glibc's posix_spawn leaves them ignored in every child it starts, and
    // a program linked with glibc installs its own handlers for them.
    let glibc_internal = (1u64 << 31) | (1u64 << 32);
    for line in report.lines() {
        let (who, mask) = line.split_once(' ').unwrap();
        let mask = u64::from_str_radix(mask, 16).unwrap();
        assert_eq!(
            mask & !glibc_internal,
            0,
            "{who} started with signals ignored ({mask:#x}):\n{report}"
        );
        seen.push(who);
    }
    for who in ["once", "coprocess", "spp", "queue", "log"] {
        assert!(seen.contains(&who), "no report from the {who} child:\n{report}");
    }
}

/// Started unprivileged (as `tcpserver -u` or a switch from root leaves it), with no
/// plugin that may need a set-id program, nothing we start can gain privileges
/// (`NoNewPrivs: 1`); with queue/qmail-queue (qmail-queue is set-uid) it still can.
#[test]
fn no_new_privileges_unless_a_set_id_handoff_is_configured() {
    if !nix::unistd::geteuid().is_root() {
        assert!(
            !crate::support::required(),
            "needs root (QPSMTPD_RS_REQUIRE_ALL=1)"
        );
        eprintln!("SKIPPED: needs root to start the server as another user");
        return;
    }
    for (queue, want) in [
        ("queue/maildir $DIR/maildir", "1"),
        ("queue/qmail-queue /bin/true", "0"),
    ] {
        let dir = TestDir::new(&cfg(&[
            ("plugins", "rcpt_ok"),
            ("plugins", queue),
            ("rcpthosts", "example.org"),
            (
                "logging",
                "logging/file loglevel LOGINFO |grep NoNewPrivs /proc/self/status > $DIR/out/nnp; cat >/dev/null",
            ),
        ]));
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        for (p, mode) in [
            (dir.path(), 0o755),
            (out.as_path(), 0o777),
            (dir.spool().as_path(), 0o1777),
        ] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // A copy of the binary nobody can reach (the build tree may be under /root).
        let copy = dir.path().join("qpsmtpd-rs");
        std::fs::copy(crate::support::binary(), &copy).unwrap();
        let mut cmd = std::process::Command::new(&copy);
        cmd.arg("--config")
            .arg(dir.config())
            .current_dir(dir.path())
            .env_remove("QPSMTPD_CONFIG");
        std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
        std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
        let (mut child, client) = crate::support::spawn_inetd(cmd);
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = client.try_clone().unwrap();
        c.write_all(b"HELO x.example\r\nQUIT\r\n").unwrap();
        let mut all = String::new();
        BufReader::new(client).read_to_string(&mut all).unwrap();
        child.wait().unwrap();
        assert!(all.contains("221 "), "{all}");
        let got = std::fs::read_to_string(out.join("nnp")).unwrap_or_default();
        assert_eq!(got.split_whitespace().nth(1), Some(want), "{queue}: {got:?}");
    }
}
