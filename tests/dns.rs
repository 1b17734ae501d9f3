//! The resolver through the binary, against the test DNS server: no socket without DNS
//! plugins (strace), several zones in one round trip, an IPv6 server.

use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::dns::TestDns;
use crate::support::{TestDir, binary_command, spawn_inetd, tool};

fn config(lines: &[(&str, &str)]) -> TestDir {
    let lines: Vec<(String, String)> = lines
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    TestDir::new(&lines)
}

/// One session through `cmd`: reads the greeting (the time it took from the start is
/// returned), sends QUIT, reads to the end; the lines the server sent.
fn session(cmd: Command, env: &[(&str, &str)]) -> (Duration, Vec<String>) {
    session_with(cmd, env, b"QUIT\r\n")
}

/// [`session`], sending `script` after the greeting.
fn session_with(cmd: Command, env: &[(&str, &str)], script: &[u8]) -> (Duration, Vec<String>) {
    let mut cmd = cmd;
    for (k, v) in env {
        cmd.env(k, v);
    }
    let start = Instant::now();
    let (mut child, stream) = spawn_inetd(cmd);
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    let greeting = start.elapsed();
    let mut writer = stream;
    let _ = writer.write_all(script);
    let mut lines = vec![first.trim_end().to_string()];
    lines.extend(reader.lines().map_while(Result::ok));
    let _ = child.wait();
    (greeting, lines)
}

/// The socket() calls of a session run under strace.
fn sockets_of(dir: &TestDir, env: &[(&str, &str)], extra: &[&str]) -> Option<(Vec<String>, Vec<String>)> {
    sockets_in(dir, env, extra, b"QUIT\r\n")
}

/// [`sockets_of`] a session that sends `script` after the greeting.
fn sockets_in(
    dir: &TestDir,
    env: &[(&str, &str)],
    extra: &[&str],
    script: &[u8],
) -> Option<(Vec<String>, Vec<String>)> {
    let strace = tool("strace")?;
    let trace = dir.path().join("trace");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-qq", "-e", "trace=socket", "-o"])
        .arg(&trace)
        .arg(crate::support::binary())
        .args(extra)
        .arg("--config")
        .arg(dir.config())
        .current_dir(dir.path())
        .env_remove("QPSMTPD_CONFIG");
    let (_, lines) = session_with(cmd, env, script);
    let text = std::fs::read_to_string(&trace).unwrap();
    let calls = text
        .lines()
        .filter(|l| l.contains("socket("))
        .map(str::to_string)
        .collect();
    Some((calls, lines))
}

fn udp(calls: &[String]) -> Vec<&String> {
    calls
        .iter()
        .filter(|c| (c.contains("AF_INET,") || c.contains("AF_INET6,")) && c.contains("SOCK_DGRAM"))
        .collect()
}

#[test]
fn no_dns_plugin_no_resolver_no_socket() {
    let Some(dns) = TestDns::start(&["tests/dns/test.zone"]) else {
        return;
    };
    let server = dns.server();
    let env = [("TCPREMOTEIP", "192.0.2.10")];
    // The sample-like chain: no DNS plugin.
    let dir = config(&[
        ("plugins", "relay"),
        ("plugins", "rcpt_ok"),
        ("dns_servers", &server),
    ]);
    let Some((calls, lines)) = sockets_of(&dir, &env, &[]) else {
        return;
    };
    assert!(lines[0].starts_with("220 "), "{lines:?}");
    assert!(calls.is_empty(), "sockets without a DNS plugin: {calls:?}");
    // Debian's stock plugin set, its lists empty as shipped: the DNS plugins among it
    // (dnsbl, rhsbl, check_spamhelo's lenient checks) have nothing to ask.
    let stock = [
        "check_earlytalker action log wait 0.1",
        "check_relay",
        "rhsbl",
        "dnsbl",
        "check_spamhelo",
        "check_badmailfrom",
        "check_badrcptto",
        "check_loop",
        "rcpt_ok",
    ];
    let mut files: Vec<(&str, &str)> = stock.iter().map(|p| ("plugins", *p)).collect();
    files.push(("dns_servers", &server));
    files.push(("rcpthosts", "example.org"));
    let script =
        b"HELO client.example.net\r\nMAIL FROM:<a@example.net>\r\nRCPT TO:<b@example.org>\r\nQUIT\r\n";
    let (calls, lines) = sockets_in(&config(&files), &env, &[], script).unwrap();
    assert_eq!(
        lines.iter().map(|l| &l[..4]).collect::<Vec<_>>(),
        ["220 ", "250 ", "250 ", "250 ", "221 "],
        "{lines:?}"
    );
    assert!(calls.is_empty(), "sockets for the stock set: {calls:?}");
    // dnsbl loaded, but nothing to ask: no resolver either.
    let dir = config(&[
        ("plugins", "dnsbl"),
        ("plugins", "rcpt_ok"),
        ("dns_servers", &server),
    ]);
    let (calls, lines) = sockets_of(&dir, &env, &[]).unwrap();
    assert!(lines[0].starts_with("220 "), "{lines:?}");
    assert!(
        udp(&calls).is_empty(),
        "UDP sockets for dnsbl without zones: {calls:?}"
    );
    // And the check of the strace itself: with a zone, the resolver opens one.
    let dir = config(&[
        ("plugins", "dnsbl"),
        ("dnsbl_zones", "dnsbl.test"),
        ("dns_servers", &server),
    ]);
    let (calls, lines) = sockets_of(&dir, &env, &[]).unwrap();
    assert!(
        lines[0].starts_with("550 5.7.1 192.0.2.10 is listed"),
        "{lines:?}"
    );
    assert_eq!(udp(&calls).len(), 1, "one UDP socket for the session: {calls:?}");
    assert_eq!(dns.log().len(), 1);
}

#[test]
fn check_asks_no_dns() {
    let Some(dns) = TestDns::start(&["tests/dns/test.zone"]) else {
        return;
    };
    let dir = config(&[
        ("plugins", "dnsbl"),
        ("plugins", "rhsbl"),
        ("plugins", "uribl"),
        ("plugins", "dns_whitelist_soft"),
        ("dnsbl_zones", "dnsbl.test"),
        ("rhsbl_zones", "rhsbl.test"),
        ("uribl_zones", "uribl.test"),
        ("whitelist_zones", "whitelist.test"),
        ("dns_servers", &dns.server()),
    ]);
    let out = binary_command(&dir)
        .args(["--check", "--allow-root"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(dns.settled_log().is_empty(), "--check asked: {:?}", dns.log());
}

/// Five DNSBL zones on a server that answers each query after `latency_ms`: the connect
/// phase (exec to greeting) and the spread of the queries' arrival at the server.
fn five_zones(latency_ms: u64) -> Option<(Duration, f64)> {
    let dns = TestDns::start(&["tests/dns/test.zone", "--latency", &latency_ms.to_string()])?;
    let mut lines = vec![("plugins", "dnsbl".to_string()), ("dns_servers", dns.server())];
    for i in 1..=5 {
        lines.push(("dnsbl_zones", format!("bl{i}.test")));
    }
    let lines: Vec<(&str, &str)> = lines.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let dir = config(&lines);
    let (connect, replies) = session(binary_command(&dir), &[("TCPREMOTEIP", "192.0.2.10")]);
    assert_eq!(replies[0], "550 5.7.1 listed in bl1.test", "{replies:?}");
    let log = dns.settled_log();
    assert_eq!(log.len(), 5, "{log:?}");
    let arrivals: Vec<f64> = log
        .iter()
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    let spread =
        arrivals.iter().cloned().fold(f64::MIN, f64::max) - arrivals.iter().cloned().fold(f64::MAX, f64::min);
    Some((connect, spread))
}

#[test]
fn five_zones_cost_one_round_trip() {
    // The figure for ~20 ms of latency (printed, not asserted: a timed test would be
    // flaky on a busy machine).
    let Some((connect, spread)) = five_zones(20) else {
        return;
    };
    eprintln!(
        "five DNSBL zones, 20 ms per answer: connect phase {:.1} ms, queries reached the server within {:.1} ms",
        connect.as_secs_f64() * 1000.0,
        spread * 1000.0
    );
    // With 1 s per answer, no answer can arrive before a second has passed: all five
    // queries reaching the server within that second proves none waited for another's
    // answer (one after another, they would be spread over 4 s and the connect phase
    // would take 5 s). A structural check, not a timing one: only a machine stalled for
    // a whole second could break it.
    let (connect, spread) = five_zones(1000).unwrap();
    eprintln!(
        "five DNSBL zones, 1 s per answer: connect phase {:.1} ms, queries reached the server within {:.1} ms",
        connect.as_secs_f64() * 1000.0,
        spread * 1000.0
    );
    assert!(
        spread < 1.0,
        "a query waited for another's answer ({spread} s apart)"
    );
    assert!(
        connect < Duration::from_millis(2500),
        "connect phase took {connect:?}: the zones were asked one after another"
    );
}

#[test]
fn an_ipv6_server() {
    let Some(dns) = TestDns::start(&["tests/dns/test.zone", "--address", "::1"]) else {
        return;
    };
    let dir = config(&[
        ("plugins", "dnsbl"),
        ("dnsbl_zones", "dnsbl.test"),
        ("dns_servers", &format!("[::1]:{}", dns.port)),
    ]);
    let (_, lines) = session(binary_command(&dir), &[("TCPREMOTEIP", "192.0.2.10")]);
    assert_eq!(lines[0], "550 5.7.1 192.0.2.10 is listed in dnsbl.test");
    assert!(dns.settled_log()[0].starts_with("udp ::1:"), "{:?}", dns.log());
}

#[test]
fn sigterm_ends_a_dns_wait_at_once() {
    // README Differences 35: every wait ends at once on SIGTERM, a DNS wait too.
    let Some(dns) = TestDns::start(&["tests/dns/test.zone"]) else {
        return;
    };
    let dir = config(&[
        ("plugins", "dnsbl"),
        ("dnsbl_zones", "timeout.test"),
        ("dns_timeout", "30"),
        ("dns_servers", &dns.server()),
    ]);
    let mut cmd = binary_command(&dir);
    cmd.env("TCPREMOTEIP", "192.0.2.10");
    let (mut child, stream) = spawn_inetd(cmd);
    while dns.log().is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let start = Instant::now();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let lines: Vec<String> = BufReader::new(stream).lines().map_while(Result::ok).collect();
    let _ = child.wait();
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(lines.last().is_some_and(|l| l.starts_with("421 ")), "{lines:?}");
}
