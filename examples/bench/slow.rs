//! The slow-clients case (`bench/run --slow-clients N`): N connections under
//! `tcpserver -c 1000` that each send one byte every few seconds, as a slowloris attack
//! does. It prints the memory each of their processes holds, how each connection ended
//! (a `421` at the configured limit is the expected end) and how long an ordinary
//! client's session takes while they are all connected, against the same sessions
//! before they came. Figures only; nothing is asserted.

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::{Opts, Target, expect, percentiles, sample_chain, session, write_config};

/// Where the slow clients trickle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// After `354`, bytes of a message line that never ends (bounded by `timeout`).
    Data,
    /// Bytes of a command line that never ends, right after the greeting.
    Command,
}

/// The settings of the case.
pub struct Slow {
    /// Connections.
    pub clients: usize,
    /// Seconds between two bytes of one client.
    pub interval: f64,
    /// The server's `timeout` (and `timeoutsmtpd`) for the run, seconds.
    pub timeout: u64,
    /// Where to trickle.
    pub phase: Phase,
}

/// How one slow connection ended.
enum End {
    /// A reply line arrived after this long of trickling.
    Reply(String, Duration),
    /// The server closed without a reply.
    Closed,
    /// Still open when the client gave up.
    NotCut,
    /// It never got as far as trickling.
    Failed(String),
}

pub fn run(o: &Opts, s: &Slow, tcpserver: &Path, ours: &Path) {
    raise_fd_limit(s.clients + 64);
    let dir = o.work.join("slow");
    let mut files = sample_chain(&dir);
    files.push(("timeout", format!("{}\n", s.timeout)));
    files.push(("timeoutsmtpd", format!("{}\n", s.timeout)));
    let cfg = write_config(&dir, &files);
    let target = Target::start_with(
        tcpserver,
        ours,
        &["--config".into(), cfg.to_string_lossy().into_owned()],
        &dir,
        &[],
        1000,
    );
    let addr = format!("127.0.0.1:{}", target.port);
    let body = super::message(2000);
    println!(
        "\nslow clients: {} connections under tcpserver -c 1000, one byte every {} s in the {} \
         phase; server timeout {} s",
        s.clients,
        s.interval,
        if s.phase == Phase::Data { "DATA" } else { "command" },
        s.timeout
    );
    let before = normal_sessions(&addr, &body, 20);
    // The clients give up long after every limit the server should apply.
    let give_up = Duration::from_secs(3 * s.timeout + 30);
    let ends = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..s.clients)
            .map(|_| {
                // Connections arrive over about a second, not all in the same instant.
                std::thread::sleep(Duration::from_millis(2));
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn_scoped(scope, || slow_client(&addr, s, give_up))
                    .unwrap()
            })
            .collect();
        // Measure once every client has had time to connect and start trickling.
        std::thread::sleep(Duration::from_secs_f64((s.timeout as f64 / 2.0).max(3.0)));
        let memory = children_memory(target.pid());
        let during = normal_sessions(&addr, &body, 20);
        print_memory(&memory);
        print_latency("ordinary session, before the slow clients", &before);
        print_latency("ordinary session, while they are connected", &during);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(End::Failed("thread panicked".into())))
            .collect::<Vec<_>>()
    });
    print_ends(&ends, s.timeout);
    drop(target);
}

/// One slow client: into the phase, then a byte every interval until the server answers
/// or closes, or `give_up` passes.
fn slow_client(addr: &str, s: &Slow, give_up: Duration) -> End {
    let stream = match TcpStream::connect(addr) {
        Ok(st) => st,
        Err(e) => return End::Failed(format!("connect: {e}")),
    };
    let mut r = BufReader::new(&stream);
    let mut w = &stream;
    let setup = (|| -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(60)))?;
        expect(&mut r, "220")?;
        if s.phase == Phase::Data {
            for (cmd, code) in [
                (&b"EHLO slow.example\r\n"[..], "250"),
                (b"MAIL FROM:<slow@example.net>\r\n", "250"),
                (b"RCPT TO:<user@example.org>\r\n", "250"),
                (b"DATA\r\n", "354"),
            ] {
                w.write_all(cmd)?;
                expect(&mut r, code)?;
            }
            w.write_all(b"Subject: slow\r\n\r\n")?;
        }
        stream.set_read_timeout(Some(Duration::from_secs_f64(s.interval)))
    })();
    if let Err(e) = setup {
        return End::Failed(e.to_string());
    }
    let start = Instant::now();
    let mut line = String::new();
    while start.elapsed() < give_up {
        match r.read_line(&mut line) {
            Ok(0) => return End::Closed,
            Ok(_) if line.ends_with('\n') => {
                return End::Reply(line.trim_end().to_string(), start.elapsed());
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return End::Closed,
        }
        if w.write_all(b"x").is_err() {
            return End::Closed;
        }
    }
    End::NotCut
}

/// Seconds per ordinary session (greeting to `221`), `n` in a row.
fn normal_sessions(addr: &str, body: &[u8], n: usize) -> Vec<f64> {
    (0..n)
        .filter_map(|_| session(addr, body).ok().map(|d| d.as_secs_f64()))
        .collect()
}

fn print_latency(what: &str, times: &[f64]) {
    let (p50, _) = percentiles(times.to_vec());
    let max = times.iter().copied().fold(0.0, f64::max);
    println!(
        "  {what}: p50 {:.2} ms, max {:.2} ms ({} of 20 completed)",
        p50 * 1e3,
        max * 1e3,
        times.len()
    );
}

/// Memory of the server processes tcpserver started, in kB.
struct Memory {
    processes: usize,
    rss: u64,
    pss: u64,
    private: u64,
}

fn children_memory(parent: u32) -> Memory {
    let mut m = Memory {
        processes: 0,
        rss: 0,
        pss: 0,
        private: 0,
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return m;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // The parent pid is the second field after the command name in parentheses.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(parent) {
            continue;
        }
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        let kb = |key: &str| -> u64 {
            rollup
                .lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        m.processes += 1;
        m.rss += kb("Rss:");
        m.pss += kb("Pss:");
        m.private += kb("Private_Clean:") + kb("Private_Dirty:");
    }
    m
}

fn print_memory(m: &Memory) {
    let per = |total: u64| total as f64 / m.processes.max(1) as f64 / 1024.0;
    println!(
        "  {} server processes: per process {:.2} MB RSS, {:.2} MB PSS, {:.2} MB private; \
         all together {:.0} MB PSS",
        m.processes,
        per(m.rss),
        per(m.pss),
        per(m.private),
        m.pss as f64 / 1024.0
    );
}

fn print_ends(ends: &[End], timeout: u64) {
    let mut cut = Vec::new();
    let mut other: Vec<String> = Vec::new();
    let (mut closed, mut not_cut, mut failed) = (0, 0, 0);
    for e in ends {
        match e {
            End::Reply(line, after) if line.starts_with("421") => cut.push(after.as_secs_f64()),
            End::Reply(line, _) => other.push(line.clone()),
            End::Closed => closed += 1,
            End::NotCut => not_cut += 1,
            End::Failed(why) => {
                failed += 1;
                if failed == 1 {
                    println!("  first failure to start trickling: {why}");
                }
            }
        }
    }
    let (p50, p99) = percentiles(cut.clone());
    let max = cut.iter().copied().fold(0.0, f64::max);
    println!(
        "  cut with 421: {} of {} (after p50 {p50:.1} s, p99 {p99:.1} s, max {max:.1} s of \
         trickling; timeout {timeout} s)",
        cut.len(),
        ends.len()
    );
    println!(
        "  other replies: {}, closed without a reply: {closed}, still open when the client \
         gave up: {not_cut}, never started: {failed}",
        other.len()
    );
    if let Some(first) = other.first() {
        println!("  first other reply: {first}");
    }
}

/// More open files for this process: each slow client holds a socket.
fn raise_fd_limit(want: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < want as u64
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard.min(want as u64 * 2), hard);
    }
}
