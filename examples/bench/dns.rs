//! The DNS plugins' cost (`bench/run --dns`): sessions per second with Debian's stock
//! plugin set against the test DNS server (tests/dns/testdns.py), next to the sample
//! config, with the server answering at once and with added latency; the connect phase
//! with five DNSBL zones on a server 20 ms away (about one round trip: the lookups go out
//! together); and the instructions one session executes (callgrind), so that a round trip
//! and CPU time can be told apart. Figures only; nothing is asserted.
//!
//! Debian's stock `plugins` file begins with `check_earlytalker action log`, which delays
//! every greeting by a second: as shipped, a session takes a second whatever the rest
//! costs, so that row is measured with few sessions and the others leave the line out.
//! The stock lists are empty, so a further set fills in `dnsbl_zones` and `rhsbl_zones`,
//! and another adds `fcrdns` and `resolvable_fromhost`: per session 3 questions in 2
//! round trips, then 11 in 6.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Opts, Target, common, measure, s_num, sample_chain, transcript_text, write_config};

/// Debian's first `plugins` line.
const EARLYTALKER: &str = "check_earlytalker action log";

/// Debian's qpsmtpd 0.94 `plugins`, its active lines after check_earlytalker.
const STOCK: &[&str] = &[
    "check_relay",
    "rhsbl",
    "dnsbl",
    "check_spamhelo",
    "check_badmailfrom",
    "check_badrcptto",
    "check_loop",
    "rcpt_ok",
];

/// The stock set with fcrdns first and resolvable_fromhost after check_relay.
fn with_fcrdns() -> Vec<&'static str> {
    ["fcrdns"]
        .iter()
        .chain(STOCK.iter().take(1))
        .chain(["resolvable_fromhost"].iter())
        .chain(STOCK.iter().skip(1))
        .copied()
        .collect()
}

/// The plugin sets measured: a name, the plugins, whether the DNS lists have zones.
fn sets<'a>(with_fcrdns: &'a [&'a str]) -> [(&'static str, &'a [&'a str], bool); 3] {
    [
        ("stock w/o earlytalker", STOCK, false),
        ("stock, dnsbl+rhsbl zones", STOCK, true),
        ("+fcrdns +resolvable_fromhost", with_fcrdns, true),
    ]
}

/// The test DNS server, stopped when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts tests/dns/testdns.py with tests/dns/test.zone, every answer `latency_ms` late.
fn start_server(o: &Opts, latency_ms: u64) -> Option<Server> {
    let python = if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    let dnslib = Command::new(python)
        .args(["-c", "import dnslib"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !dnslib {
        println!("  python3-dnslib is not installed (apt-get install python3-dnslib)");
        return None;
    }
    let port_file = o.work.join(format!("dns-port-{latency_ms}"));
    // A file left by an earlier server would name its port.
    let _ = std::fs::remove_file(&port_file);
    let child = Command::new(python)
        .arg(o.root.join("tests/dns/testdns.py"))
        .arg("--zone")
        .arg(o.root.join("tests/dns/test.zone"))
        .args(["--port", "0", "--latency", &latency_ms.to_string(), "--port-file"])
        .arg(&port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(port) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            return Some(Server { child, port });
        }
        if Instant::now() > deadline {
            println!("  testdns.py did not start");
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A config directory for one of the plugin sets, asking the server on `port`.
fn chain(dir: &Path, plugins: &[&str], zones: bool, port: u16) -> PathBuf {
    let mut files = common(dir);
    let mut text = plugins.join("\n");
    text.push_str(&format!("\nqueue/maildir {}\n", dir.join("maildir").display()));
    files.push(("plugins", text));
    files.push(("dns_servers", format!("127.0.0.1:{port}\n")));
    if zones {
        files.push(("dnsbl_zones", "dnsbl.test\n".into()));
        files.push(("rhsbl_zones", "rhsbl.test\n".into()));
    }
    write_config(dir, &files)
}

pub fn run(o: &Opts, tcpserver: &Path, ours: &Path) {
    println!(
        "\nDNS plugins: Debian's stock plugin set against the test DNS server,\n{} sessions each \
         ({} as shipped), {} at a time, client 127.0.0.1 (not a relay client here)",
        o.sessions,
        (o.concurrency() * 5).min(o.sessions),
        o.concurrency()
    );
    let body = super::message(2000);
    let with_fcrdns = with_fcrdns();
    let sets = sets(&with_fcrdns);
    println!(
        "{:<32} {:>8} {:>9} {:>9} {:>9} {:>7}",
        "plugins", "latency", "sess/s", "p50 ms", "p99 ms", "failed"
    );
    let sample = o.work.join("dns-sample");
    let sample_cfg = write_config(&sample, &sample_chain(&sample));
    let t = Target::start(
        tcpserver,
        ours,
        &["--config".into(), sample_cfg.to_string_lossy().into_owned()],
        &sample,
    );
    print_row(
        "sample config (no DNS)",
        0,
        &measure("sample", &t, o.sessions, o, &body),
    );
    drop(t);
    for latency in [0, 20] {
        let Some(server) = start_server(o, latency) else {
            return;
        };
        if latency == 0 {
            // As shipped: each session waits its second for an early talker.
            let as_shipped: Vec<&str> = [EARLYTALKER].iter().chain(STOCK).copied().collect();
            let dir = o.work.join("dns-as-shipped");
            let cfg = chain(&dir, &as_shipped, false, server.port);
            let t = Target::start(
                tcpserver,
                ours,
                &["--config".into(), cfg.to_string_lossy().into_owned()],
                &dir,
            );
            // Few sessions: each takes a second (the greeting figure, sequential, is
            // over 20 of them).
            let n = (o.concurrency() * 5).min(o.sessions);
            print_row(
                "stock as shipped (1 s wait)",
                0,
                &measure("as shipped", &t, n, o, &body),
            );
        }
        for (i, (name, plugins, zones)) in sets.iter().enumerate() {
            let dir = o.work.join(format!("dns-{latency}-{i}"));
            let cfg = chain(&dir, plugins, *zones, server.port);
            let t = Target::start(
                tcpserver,
                ours,
                &["--config".into(), cfg.to_string_lossy().into_owned()],
                &dir,
            );
            print_row(name, latency, &measure(name, &t, o.sessions, o, &body));
        }
    }
    connect_phase(o, tcpserver, ours);
    instructions(o, ours);
}

/// Connect-to-greeting time with dnsbl asking 1 or 5 zones (`bl1.test` ... `bl5.test`,
/// nothing listed for the client) of a server that answers 20 ms late, next to no DNS
/// plugin: the five lookups go out together, so they cost about one round trip.
fn connect_phase(o: &Opts, tcpserver: &Path, ours: &Path) {
    let latency = 20;
    let Some(server) = start_server(o, latency) else {
        return;
    };
    println!(
        "\nconnect phase (connect to greeting, {} sequential connections), DNS server {latency} ms away:",
        o.greetings
    );
    println!(
        "{:<32} {:>9} {:>9} {:>12}",
        "dnsbl zones", "p50 ms", "p99 ms", "p50 - none"
    );
    let mut base = None;
    for zones in [0, 1, 5] {
        let dir = o.work.join(format!("dns-connect-{zones}"));
        let mut files = common(&dir);
        let plugins = if zones == 0 {
            "rcpt_ok\n"
        } else {
            "dnsbl\nrcpt_ok\n"
        };
        files.push(("plugins", plugins.into()));
        files.push(("dns_servers", format!("127.0.0.1:{}\n", server.port)));
        let list: String = (1..=zones).map(|i| format!("bl{i}.test\n")).collect();
        files.push(("dnsbl_zones", list));
        let cfg = write_config(&dir, &files);
        let t = Target::start(
            tcpserver,
            ours,
            &["--config".into(), cfg.to_string_lossy().into_owned()],
            &dir,
        );
        let addr = format!("127.0.0.1:{}", t.port);
        let (p50, p99) = super::greetings(&addr, o.greetings);
        let base = *base.get_or_insert(p50);
        println!(
            "{:<32} {:>9.2} {:>9.2} {:>12.2}",
            zones,
            p50 * 1e3,
            p99 * 1e3,
            (p50 - base) * 1e3
        );
    }
}

fn print_row(name: &str, latency: u64, r: &super::Row) {
    println!(
        "{:<32} {:>6}ms {:>9.0} {:>9.2} {:>9.2} {:>7}",
        name,
        latency,
        r.rate,
        r.p50 * 1e3,
        r.p99 * 1e3,
        r.failed
    );
}

/// Instructions of one session piped in (client 127.0.0.1 by TCPREMOTEIP), each set
/// against the sample config: what the DNS plugins cost in CPU, their waiting left out.
fn instructions(o: &Opts, ours: &Path) {
    if super::which("valgrind").is_none() {
        println!("  valgrind is not installed (apt-get install valgrind): no instruction counts");
        return;
    }
    let Some(server) = start_server(o, 0) else {
        return;
    };
    let transcript = o.work.join("dns-session.txt");
    std::fs::write(&transcript, transcript_text(&super::message(2000))).unwrap();
    let sample = o.work.join("dns-sample");
    let base = callgrind_as_client(ours, &sample.join("config"), &sample, &transcript);
    if base == 0 {
        println!("  callgrind gave no count");
        return;
    }
    println!("\ninstructions per session (callgrind, answers at once):");
    println!("  {:<30} {:>12}", "sample config", s_num(base));
    let with_fcrdns = with_fcrdns();
    for (i, (name, plugins, zones)) in sets(&with_fcrdns).iter().enumerate() {
        let dir = o.work.join(format!("dns-cg-{i}"));
        let cfg = chain(&dir, plugins, *zones, server.port);
        let n = callgrind_as_client(ours, &cfg, &dir, &transcript);
        println!(
            "  {:<30} {:>12}   ({:.2}x sample)",
            name,
            s_num(n),
            n as f64 / base as f64
        );
    }
}

/// Instructions of one session piped into `bin` under callgrind, as the main benchmark's
/// count, but with `TCPREMOTEIP=127.0.0.1` so that the client has an address to look up.
fn callgrind_as_client(bin: &Path, cfg: &Path, cwd: &Path, transcript: &Path) -> u64 {
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(bin)
        .arg("--config")
        .arg(cfg)
        .env("TCPREMOTEIP", "127.0.0.1")
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
