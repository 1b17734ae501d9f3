//! The benchmark harness (run through `bench/run`): qpsmtpd-rs, Perl qpsmtpd and a trivial
//! floor, each started per connection by ucspi-tcp's tcpserver on loopback, under the same
//! load; then per-session memory, a 100 MB message, a 20-plugin chain and instruction
//! counts under callgrind, and what STARTTLS adds to a session ([tls]). It prints figures
//! and ratios; it asserts nothing about speed. `--quick` leaves the TLS figures out,
//! `--tls-only` runs only them. Opt-in: `--slow-clients N` adds the many-slow-clients case
//! ([slow]), `--slow-only` runs only that. Opt-in: `--dns` adds the DNS plugins' cost
//! ([dns]), `--dns-only` runs only that. Everything the servers store goes on a fresh
//! journaled ext4 ([storage]) unless `--storage DIR` or `--work DIR` says where.

#[path = "bench/compare.rs"]
mod compare;
#[path = "bench/cost.rs"]
mod cost;
#[path = "bench/dns.rs"]
mod dns;
#[path = "bench/peers.rs"]
mod peers;
#[path = "bench/slow.rs"]
mod slow;
#[path = "bench/start.rs"]
mod start;
#[path = "bench/storage.rs"]
mod storage;
#[path = "bench/tls.rs"]
mod tls;
#[path = "bench/variants.rs"]
mod variants;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Opts {
    sessions: usize,
    perl_sessions: usize,
    concurrencies: Vec<usize>,
    rounds: usize,
    peers: bool,
    binary: Option<PathBuf>,
    /// The floor's binary, built as the measured server is (bench/run: static-pie).
    floor: Option<PathBuf>,
    variants: Vec<(String, PathBuf)>,
    /// `--start NAME=PATH`: bench/start.c built with each C library ([start]).
    starts: Vec<(String, PathBuf)>,
    greetings: usize,
    big_mb: usize,
    record: bool,
    root: PathBuf,
    work: PathBuf,
    /// `--work` or `--storage`: where the work directory goes, if not on a fresh image.
    storage: Option<storage::Wanted>,
    slow: slow::Slow,
    slow_only: bool,
    quick: bool,
    tls_only: bool,
    dns: bool,
    dns_only: bool,
}

/// `NAME=PATH` of a flag, the path made absolute (each server runs in its own directory).
fn named_path(arg: Option<String>, flag: &str) -> (String, PathBuf) {
    let arg = arg.unwrap_or_else(|| panic!("{flag} needs NAME=PATH"));
    let (name, path) = arg
        .split_once('=')
        .unwrap_or_else(|| panic!("{flag} needs NAME=PATH"));
    let path = std::fs::canonicalize(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    (name.to_string(), path)
}

fn opts() -> Opts {
    let mut o = Opts {
        sessions: 2000,
        perl_sessions: 100,
        concurrencies: vec![2, 8],
        rounds: 2,
        peers: true,
        binary: None,
        floor: None,
        variants: Vec::new(),
        starts: Vec::new(),
        greetings: 300,
        big_mb: 100,
        record: false,
        root: PathBuf::from(env!("CARGO_MANIFEST_DIR")),
        work: std::env::temp_dir().join(format!("qpsmtpd-rs-bench.{}", std::process::id())),
        storage: None,
        slow: slow::Slow {
            clients: 0,
            interval: 2.0,
            timeout: 10,
            phase: slow::Phase::Data,
        },
        slow_only: false,
        quick: false,
        tls_only: false,
        dns: false,
        dns_only: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match a.as_str() {
            "--sessions" => o.sessions = num("--sessions"),
            "--perl-sessions" => o.perl_sessions = num("--perl-sessions"),
            "--concurrency" => {
                o.concurrencies = args
                    .next()
                    .map(|v| v.split(',').filter_map(|c| c.parse().ok()).collect())
                    .filter(|v: &Vec<usize>| !v.is_empty())
                    .expect("--concurrency needs numbers, as in 2,8")
            }
            "--rounds" => o.rounds = num("--rounds").max(1),
            "--no-peers" => o.peers = false,
            "--variant" => o.variants.push(named_path(args.next(), "--variant")),
            "--binary" => {
                let path = args.next().expect("--binary needs a path");
                o.binary = Some(std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            }
            "--start" => o.starts.push(named_path(args.next(), "--start")),
            "--floor" => {
                let path = args.next().expect("--floor needs a path");
                o.floor = Some(std::fs::canonicalize(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
            }
            "--greetings" => o.greetings = num("--greetings"),
            "--big-mb" => o.big_mb = num("--big-mb"),
            "--record" => o.record = true,
            "--quick" => {
                o.quick = true;
                o.sessions = 300;
                o.perl_sessions = 20;
                o.greetings = 50;
                o.big_mb = 20;
                o.rounds = 1;
            }
            "--slow-clients" => o.slow.clients = num("--slow-clients"),
            "--slow-timeout" => o.slow.timeout = num("--slow-timeout") as u64,
            "--slow-interval" => {
                o.slow.interval = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--slow-interval needs seconds")
            }
            "--slow-phase" => {
                o.slow.phase = match args.next().as_deref() {
                    Some("data") => slow::Phase::Data,
                    Some("command") => slow::Phase::Command,
                    _ => panic!("--slow-phase needs data or command"),
                }
            }
            "--slow-only" => o.slow_only = true,
            "--tls-only" => o.tls_only = true,
            "--dns" => o.dns = true,
            "--dns-only" => o.dns_only = true,
            "--work" => {
                let dir = PathBuf::from(args.next().expect("--work needs a directory"));
                o.storage = Some(storage::Wanted::Exactly(dir));
            }
            "--storage" => {
                let dir = PathBuf::from(args.next().expect("--storage needs a directory"));
                o.storage = Some(storage::Wanted::Inside(dir));
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

fn main() {
    let mut o = opts();
    let wanted = o.storage.take().unwrap_or_else(|| storage::Wanted::Journaled {
        fallback: o.work.clone(),
    });
    // Unmounted when it goes out of scope, at the end of main or on a panic.
    let storage = storage::prepare(&o.root, wanted);
    o.work = storage.work.clone();
    let release = o.root.join("target/release");
    let ours = o.binary.clone().unwrap_or_else(|| release.join("qpsmtpd-rs"));
    let floor = o
        .floor
        .clone()
        .unwrap_or_else(|| release.join("examples/smtp_floor"));
    let tcpserver = which("tcpserver").expect("tcpserver (ucspi-tcp) is needed");
    let perl_ok = Path::new("/usr/share/perl5/Qpsmtpd/TcpServer.pm").exists();
    let body = message(2000);
    if o.slow_only {
        if o.slow.clients == 0 {
            o.slow.clients = 500;
        }
        slow::run(&o, &o.slow, &tcpserver, &ours);
        let _ = std::fs::remove_dir_all(&o.work);
        return;
    }
    if o.tls_only {
        tls::run(&o, &ours);
        let _ = std::fs::remove_dir_all(&o.work);
        return;
    }
    if o.dns_only {
        dns::run(&o, &tcpserver, &ours);
        let _ = std::fs::remove_dir_all(&o.work);
        return;
    }
    if !o.variants.is_empty() {
        println!(
            "builds of qpsmtpd-rs side by side: {} sessions per measurement at {} clients; \
             load average {}\n",
            o.sessions,
            o.concurrencies
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" and "),
            load_average()
        );
        variants::run(&o, &o.variants, &tcpserver, &floor, &body);
        let _ = std::fs::remove_dir_all(&o.work);
        return;
    }

    println!(
        "qpsmtpd-rs benchmark: {} sessions per measurement ({} for Perl), at {} clients, ~2 KB \
         message per connection",
        o.sessions,
        o.perl_sessions,
        o.concurrencies
            .iter()
            .map(|c| c.to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    println!(
        "all on 127.0.0.1; tcpserver starts ours, Perl's and the floors per connection; maildirs \
         fsync'd on {}; load average {}\n",
        o.work.display(),
        load_average()
    );

    let sample = o.work.join("sample");
    let sample_cfg = write_config(&sample, &sample_chain(&sample));
    let chain20 = o.work.join("chain20");
    let chain20_cfg = write_config(&chain20, &twenty_chain(&chain20));
    let floor_dir = o.work.join("floor-maildir");
    make_maildir(&floor_dir);

    // Started in table order; ratios are of the first qpsmtpd-rs row to each other row.
    let mut servers = Vec::new();
    let tcp = |name: &str, prog: &Path, args: &[String], cwd: &Path, env: &[(&str, String)]| {
        let t = Target::start_env(&tcpserver, prog, args, cwd, env);
        compare::Server {
            name: name.into(),
            port: t.port,
            sessions: o.sessions,
            warm: 20,
            keep: Box::new(t),
        }
    };
    let cfg_arg = |cfg: &Path| vec!["--config".into(), cfg.to_string_lossy().into_owned()];
    servers.push(tcp("floor (no storage)", &floor, &[], &o.work, &[]));
    let floor_args = ["--maildir".into(), floor_dir.to_string_lossy().into_owned()];
    servers.push(tcp("floor (maildir+fsync)", &floor, &floor_args, &o.work, &[]));
    if perl_ok {
        let perl_dir = o.work.join("perl");
        let perl_cfg = write_config(&perl_dir, &perl_chain(&perl_dir));
        let oracle = o.root.join("tests/oracle/qpsmtpd-tcpserver");
        let env = [("QPSMTPD_CONFIG", perl_cfg.to_string_lossy().into_owned())];
        let args = [oracle.to_string_lossy().into_owned()];
        let mut perl = tcp(
            "Perl qpsmtpd 0.94",
            Path::new("/usr/bin/perl"),
            &args,
            &perl_dir,
            &env,
        );
        perl.sessions = o.perl_sessions;
        perl.warm = 5;
        servers.push(perl);
    } else {
        println!("Perl qpsmtpd: skipped (apt-get install qpsmtpd)");
    }
    if o.peers {
        match peers::Postfix::server(&o.work.join("postfix"), o.sessions) {
            Ok(server) => servers.push(server),
            Err(e) => println!("Postfix: skipped, {e}"),
        }
        let cache = o.root.join("target/bench-cache/haraka");
        match peers::Haraka::start(&cache, &o.work.join("haraka")) {
            Ok(h) => servers.push(compare::Server {
                name: format!("Haraka {} (2 workers)", peers::HARAKA),
                port: h.port,
                sessions: o.sessions,
                // Node compiles the hot paths after a few hundred sessions.
                warm: 1000,
                keep: Box::new(h),
            }),
            Err(e) => println!("Haraka: skipped, {e}"),
        }
    }
    servers.push(tcp(
        "qpsmtpd-rs sample",
        &ours,
        &cfg_arg(&sample_cfg),
        &sample,
        &[],
    ));
    servers.push(tcp(
        "qpsmtpd-rs 20 plugins",
        &ours,
        &cfg_arg(&chain20_cfg),
        &chain20,
        &[],
    ));
    compare::run(&servers, &o.concurrencies, o.rounds, o.greetings, &body);
    // Each server stops here (Postfix and Haraka too), before the per-session figures.
    drop(servers);

    println!(
        "\nper session (whole sessions run one at a time, {} each; getrusage):",
        o.greetings
    );
    let floor_cost = cost::per_session(&mut Command::new(&floor), &body, o.greetings);
    cost::print("floor", &floor_cost);
    let ours_cost = cost::per_session(
        Command::new(&ours)
            .args(["--config"])
            .arg(&sample_cfg)
            .current_dir(&sample),
        &body,
        o.greetings,
    );
    cost::print("qpsmtpd-rs sample", &ours_cost);
    cost::print_memory("floor", &cost::memory(&mut Command::new(&floor), &body));
    let ours_memory = cost::memory(
        Command::new(&ours)
            .args(["--config"])
            .arg(&sample_cfg)
            .current_dir(&sample),
        &body,
    );
    cost::print_memory("qpsmtpd-rs sample", &ours_memory);
    start::run(&o.starts, o.greetings, ours_cost.cpu_ms);

    println!(
        "\nexec to greeting (spawned directly with a socket as fd 0/1, {} times, p50 / p99):",
        o.greetings
    );
    let g_floor = exec_to_greeting(&mut Command::new(&floor), o.greetings);
    let g_ours = exec_to_greeting(
        Command::new(&ours)
            .args(["--config"])
            .arg(&sample_cfg)
            .current_dir(&sample),
        o.greetings,
    );
    println!(
        "  floor:       {:.3} / {:.3} ms",
        g_floor.0 * 1e3,
        g_floor.1 * 1e3
    );
    println!(
        "  qpsmtpd-rs:  {:.3} / {:.3} ms   (target < 1 ms)",
        g_ours.0 * 1e3,
        g_ours.1 * 1e3
    );

    println!("\nmemory (peak RSS, VmHWM, of one session process):");
    let rss_floor = session_rss(&mut Command::new(&floor), &body);
    println!(
        "  floor session:              {:.1} MB",
        rss_floor as f64 / 1024.0
    );
    let rss_ours = session_rss(
        Command::new(&ours)
            .args(["--config"])
            .arg(&sample_cfg)
            .current_dir(&sample),
        &body,
    );
    println!(
        "  qpsmtpd-rs sample session:  {:.1} MB   (target <= 4 MB)",
        rss_ours as f64 / 1024.0
    );
    if perl_ok {
        let perl_dir = o.work.join("perl");
        let mut c = Command::new("/usr/bin/perl");
        c.arg(o.root.join("tests/oracle/qpsmtpd-tcpserver"))
            .env("QPSMTPD_CONFIG", perl_dir.join("config"))
            .env("TCPREMOTEIP", "127.0.0.1")
            .current_dir(&perl_dir);
        let rss_perl = session_rss(&mut c, &body);
        println!("  Perl qpsmtpd session:       {:.1} MB", rss_perl as f64 / 1024.0);
    }
    // Three runs, the median shown: the figure includes writing 100 MB to the storage,
    // which on a virtual machine's shared disk varies from run to run; so before each run
    // the disk alone writes and fsyncs as much on the same file system, for comparison.
    let mut runs: Vec<(f64, u64, f64)> = (0..3)
        .map(|_| {
            let disk = disk_alone(&sample.join("maildir/tmp"), o.big_mb);
            let (secs, hwm) = big_message(
                Command::new(&ours)
                    .args(["--config"])
                    .arg(&sample_cfg)
                    .current_dir(&sample),
                o.big_mb,
            );
            // The next run's disk space (the storage image is 1 GiB).
            for entry in std::fs::read_dir(sample.join("maildir/new"))
                .into_iter()
                .flatten()
                .flatten()
            {
                let _ = std::fs::remove_file(entry.path());
            }
            (secs, hwm, disk)
        })
        .collect();
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mbs = |secs: f64| (o.big_mb * 1024 * 1024) as f64 / secs / 1e6;
    let rss_big = runs.iter().map(|r| r.1).max().unwrap_or(0);
    println!(
        "  {} MB message:              {:.1} MB peak RSS, {:.2} s, {:.0} MB/s through DATA (3 runs: {:.0}-{:.0})   (targets <= 8 MB, >= 300 MB/s)",
        o.big_mb,
        rss_big as f64 / 1024.0,
        runs[1].0,
        mbs(runs[1].0),
        mbs(runs[2].0),
        mbs(runs[0].0)
    );
    let mut disk: Vec<f64> = runs.iter().map(|r| mbs(r.2)).collect();
    disk.sort_by(f64::total_cmp);
    println!(
        "    the disk alone, just before each run (write {} MB and fsync, same file system): {:.0} MB/s ({:.0}-{:.0})",
        o.big_mb, disk[1], disk[0], disk[2]
    );
    // The worst header block for memory: as many fields as max_header_size (1 MiB) holds.
    let mut header = b"a:\r\n".repeat(340_000);
    header.extend_from_slice(b"\r\nbody\r\n.\r\n");
    let rss_header = session_rss(
        Command::new(&ours)
            .args(["--config"])
            .arg(&sample_cfg)
            .current_dir(&sample),
        &header,
    );
    println!(
        "  1 MB header (340,000 fields): {:.1} MB peak RSS   (a small multiple of max_header_size)",
        rss_header as f64 / 1024.0
    );

    println!("\ninstructions per typical session (valgrind --tool=callgrind; deterministic):");
    if which("valgrind").is_some() {
        let transcript = o.work.join("session.txt");
        std::fs::write(&transcript, transcript_text(&body)).unwrap();
        let s = callgrind(&ours, &sample_cfg, &sample, &transcript);
        let c = callgrind(&ours, &chain20_cfg, &chain20, &transcript);
        let f = callgrind(&floor, Path::new(""), &o.work, &transcript);
        println!("  floor:                 {:>12}", s_num(f));
        println!(
            "  qpsmtpd-rs sample:     {:>12}   ({:.2}x floor)",
            s_num(s),
            s as f64 / f as f64
        );
        println!(
            "  qpsmtpd-rs 20 plugins: {:>12}   ({:.2}x sample chain; target <= 1.2)",
            s_num(c),
            c as f64 / s as f64
        );
        baseline(&o, s, c);
    } else {
        println!("  valgrind is not installed (apt-get install valgrind)");
    }
    if !o.quick {
        tls::run(&o, &ours);
    }
    if o.slow.clients > 0 {
        slow::run(&o, &o.slow, &tcpserver, &ours);
    }
    if o.dns {
        dns::run(&o, &tcpserver, &ours);
    }
    let _ = std::fs::remove_dir_all(&o.work);
}

/// The 1, 5 and 15 minute load averages: how busy the machine was while we measured.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn s_num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Compares with (or, with --record, writes) bench/instructions.txt.
fn baseline(o: &Opts, sample: u64, chain20: u64) {
    let path = o.root.join("bench/instructions.txt");
    let recorded = std::fs::read_to_string(&path).unwrap_or_default();
    let get = |key: &str| {
        recorded
            .lines()
            .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse::<u64>().ok()))
    };
    if let Some(old) = get("sample-session") {
        println!(
            "  recorded sample session: {:>10}   (now {:.2}x of it)",
            s_num(old),
            sample as f64 / old as f64
        );
    }
    if o.record {
        let text = format!(
            "# Instructions per typical session under callgrind, written by `bench/run --record`.\n\
             # A change that moves these much should say why in its commit message.\n\
             sample-session {sample}\nchain20-session {chain20}\n"
        );
        std::fs::write(&path, text).unwrap();
        println!("  recorded in {}", path.display());
    }
}

/// Connect-to-greeting latency over sequential connections.
fn greetings(addr: &str, n: usize) -> (f64, f64) {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let Ok(s) = TcpStream::connect(addr) else { continue };
        v.extend(greeted(t, s));
    }
    percentiles(v)
}

/// Seconds since `t` when the greeting arrived (none if it was not a 220); then QUIT.
fn greeted(t: Instant, s: TcpStream) -> Option<f64> {
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut line = String::new();
    let ok = r.read_line(&mut line).is_ok() && line.starts_with("220");
    let elapsed = t.elapsed().as_secs_f64();
    let mut w = s;
    let _ = w.write_all(b"QUIT\r\n");
    let _ = r.read_line(&mut line);
    ok.then_some(elapsed)
}

/// The median and the 99th percentile (0 for no samples).
fn percentiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        v.get(((v.len() as f64 * p) as usize).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    (pct(0.5), pct(0.99))
}

fn expect(r: &mut impl BufRead, code: &str) -> std::io::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed"));
        }
        if !line.starts_with(code) {
            return Err(std::io::Error::other(format!("expected {code}, got {line}")));
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// One closed-loop session: greeting, EHLO, MAIL, RCPT, DATA, message, QUIT.
fn session(addr: &str, body: &[u8]) -> std::io::Result<Duration> {
    let t = Instant::now();
    let s = TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    converse(&s, body)?;
    Ok(t.elapsed())
}

/// The client's side of one session on a connected stream, up to the `221`.
fn converse(s: &TcpStream, body: &[u8]) -> std::io::Result<()> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut r = BufReader::new(s.try_clone()?);
    let mut w = s;
    expect(&mut r, "220")?;
    for (cmd, code) in [
        (&b"EHLO bench.example\r\n"[..], "250"),
        (b"MAIL FROM:<bench@example.net>\r\n", "250"),
        (b"RCPT TO:<user@example.org>\r\n", "250"),
        (b"DATA\r\n", "354"),
    ] {
        w.write_all(cmd)?;
        expect(&mut r, code)?;
    }
    w.write_all(body)?;
    expect(&mut r, "250")?;
    w.write_all(b"QUIT\r\n")?;
    expect(&mut r, "221")
}

/// A ~2 KB message ending in the terminator, CRLF line ends.
fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: bench <bench@example.net>\r\nTo: user@example.org\r\nSubject: benchmark\r\nMessage-Id: <bench@example.net>\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(b"The quick brown fox jumps over the lazy dog, again and again and again.\r\n");
    }
    m.extend_from_slice(b".\r\n");
    m
}

fn transcript_text(body: &[u8]) -> Vec<u8> {
    let mut t =
        b"EHLO bench.example\r\nMAIL FROM:<bench@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n"
            .to_vec();
    t.extend_from_slice(body);
    t.extend_from_slice(b"QUIT\r\n");
    t
}

struct Target {
    child: Child,
    port: u16,
}

impl Target {
    fn start(tcpserver: &Path, prog: &Path, args: &[String], cwd: &Path) -> Target {
        Target::start_env(tcpserver, prog, args, cwd, &[])
    }

    fn start_env(
        tcpserver: &Path,
        prog: &Path,
        args: &[String],
        cwd: &Path,
        env: &[(&str, String)],
    ) -> Target {
        Target::start_with(tcpserver, prog, args, cwd, env, 200)
    }

    /// tcpserver with at most `max` connections at once (`-c`).
    fn start_with(
        tcpserver: &Path,
        prog: &Path,
        args: &[String],
        cwd: &Path,
        env: &[(&str, String)],
        max: usize,
    ) -> Target {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut cmd = Command::new(tcpserver);
        // The listen backlog grows with -c: a burst of connections must not wait for SYN
        // retransmissions (tcpserver's default backlog is 20).
        let backlog = max.max(20).to_string();
        cmd.args(["-R", "-H", "-l", "0", "-c", &max.to_string(), "-b", &backlog])
            .args(["127.0.0.1", &port.to_string()])
            .arg(prog)
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "tcpserver did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Target { child, port }
    }
}

impl Target {
    /// tcpserver's process id: the sessions are its children.
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Opts {
    /// The first concurrency asked for (the DNS figures use one).
    fn concurrency(&self) -> usize {
        self.concurrencies.first().copied().unwrap_or(2)
    }
}

/// One server's figures at one concurrency (the DNS figures).
struct Row {
    rate: f64,
    p50: f64,
    p99: f64,
    failed: usize,
}

/// `sessions` sessions against `t` at the first concurrency, after a warm-up.
fn measure(_name: &str, t: &Target, sessions: usize, o: &Opts, body: &[u8]) -> Row {
    let addr = format!("127.0.0.1:{}", t.port);
    for _ in 0..5 {
        let _ = session(&addr, body);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let times = std::sync::Mutex::new(Vec::with_capacity(sessions));
    let failed = std::sync::atomic::AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..o.concurrency() {
            s.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < sessions {
                    match session(&addr, body) {
                        Ok(d) => times.lock().unwrap().push(d.as_secs_f64()),
                        Err(_) => {
                            failed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let times = times.into_inner().unwrap();
    let rate = times.len() as f64 / wall;
    let (p50, p99) = percentiles(times);
    Row {
        rate,
        p50,
        p99,
        failed: failed.into_inner(),
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn make_maildir(dir: &Path) {
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
}

/// Writes DIR/config/<file> for each (file, lines) and returns the config directory.
fn write_config(dir: &Path, files: &[(&str, String)]) -> PathBuf {
    let cfg = dir.join("config");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::create_dir_all(dir.join("spool")).unwrap();
    for (name, text) in files {
        std::fs::write(cfg.join(name), text).unwrap();
    }
    cfg
}

fn common(dir: &Path) -> Vec<(&'static str, String)> {
    vec![
        ("me", "bench.example.org\n".into()),
        ("rcpthosts", "example.org\n".into()),
        ("relayclients", "10.1.2.\n".into()),
        ("badmailfrom", "spammer@example.net\n@junk.example.net\n".into()),
        ("badrcptto", "nobody@example.org\n".into()),
        ("spool_dir", format!("{}\n", dir.join("spool").display())),
        ("logging", "logging/warn LOGNOTICE\n".into()),
        // When the benchmark runs as root, serve as root rather than be refused.
        ("user", "root\n".into()),
    ]
}

/// The sample chain: relay, badmailfrom, rcpt_ok, maildir with fsync.
fn sample_chain(dir: &Path) -> Vec<(&'static str, String)> {
    let mut c = common(dir);
    c.push((
        "plugins",
        format!(
            "relay\nbadmailfrom\nrcpt_ok\nqueue/maildir {}\n",
            dir.join("maildir").display()
        ),
    ));
    c
}

/// Perl qpsmtpd with the equivalent config.
fn perl_chain(dir: &Path) -> Vec<(&'static str, String)> {
    let mut c = sample_chain(dir);
    c.retain(|(n, _)| *n != "logging");
    c.push(("logging", "logging/warn 4\n".into()));
    c.push(("plugin_dirs", "/usr/share/qpsmtpd/plugins\n".into()));
    c
}

/// Twenty built-in plugin instances, most of which run on every message.
fn twenty_chain(dir: &Path) -> Vec<(&'static str, String)> {
    let mut c = common(dir);
    let plugins = [
        "relay",
        "relay:1",
        "count_unrecognized_commands 4",
        "count_unrecognized_commands:1 10",
        "random_error 0",
        "random_error:1 0",
        "help",
        "badmailfrom",
        "badmailfrom:1",
        "badmailfrom:2 reject 0",
        "dont_require_anglebrackets",
        "naughty reject data",
        "badrcptto",
        "badrcptto:1",
        "badrcptto:2",
        "naughty:1 reject data_post",
        "random_error:2 0",
        "badmailfrom:3",
        "rcpt_ok",
    ];
    let mut text = plugins.join("\n");
    text.push_str(&format!("\nqueue/maildir {}\n", dir.join("maildir").display()));
    c.push(("plugins", text));
    c
}

/// Starts a program with a TCP socket as fd 0/1 (as inetd does).
fn spawn_inetd(cmd: &mut Command) -> (Child, TcpStream) {
    let (client, server) = socket_pair();
    let child = spawn_on(cmd, server);
    client.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    (child, client)
}

/// A connected loopback pair: the client's end and the server's.
fn socket_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (client, server)
}

/// Spawns `cmd` with `server` as its fd 0 and 1.
fn spawn_on(cmd: &mut Command, server: TcpStream) -> Child {
    let fd0: OwnedFd = server.try_clone().unwrap().into();
    let fd1: OwnedFd = server.into();
    let child = cmd
        .stdin(Stdio::from(fd0))
        .stdout(Stdio::from(fd1))
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The Command would otherwise keep its copies of the socket open, and the client
    // would never see end-of-file when the session ends.
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    child
}

/// Time from spawning the program to reading its greeting, sequentially.
fn exec_to_greeting(cmd: &mut Command, n: usize) -> (f64, f64) {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        // The socket is made before the clock starts: only spawn, exec and start-up count.
        let (client, server) = socket_pair();
        let t = Instant::now();
        let mut child = spawn_on(cmd, server);
        v.extend(greeted(t, client));
        let _ = child.wait();
    }
    percentiles(v)
}

fn vm_hwm_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Peak RSS of one session, read just before QUIT.
fn session_rss(cmd: &mut Command, body: &[u8]) -> u64 {
    let (mut child, s) = spawn_inetd(cmd);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let ok = (|| -> std::io::Result<()> {
        expect(&mut r, "220")?;
        for (cmd, code) in [
            (&b"EHLO bench.example\r\n"[..], "250"),
            (b"MAIL FROM:<bench@example.net>\r\n", "250"),
            (b"RCPT TO:<user@example.org>\r\n", "250"),
            (b"DATA\r\n", "354"),
        ] {
            w.write_all(cmd)?;
            expect(&mut r, code)?;
        }
        w.write_all(body)?;
        expect(&mut r, "250")
    })();
    let hwm = vm_hwm_kb(child.id());
    let _ = w.write_all(b"QUIT\r\n");
    let _ = w.shutdown(Shutdown::Write);
    let _ = r.read_to_end(&mut Vec::new());
    let _ = child.wait();
    if let Err(e) = ok {
        eprintln!("session for RSS failed: {e}");
    }
    hwm
}

/// Time and peak RSS for one message of `mb` megabytes.
/// Seconds to write `mb` MiB to a new file in `dir` and fsync it: what the disk alone
/// takes for the data of the big message.
fn disk_alone(dir: &Path, mb: usize) -> f64 {
    let path = dir.join("bench-disk-alone");
    let chunk = vec![b'x'; 1 << 20];
    let start = Instant::now();
    let mut f = std::fs::File::create(&path).unwrap();
    for _ in 0..mb {
        f.write_all(&chunk).unwrap();
    }
    f.sync_all().unwrap();
    let secs = start.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    secs
}

fn big_message(cmd: &mut Command, mb: usize) -> (f64, u64) {
    let (mut child, s) = spawn_inetd(cmd);
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    expect(&mut r, "220").unwrap();
    w.write_all(
        b"EHLO big.example\r\nMAIL FROM:<bench@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n",
    )
    .unwrap();
    for code in ["250", "250", "250", "354"] {
        expect(&mut r, code).unwrap();
    }
    let line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcd\r\n";
    let mut chunk = Vec::with_capacity(1 << 20);
    while chunk.len() + line.len() <= 1 << 20 {
        chunk.extend_from_slice(line);
    }
    let start = Instant::now();
    let mut sent = 0;
    w.write_all(b"Subject: big\r\n\r\n").unwrap();
    while sent < mb << 20 {
        w.write_all(&chunk).unwrap();
        sent += chunk.len();
    }
    w.write_all(b".\r\n").unwrap();
    expect(&mut r, "250").unwrap();
    let secs = start.elapsed().as_secs_f64();
    let hwm = vm_hwm_kb(child.id());
    let _ = w.write_all(b"QUIT\r\n");
    let _ = child.wait();
    (secs, hwm)
}

/// Instructions executed for one session piped into the program under callgrind.
fn callgrind(bin: &Path, cfg: &Path, cwd: &Path, transcript: &Path) -> u64 {
    let mut cmd = Command::new("valgrind");
    cmd.args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(bin);
    if !cfg.as_os_str().is_empty() {
        cmd.arg("--config").arg(cfg);
    }
    let out = cmd
        .current_dir(cwd)
        .stdin(std::fs::File::open(transcript).unwrap())
        .stdout(Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.split("Collected :").nth(1).and_then(|n| n.trim().parse().ok()))
        .unwrap_or(0)
}
