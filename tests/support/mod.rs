//! Test helpers: a temporary config directory, the three ways to run a transcript
//! (in-process, through the binary over a socket, through Perl qpsmtpd) and the checks.

#![allow(dead_code)]

pub mod dns;
pub mod transcript;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qpsmtpd_rs::io::Scripted;
use qpsmtpd_rs::log::MemorySink;
use qpsmtpd_rs::peer::{self, Overrides, SocketFacts};
use qpsmtpd_rs::server::{self, View};
use qpsmtpd_rs::startup::{self, Options};

use transcript::{Check, Pick, Step, Transcript};

/// The binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_qpsmtpd-rs")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Is this tool required (CI sets `QPSMTPD_RS_REQUIRE_ALL=1`, so nothing is skipped)?
pub fn required() -> bool {
    std::env::var("QPSMTPD_RS_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Finds a program on PATH; panics if missing and required, else returns None.
pub fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !required(),
            "{name} is required (QPSMTPD_RS_REQUIRE_ALL=1) but not installed"
        );
        eprintln!("SKIPPED: {name} is not installed");
    }
    found
}

/// A fresh test directory with `config/` and `spool/`.
pub struct TestDir {
    pub dir: tempfile::TempDir,
}

impl TestDir {
    /// Creates the directory and writes the config lines (`$DIR` = the directory,
    /// `$ROOT` = the repository, for its `plugins/` and `tests/fixtures/`).
    pub fn new(config: &[(String, String)]) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix("qpsmtpd-rs-test.")
            .tempdir()
            .unwrap();
        let t = TestDir { dir };
        std::fs::create_dir_all(t.config()).unwrap();
        std::fs::create_dir_all(t.spool()).unwrap();
        let mut files: HashMap<String, String> = HashMap::new();
        let mut order = Vec::new();
        for (name, line) in config {
            if !files.contains_key(name) {
                order.push(name.clone());
            }
            let entry = files.entry(name.clone()).or_default();
            let line = line
                .replace("$DIR", &t.path().to_string_lossy())
                .replace("$ROOT", &root().to_string_lossy());
            entry.push_str(&line);
            entry.push('\n');
        }
        let defaults = [
            ("me", "test.example.org".to_string()),
            ("spool_dir", t.spool().to_string_lossy().into_owned()),
            ("logging", "logging/warn LOGDEBUG".to_string()),
            // Tests run as root in CI: serve as whoever runs the test (ignored unless root).
            ("user", "root".to_string()),
        ];
        for (name, value) in defaults {
            files.entry(name.to_string()).or_insert_with(|| {
                order.push(name.to_string());
                format!("{value}\n")
            });
        }
        for name in order {
            let path = t.config().join(&name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).unwrap();
            }
            if name.ends_with(".cdb") {
                make_cdb(&path, &files[&name]);
            } else {
                std::fs::write(path, &files[&name]).unwrap();
            }
        }
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn config(&self) -> PathBuf {
        self.path().join("config")
    }

    pub fn spool(&self) -> PathBuf {
        self.path().join("spool")
    }

    /// Delivered messages: files in any `new/` directory below the test dir, in the order
    /// they were written (modification time, then the maildir name's seconds, microseconds
    /// and counter, which break ties within a clock tick).
    pub fn messages(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![self.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.parent().and_then(Path::file_name).is_some_and(|n| n == "new") {
                    out.push(p);
                }
            }
        }
        out.sort_by_cached_key(|p| {
            let mtime = std::fs::metadata(p).and_then(|m| m.modified()).ok();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (mtime, maildir_order(&name), name)
        });
        out
    }

    /// The one delivered message's bytes; fails clearly when there is none or several.
    pub fn only_message(&self) -> Vec<u8> {
        let messages = self.messages();
        match messages.as_slice() {
            [one] => std::fs::read(one).unwrap(),
            other => panic!(
                "expected exactly one delivered message, found {}: {other:?}",
                other.len()
            ),
        }
    }

    /// Files in the spool directory.
    pub fn spool_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.spool())
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

/// `<seconds>.P<pid>M<microseconds>Q<counter>.<host>` (our maildir names) as numbers to
/// sort by; other names sort as zeros (then by name).
fn maildir_order(name: &str) -> (u64, u64, u64) {
    let mut parts = name.splitn(3, '.');
    let secs = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let rest = parts.next().unwrap_or("");
    let micros = rest
        .split_once('M')
        .and_then(|(_, r)| r.split_once('Q'))
        .and_then(|(m, _)| m.parse().ok())
        .unwrap_or(0);
    let counter = rest
        .rsplit_once('Q')
        .and_then(|(_, q)| q.parse().ok())
        .unwrap_or(0);
    (secs, micros, counter)
}

/// Writes a cdb from `key [value]` lines with tinycdb's `cdb -c -m` (an independent
/// writer: our reader must read what other tools write); without tinycdb, and only when
/// tests may skip, with our own writer.
fn make_cdb(path: &Path, lines: &str) {
    if let Some(cdb) = tool("cdb") {
        let mut child = Command::new(cdb)
            .arg("-c")
            .arg("-m")
            .arg(path)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
        assert!(
            child.wait().unwrap().success(),
            "cdb -c -m {} failed",
            path.display()
        );
        return;
    }
    let records: Vec<(&[u8], &[u8])> = lines
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap_or((l, ""));
            (k.as_bytes(), v.as_bytes())
        })
        .collect();
    qpsmtpd_rs::cdb::write(path, &records).unwrap();
}

/// What a run produced.
#[derive(Debug, Default)]
pub struct Run {
    /// Reply lines received, in order.
    pub lines: Vec<String>,
    /// Log lines.
    pub log: Vec<String>,
    /// The test DNS server's query log for this run (`! dns`).
    pub dns_log: Vec<String>,
}

/// Runs a transcript in-process: the session over a scripted transport (`W:` = timeout).
pub fn run_in_process(t: &Transcript, dir: &TestDir) -> Run {
    let env: HashMap<String, String> = t.env.iter().cloned().collect();
    // As in the binary runs: a loopback client on a socket, or a pipe.
    let sock = SocketFacts {
        is_socket: !t.pipe,
        peer: (!t.pipe).then(|| "127.0.0.1:40000".parse().unwrap()),
        local: (!t.pipe).then(|| "127.0.0.1:25".parse().unwrap()),
    };
    let conn = peer::connection("test", &|k| env.get(k).cloned(), &sock, &Overrides::default());
    let sink = MemorySink::default();
    let log = sink.lines.clone();
    let options = Options {
        config_dir: dir.config(),
        qmail_control: None,
        conn,
        sinks: Some(vec![Box::new(sink)]),
    };
    let chunks = t
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Send(b) => Some(b.clone()),
            Step::Wait(_) => Some(Vec::new()),
            Step::Expect(_) | Step::Close => None,
        })
        .collect();
    // What the client sends before the first reply it waits for, it sends early.
    let early = t
        .steps
        .iter()
        .take_while(|s| !matches!(s, Step::Expect(_)))
        .filter(|s| matches!(s, Step::Send(_) | Step::Wait(_)))
        .count();
    let mut transport = Scripted::new(chunks).early(early);
    let written = match startup::open(options) {
        Ok(mut session) => {
            server::serve(&mut session, &mut transport, View::default());
            transport.written
        }
        Err(failure) => {
            log.borrow_mut().push(failure.error.to_string());
            startup::refusal("test").into_bytes()
        }
    };
    let lines = String::from_utf8_lossy(&written)
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    let log = log.borrow().clone();
    Run {
        lines,
        log,
        ..Run::default()
    }
}

/// Starts a program with a connected TCP socket as fd 0 and 1 (what inetd, xinetd and
/// systemd `Accept=yes` do), stderr captured.
pub fn spawn_inetd(mut cmd: Command) -> (Child, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let fd0: OwnedFd = server.try_clone().unwrap().into();
    let fd1: OwnedFd = server.into();
    let child = cmd
        .stdin(Stdio::from(fd0))
        .stdout(Stdio::from(fd1))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, client)
}

/// Runs a transcript through a program over a socket, step by step.
pub fn run_over_socket(t: &Transcript, mut cmd: Command, perl: bool) -> Run {
    if t.pipe {
        return run_over_pipe(t, cmd);
    }
    for (k, v) in &t.env {
        cmd.env(k, v);
    }
    let (mut child, stream) = spawn_inetd(cmd);
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut run = Run::default();
    for step in &t.steps {
        match step {
            Step::Send(bytes) => {
                if writer.write_all(bytes).is_err() {
                    break;
                }
            }
            Step::Wait(secs) => std::thread::sleep(Duration::from_secs_f64(*secs)),
            Step::Close => {
                let _ = writer.shutdown(Shutdown::Write);
            }
            Step::Expect(lines) => {
                let want = if perl {
                    replies_in(lines.iter().map(|e| e.text.as_str()))
                } else {
                    lines.len()
                };
                read_lines(&mut reader, &mut run.lines, want, perl);
            }
        }
    }
    let _ = writer.shutdown(Shutdown::Write);
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    run.lines
        .extend(rest.split("\r\n").filter(|l| !l.is_empty()).map(str::to_string));
    run.log = finish(&mut child);
    run
}

/// How many replies a list of expected lines makes (continuation lines are `NNN-`).
pub fn replies_in<'a>(lines: impl Iterator<Item = &'a str>) -> usize {
    lines.filter(|l| l.as_bytes().get(3) != Some(&b'-')).count()
}

/// Reads `want` lines (or, for `replies`, `want` complete replies).
fn read_lines(reader: &mut BufReader<TcpStream>, out: &mut Vec<String>, want: usize, replies: bool) {
    let mut got = 0;
    while got < want {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if !replies || line.as_bytes().get(3) != Some(&b'-') {
            got += 1;
        }
        out.push(line);
    }
}

/// Runs a transcript with stdin and stdout as pipes (a debug session).
fn run_over_pipe(t: &Transcript, mut cmd: Command) -> Run {
    for (k, v) in &t.env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let input: Vec<u8> = t.chunks().concat();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = String::new();
    let _ = child.stdout.take().unwrap().read_to_string(&mut out);
    let _ = writer.join();
    let log = finish(&mut child);
    Run {
        lines: out
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        log,
        ..Run::default()
    }
}

/// Waits for the child (killing it after 20 s) and returns its stderr lines.
fn finish(child: &mut Child) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break;
            }
        }
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err.lines().map(str::to_string).collect()
}

/// The binary, configured for a test directory.
pub fn binary_command(dir: &TestDir) -> Command {
    let mut cmd = Command::new(binary());
    cmd.arg("--config")
        .arg(dir.config())
        .current_dir(dir.path())
        .env_remove("QPSMTPD_CONFIG");
    cmd
}

/// Compares a run with the transcript's expectations and checks; `Err` explains.
pub fn verify(t: &Transcript, dir: &TestDir, run: &Run, mode: &str) -> Result<(), String> {
    let expected = t.expected();
    let mut problems = Vec::new();
    for (i, exp) in expected.iter().enumerate() {
        match run.lines.get(i) {
            Some(line) if exp.matches(line) => {}
            Some(line) => problems.push(format!(
                "line {}: expected {:?}{}, got {line:?}",
                i + 1,
                exp.text,
                if exp.prefix { "*" } else { "" }
            )),
            None => problems.push(format!("line {}: expected {:?}, got nothing", i + 1, exp.text)),
        }
    }
    for extra in run.lines.iter().skip(expected.len()) {
        problems.push(format!("unexpected reply {extra:?}"));
    }
    // The rules every run is held to (see the transcript format).
    let mut checks = t.checks.clone();
    checks.push(Check::SpoolEmpty);
    if !t.counts_messages() {
        checks.push(Check::Messages(0));
    }
    for check in &checks {
        if let Err(e) = run_check(check, dir, run) {
            problems.push(e);
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} ({mode}):\n  {}\n--- replies ---\n{}\n--- log ---\n{}\n",
        t.path.display(),
        problems.join("\n  "),
        run.lines.join("\n"),
        run.log.join("\n")
    ))
}

fn run_check(check: &Check, dir: &TestDir, run: &Run) -> Result<(), String> {
    let messages = dir.messages();
    match check {
        Check::Messages(n) if messages.len() == *n => Ok(()),
        Check::Messages(n) => Err(format!(
            "expected {n} delivered messages, found {}: {messages:?}",
            messages.len()
        )),
        Check::Message { pick, lacks, text } => {
            let (name, body) = pick_message(&messages, pick)?;
            match (find(&body, text), lacks) {
                (true, false) | (false, true) => Ok(()),
                (false, false) => Err(format!(
                    "{name} does not contain {:?}:\n{}",
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(&body)
                )),
                (true, true) => Err(format!(
                    "{name} contains {:?}:\n{}",
                    String::from_utf8_lossy(text),
                    String::from_utf8_lossy(&body)
                )),
            }
        }
        Check::Maildir { path, count } => {
            let new = dir.path().join(path).join("new");
            let found = std::fs::read_dir(&new).map(|d| d.flatten().count()).unwrap_or(0);
            if found == *count {
                Ok(())
            } else {
                Err(format!(
                    "expected {count} messages in {}, found {found}; delivered: {messages:?}",
                    new.display()
                ))
            }
        }
        Check::SpoolEmpty => {
            let left = dir.spool_files();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("spool not empty: {left:?}"))
            }
        }
        Check::LogContains(s) if run.log.iter().any(|l| l.contains(s.as_str())) => Ok(()),
        Check::LogContains(s) => Err(format!("no log line contains {s:?}")),
        Check::LogLacks(s) if run.log.iter().any(|l| l.contains(s.as_str())) => {
            Err(format!("a log line contains {s:?}"))
        }
        Check::LogLacks(_) => Ok(()),
        Check::DnsLogContains(s) if run.dns_log.iter().any(|l| l.contains(s.as_str())) => Ok(()),
        Check::DnsLogContains(s) => Err(format!("no DNS query log line contains {s:?}: {:?}", run.dns_log)),
        Check::DnsLogLacks(s) if run.dns_log.iter().any(|l| l.contains(s.as_str())) => {
            Err(format!("a DNS query log line contains {s:?}: {:?}", run.dns_log))
        }
        Check::DnsLogLacks(_) => Ok(()),
        Check::DnsQueries(n) if run.dns_log.len() == *n => Ok(()),
        Check::DnsQueries(n) => Err(format!("expected {n} DNS queries, got {:?}", run.dns_log)),
    }
}

/// The message a check names, with a name for error messages; an error when it was not
/// delivered (so `lacks` never passes on a message that does not exist).
fn pick_message(messages: &[PathBuf], pick: &Pick) -> Result<(String, Vec<u8>), String> {
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    match pick {
        Pick::Last => match messages.last() {
            Some(p) => Ok(("the last message".into(), read(p)?)),
            None => Err("no message was delivered".into()),
        },
        Pick::Nth(n) => match messages.get(n - 1) {
            Some(p) => Ok((format!("message {n}"), read(p)?)),
            None => Err(format!(
                "message {n} was not delivered ({} delivered)",
                messages.len()
            )),
        },
        Pick::To(addr) => {
            let mut found = Vec::new();
            for p in messages {
                let body = read(p)?;
                if delivered_to(&body).any(|a| a.eq_ignore_ascii_case(addr.as_bytes())) {
                    found.push(body);
                }
            }
            match found.len() {
                1 => Ok((format!("the message to {addr}"), found.remove(0))),
                n => Err(format!(
                    "{n} delivered messages have Delivered-To: {addr} (expected one; {} delivered)",
                    messages.len()
                )),
            }
        }
    }
}

/// The `Delivered-To:` values in a message's header block.
fn delivered_to(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message
        .split(|&b| b == b'\n')
        .take_while(|l| !l.is_empty() && *l != b"\r")
        .filter_map(|l| l.strip_prefix(b"Delivered-To: "))
        .map(|v| v.strip_suffix(b"\r").unwrap_or(v))
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// Polls `ready` every 10 ms for up to `secs` seconds; whether it became true. For waits
/// on something another process does, instead of a fixed sleep.
pub fn wait_until(secs: u64, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    ready()
}

/// The process ids of a (single-threaded) process's children, from /proc.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Is the process blocked in `write` on this descriptor (for example on a full pipe)?
/// Read from /proc/PID/syscall, which names the call a sleeping process is in.
pub fn blocked_in_write(pid: u32, fd: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else {
        return false;
    };
    let mut fields = text.split_whitespace();
    let call = fields.next().and_then(|n| n.parse::<i64>().ok());
    let first = fields
        .next()
        .and_then(|a| i64::from_str_radix(a.trim_start_matches("0x"), 16).ok());
    call == Some(nix::libc::SYS_write) && first == Some(i64::from(fd))
}
