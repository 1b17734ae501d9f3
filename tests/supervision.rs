//! The super-servers and supervisors of packaging/, for real, each on a loopback port
//! the test picks: ucspi-tcp's tcpserver with the sample tcprules, xinetd with a config
//! made from the shipped service file, systemd-socket-activate (`--inetd --accept`), and
//! the runit and daemontools run scripts under runsv and svscan with their loggers. swaks
//! delivers through each, and the stored Received header must name the client's address
//! and the port swaks sent from.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::clients::{delivering_config, free_port, wait_listening};
use crate::support::{TestDir, binary, binary_command, required, spawn_inetd, tool};

/// A child process (and whatever it started) stopped when dropped.
struct Running {
    child: Child,
    stop: Vec<Command>,
}

impl Drop for Running {
    /// SIGTERM first: runsv then stops its service and logger, tcpserver, xinetd and
    /// systemd-socket-activate exit. SIGKILL after 5 s.
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for cmd in &mut self.stop {
            let _ = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

fn spawn(mut cmd: Command) -> Running {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    Running {
        child,
        stop: Vec::new(),
    }
}

/// swaks sends one message to `rcpt` from a port it is told to use; returns that port.
fn swaks(swaks: &Path, port: u16, rcpt: &str) -> u16 {
    let client_port = free_port();
    let out = Command::new(swaks)
        .args(["--server", &format!("127.0.0.1:{port}")])
        .args(["--local-interface", "127.0.0.1"])
        .args(["--local-port", &client_port.to_string()])
        .args(["--from", "sender@example.net", "--to", rcpt])
        .args([
            "--helo",
            "swaks.client.example",
            "--header",
            "Subject: supervised",
        ])
        .args(["--body", "Sent by swaks.", "--timeout", "20"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swaks failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    client_port
}

/// The one delivered message carries our Received header with the client's address and
/// port.
fn assert_received_from(dir: &TestDir, client_port: u16) {
    let messages = dir.messages();
    assert_eq!(messages.len(), 1, "expected one delivered message");
    let text = String::from_utf8_lossy(&fs::read(&messages[0]).unwrap()).into_owned();
    let want =
        format!("Received: from [127.0.0.1] (HELO swaks.client.example) (127.0.0.1 port {client_port})");
    assert!(text.contains(&want), "no {want:?} in:\n{text}");
}

/// Is the test running as root (CI is)? Else it skips, or fails when nothing may skip.
fn as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !required(),
        "this test must run as root (QPSMTPD_RS_REQUIRE_ALL=1)"
    );
    eprintln!("SKIPPED: not running as root");
    false
}

/// A plain SMTP client on the socket of a session started with spawn_inetd.
struct Smtp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    child: Child,
}

impl Smtp {
    fn new(client: TcpStream, child: Child) -> Smtp {
        client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        Smtp {
            reader: BufReader::new(client.try_clone().unwrap()),
            writer: client,
            child,
        }
    }

    /// Reads one reply (continuation lines included); its last line must start so.
    fn expect(&mut self, start: &str) {
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            if line.as_bytes().get(3) == Some(&b'-') {
                continue;
            }
            assert!(line.starts_with(start), "expected {start:?}, got {line:?}");
            return;
        }
    }

    fn send(&mut self, line: &str, reply: &str) {
        self.writer.write_all(line.as_bytes()).unwrap();
        self.expect(reply);
    }

    /// One message to `rcpt`, then QUIT.
    fn deliver(&mut self, rcpt: &str) {
        self.send("EHLO client.example\r\n", "250 ");
        self.send("MAIL FROM:<sender@example.net>\r\n", "250 ");
        self.send(&format!("RCPT TO:<{rcpt}>\r\n"), "250 ");
        self.send("DATA\r\n", "354 ");
        self.send("Subject: test\r\n\r\nbody\r\n.\r\n", "250 ");
        self.send("QUIT\r\n", "221 ");
        let _ = self.finish();
    }

    /// Waits for the process; its exit code and stderr.
    fn finish(&mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        let mut err = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        (status.code(), err)
    }
}

fn packaging() -> PathBuf {
    crate::support::root().join("packaging")
}

/// Waits until the service answers: a probe session that gets the greeting, says QUIT
/// and sees the server close the connection, so it is over before the test's own session
/// starts. A probe the service closes without a greeting (it was still starting) is
/// retried.
fn wait_greeted(port: u16) {
    wait_listening(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        let Ok(probe) = TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        probe.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut reader = BufReader::new(probe.try_clone().unwrap());
        let mut w = probe;
        last.clear();
        while reader.read_line(&mut last).unwrap_or(0) > 0 && !last.lines().any(|l| l.starts_with("220 ")) {}
        if !last.lines().any(|l| l.starts_with("220 ")) {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let _ = w.write_all(b"QUIT\r\n");
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        assert!(rest.starts_with("221 "), "probe session: {last}{rest}");
        return;
    }
    panic!("no greeting on port {port}: {last:?}");
}

/// Waits until a file contains `needle`.
fn wait_for_text(path: &Path, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn tcpserver_with_the_sample_tcprules_lets_loopback_relay() {
    let (Some(tcpserver), Some(tcprules), Some(swaks_bin)) =
        (tool("tcpserver"), tool("tcprules"), tool("swaks"))
    else {
        return;
    };
    let dir = TestDir::new(&delivering_config());
    let cdb = sample_rules(&tcprules, &dir);
    let port = free_port();
    let mut cmd = Command::new(tcpserver);
    cmd.args(["-R", "-H", "-l", "0", "-x"])
        .arg(&cdb)
        .args(["127.0.0.1", &port.to_string(), binary(), "--config"])
        .arg(dir.config())
        .current_dir(dir.path());
    let _server = spawn(cmd);
    wait_listening(port);
    // Not one of our domains: only a relay client (RELAYCLIENT from the rules) gets 250.
    let client_port = swaks(&swaks_bin, port, "someone@elsewhere.example");
    assert_received_from(&dir, client_port);
}

/// The sample tcprules file, compiled into the test directory.
fn sample_rules(tcprules: &Path, dir: &TestDir) -> PathBuf {
    let cdb = dir.path().join("tcp.smtp.cdb");
    let status = Command::new(tcprules)
        .arg(&cdb)
        .arg(dir.path().join("tcp.smtp.tmp"))
        .stdin(fs::File::open(packaging().join("tcprules/tcp.smtp")).unwrap())
        .status()
        .unwrap();
    assert!(status.success(), "tcprules refused the sample rules");
    cdb
}

#[test]
fn xinetd_with_the_shipped_service_file() {
    let (Some(xinetd), Some(swaks_bin)) = (tool("xinetd"), tool("swaks")) else {
        return;
    };
    let dir = TestDir::new(&delivering_config());
    let port = free_port();
    let conf = dir.path().join("xinetd.conf");
    fs::write(&conf, xinetd_config(&dir, port)).unwrap();
    let mut cmd = Command::new(xinetd);
    cmd.args(["-dontfork", "-f"])
        .arg(&conf)
        .arg("-pidfile")
        .arg(dir.path().join("xinetd.pid"));
    let _server = spawn(cmd);
    wait_greeted(port);
    let client_port = swaks(&swaks_bin, port, "rcpt@example.org");
    assert_received_from(&dir, client_port);
    let log = fs::read_to_string(dir.path().join("xinetd.log")).unwrap_or_default();
    assert!(log.contains("START: qpsmtpd-rs-test"), "xinetd log:\n{log}");
}

/// The shipped service's attributes, with the test's port, binary, config and user.
fn xinetd_config(dir: &TestDir, port: u16) -> String {
    let shipped = fs::read_to_string(packaging().join("xinetd/qpsmtpd-rs")).unwrap();
    let replaced = ["user", "group", "server", "server_args", "disable"];
    let mut out = String::from("service qpsmtpd-rs-test\n{\n");
    let body = shipped.split_once('{').map_or("", |(_, b)| b);
    for line in body.lines() {
        let attr = line.split('=').next().unwrap_or("").trim();
        if attr.is_empty() || attr.starts_with('#') || attr == "}" || replaced.contains(&attr) {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .map_or_else(|| "root".to_string(), |u| u.name);
    out.push_str(&format!(
        "    type = UNLISTED\n    port = {port}\n    bind = 127.0.0.1\n    user = {user}\n    \
         server = {}\n    server_args = --config {}\n    log_type = FILE {}\n    disable = no\n}}\n",
        binary(),
        dir.config().display(),
        dir.path().join("xinetd.log").display()
    ));
    out
}

#[test]
fn systemd_socket_activate_inetd_accept() {
    let (Some(activate), Some(swaks_bin)) = (tool("systemd-socket-activate"), tool("swaks")) else {
        return;
    };
    let dir = TestDir::new(&delivering_config());
    let port = free_port();
    let mut cmd = Command::new(activate);
    cmd.args(["--listen", &format!("127.0.0.1:{port}"), "--inetd", "--accept"])
        .args([binary(), "--config"])
        .arg(dir.config());
    let _server = spawn(cmd);
    wait_greeted(port);
    let client_port = swaks(&swaks_bin, port, "rcpt@example.org");
    assert_received_from(&dir, client_port);
}

/// A copy of a shipped service directory, with `conf` pointing it at the test.
fn service_dir(dir: &TestDir, kind: &str, rules: &Path, port: u16) -> PathBuf {
    let service = dir.path().join(format!("{kind}-service"));
    let status = Command::new("cp")
        .arg("-R")
        .arg(packaging().join(kind).join("qpsmtpd-rs"))
        .arg(&service)
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(
        service.join("conf"),
        format!(
            "IP=127.0.0.1\nPORT={port}\nCONFIG='{}'\nRULES='{}'\nSMTPUSER=\nQPSMTPD='{}'\n",
            dir.config().display(),
            rules.display(),
            binary()
        ),
    )
    .unwrap();
    service
}

#[test]
fn runit_run_script_under_runsv_with_svlogd() {
    let (Some(runsv), Some(_), Some(_), Some(tcprules), Some(swaks_bin)) = (
        tool("runsv"),
        tool("svlogd"),
        tool("tcpserver"),
        tool("tcprules"),
        tool("swaks"),
    ) else {
        return;
    };
    let dir = TestDir::new(&delivering_config());
    let port = free_port();
    let rules = sample_rules(&tcprules, &dir);
    let service = service_dir(&dir, "runit", &rules, port);
    let mut cmd = Command::new(runsv);
    cmd.arg(&service);
    let _runsv = spawn(cmd);
    wait_greeted(port);
    let client_port = swaks(&swaks_bin, port, "someone@elsewhere.example");
    assert_received_from(&dir, client_port);
    let log = wait_for_text(&service.join("log/main/current"), "outcome=\"queued\"");
    assert!(
        log.contains(" summary remote=127.0.0.1 ") && log.contains("tcpserver: status:"),
        "svlogd log:\n{log}"
    );
}

#[test]
fn daemontools_run_script_under_svscan_with_multilog() {
    let (Some(svscan), Some(svc), Some(_), Some(tcprules), Some(swaks_bin)) = (
        tool("svscan"),
        tool("svc"),
        tool("multilog"),
        tool("tcprules"),
        tool("swaks"),
    ) else {
        return;
    };
    let dir = TestDir::new(&delivering_config());
    let port = free_port();
    let scan = dir.path().join("service");
    fs::create_dir(&scan).unwrap();
    let rules = sample_rules(&tcprules, &dir);
    let service = service_dir(&dir, "daemontools", &rules, port);
    let linked = scan.join("qpsmtpd-rs");
    std::os::unix::fs::symlink(&service, &linked).unwrap();
    let mut cmd = Command::new(svscan);
    cmd.arg(&scan);
    let mut svscan = spawn(cmd);
    // svscan does not stop its services: supervise -x does, service first, then its log.
    let mut stop = Command::new(svc);
    stop.arg("-dx").arg(&linked).arg(linked.join("log"));
    svscan.stop.push(stop);
    wait_greeted(port);
    let client_port = swaks(&swaks_bin, port, "someone@elsewhere.example");
    assert_received_from(&dir, client_port);
    let log = wait_for_text(&service.join("log/main/current"), "outcome=\"queued\"");
    assert!(
        log.contains(" summary remote=127.0.0.1 ") && log.lines().all(|l| l.starts_with('@')),
        "multilog log:\n{log}"
    );
}

/// `--check` on a good config lists the chain with hooks, warns about files the TOML
/// file shadows, and exits 0; on each kind of problem it exits 1 and says what is wrong.
#[test]
fn check_lists_the_chain_and_names_problems() {
    let mut config = delivering_config();
    config.push(("plugins".into(), "count_unrecognized_commands 3".into()));
    config.push(("qpsmtpd-rs.toml".into(), "me = \"toml.example\"".into()));
    let dir = TestDir::new(&config);
    let out = Command::new(binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let chain: Vec<&str> = stdout.lines().filter(|l| l.contains(". ")).collect();
    let expected = [
        ("1. relay", "connect", "plugins line 1"),
        ("2. rcpt_ok", "rcpt", "plugins line 2"),
        ("3. queue/maildir", "queue", "plugins line 3"),
        (
            "4. count_unrecognized_commands",
            "unrecognized_command",
            "plugins line 4",
        ),
    ];
    assert_eq!(chain.len(), expected.len(), "{stdout}");
    for (line, (name, hooks, origin)) in chain.iter().zip(expected) {
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[..2].join(" "), name, "{line}");
        assert!(line.contains(hooks) && line.ends_with(origin), "{line}");
    }
    assert!(stdout.contains("me                toml.example"), "{stdout}");
    assert!(stdout.ends_with("ok\n"), "{stdout}");
    assert!(
        stderr.contains("warning: ") && stderr.contains("/config/me is ignored: qpsmtpd-rs.toml"),
        "{stderr}"
    );

    let problems = [
        (
            ("plugins", "no_such_plugin"),
            "plugins, line 4: plugin no_such_plugin not found",
        ),
        (
            ("rlimits", "nofile lots"),
            "rlimits, line 1: nofile: \"lots\" is not a number",
        ),
        (("databytes", "big"), "databytes must be a whole number"),
        (("user", "no-such-user-here"), "user, line 1: no such user"),
        (
            ("logging", "logging/nowhere"),
            "logging plugin logging/nowhere not found",
        ),
        (
            ("spool_dir", "/nonexistent/spool"),
            "spool_dir /nonexistent/spool is not a directory",
        ),
    ];
    for ((file, line), message) in problems {
        let dir = TestDir::new(&delivering_config());
        let path = dir.config().join(file);
        let mut text = fs::read_to_string(&path).unwrap_or_default();
        if file == "plugins" {
            text.push_str(&format!("{line}\n"));
        } else {
            text = format!("{line}\n");
        }
        fs::write(&path, text).unwrap();
        let out = Command::new(binary())
            .args(["--check", "--config"])
            .arg(dir.config())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
        assert!(
            stderr.contains("error: ") && stderr.contains(message) && stderr.contains("check failed"),
            "{file}: expected {message:?} in:\n{stderr}"
        );
    }
    let out = Command::new(binary())
        .args(["--check", "--config", "/nonexistent/config"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config directory does not exist"));
}

/// With the tls plugin, `--check` reads the TLS settings as a STARTTLS would: one that
/// cannot be used fails the check (a session would find out only when a client asks).
#[test]
fn check_names_unusable_tls_settings() {
    let mut config = delivering_config();
    config.push(("plugins".into(), "tls".into()));
    config.push(("tls_ticket_keys".into(), "tickets 5".into()));
    let dir = TestDir::new(&config);
    let out = Command::new(binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error: tls: tls_ticket_keys: rotation must be from 60"),
        "{stderr}"
    );
}

/// Started as root with `user nobody`: the session runs as nobody (uid, gid and no
/// supplementary groups, read from /proc), under the `rlimits` limits, and the message
/// file it writes belongs to nobody. `--check` reports the same account.
#[test]
fn started_as_root_the_session_runs_as_the_configured_user() {
    if !as_root() {
        return;
    }
    let mut config = delivering_config();
    config.push(("user".into(), "nobody".into()));
    config.push(("group".into(), "nogroup".into()));
    config.push(("rlimits".into(), "nofile 48".into()));
    config.push(("rlimits".into(), "core 0".into()));
    let dir = TestDir::new(&config);
    open_to_nobody(&dir);
    let (child, client) = spawn_inetd(binary_command(&dir));
    let pid = child.id();
    let mut session = Smtp::new(client, child);
    session.expect("220 ");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.split_whitespace().collect::<Vec<_>>())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), ["65534"; 4], "{status}");
    assert_eq!(field("Gid:"), ["65534"; 4], "{status}");
    assert!(field("Groups:").is_empty(), "{status}");
    let limits = fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = |name: &str| {
        limits
            .lines()
            .find(|l| l.starts_with(name))
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_default()
    };
    assert!(
        line("Max open files").starts_with("Max open files 48 48"),
        "{limits}"
    );
    assert!(
        line("Max core file size").starts_with("Max core file size 0 0"),
        "{limits}"
    );
    session.deliver("rcpt@example.org");
    let messages = dir.messages();
    assert_eq!(messages.len(), 1);
    let owner = std::os::unix::fs::MetadataExt::uid(&fs::metadata(&messages[0]).unwrap());
    assert_eq!(owner, 65534, "the message file belongs to uid {owner}");

    let out = Command::new(binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("runs as           nobody (uid 65534, gid 65534, no supplementary groups)")
            && stdout.contains("rlimits           nofile 48, core 0"),
        "{stdout}"
    );
}

/// Lets nobody reach the config and write the spool and the maildir.
fn open_to_nobody(dir: &TestDir) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let maildir = dir.path().join("maildir");
    fs::create_dir_all(&maildir).unwrap();
    for d in [maildir, dir.spool()] {
        std::os::unix::fs::chown(&d, Some(65534), Some(65534)).unwrap();
    }
}

/// Started as root with no `user`: a network session is refused with 421 and a clear
/// reason, unless --allow-root is given; a transcript piped in by hand is served.
#[test]
fn started_as_root_without_a_user_it_refuses_to_serve() {
    if !as_root() {
        return;
    }
    let dir = TestDir::new(&delivering_config());
    fs::remove_file(dir.config().join("user")).unwrap();
    let (child, client) = spawn_inetd(binary_command(&dir));
    let mut session = Smtp::new(client, child);
    session.expect("421 4.3.0 ");
    let (code, stderr) = session.finish();
    assert_eq!(code, Some(1));
    assert!(stderr.contains("refusing to serve as root"), "{stderr}");

    let mut cmd = binary_command(&dir);
    cmd.arg("--allow-root");
    let (child, client) = spawn_inetd(cmd);
    let mut session = Smtp::new(client, child);
    session.expect("220 ");
    session.deliver("rcpt@example.org");
    assert_eq!(dir.messages().len(), 1);

    let out = binary_command(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().unwrap().write_all(b"QUIT\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("220 "));
}

/// Every option `--help` lists is in the man page, so the two stay in step.
#[test]
fn man_page_lists_every_option() {
    let help = Command::new(binary()).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    let man = fs::read_to_string(crate::support::root().join("doc/qpsmtpd-rs.8")).unwrap();
    let options: Vec<&str> = help
        .split(|c: char| c.is_whitespace() || "[]|,".contains(c))
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .collect();
    assert!(options.len() >= 10, "{help}");
    for option in options {
        let roff = option.replace('-', "\\-");
        assert!(man.contains(&roff), "{option} is missing from doc/qpsmtpd-rs.8");
    }
}
