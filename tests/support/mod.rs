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

use transcript::{Check, Step, Transcript};

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
            std::fs::write(path, &files[&name]).unwrap();
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

    /// Delivered messages: files in any `new/` directory below the test dir.
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
        out.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
        out
    }
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
    let mut transport = Scripted::new(chunks);
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
    for check in &t.checks {
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
    let last = || {
        messages
            .last()
            .map(|p| std::fs::read(p).unwrap_or_default())
            .unwrap_or_default()
    };
    match check {
        Check::Messages(n) if messages.len() == *n => Ok(()),
        Check::Messages(n) => Err(format!(
            "expected {n} delivered messages, found {}",
            messages.len()
        )),
        Check::MessageContains(s) if find(&last(), s.as_bytes()) => Ok(()),
        Check::MessageContains(s) => Err(format!(
            "message does not contain {s:?}:\n{}",
            String::from_utf8_lossy(&last())
        )),
        Check::MessageLacks(s) if !find(&last(), s.as_bytes()) => Ok(()),
        Check::MessageLacks(s) => Err(format!("message contains {s:?}")),
        Check::SpoolEmpty => {
            let left: Vec<_> = std::fs::read_dir(dir.spool())
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .collect();
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

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}
