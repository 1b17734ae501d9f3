//! The test DNS server (`tests/dns/testdns.py`, on Debian's python3-dnslib): started on
//! a free loopback port for a test or a transcript, stopped when dropped.
//!
//! ```ignore
//! let dns = TestDns::start(&["tests/dns/test.zone", "--latency", "20"]).unwrap();
//! config.push(("dns_servers".into(), dns.server()));   // qpsmtpd-rs
//! cmd.envs(dns.perl_env());                              // Perl's Net::DNS
//! dns.clear_log(); /* run */ let queries = dns.log();
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::transcript::Transcript;
use super::{required, root};

/// Debian's python3 (a python3 earlier on PATH, such as pyenv's, does not see Debian's
/// packages).
fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

/// Is dnslib importable? If not and not required, DNS tests are skipped.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let ok = *AVAILABLE.get_or_init(|| {
        Command::new(python())
            .args(["-c", "import dnslib"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        ok || !required(),
        "python3-dnslib is required (QPSMTPD_RS_REQUIRE_ALL=1) but {} cannot import dnslib",
        python()
    );
    if !ok {
        eprintln!("SKIPPED: python3-dnslib is not installed");
    }
    ok
}

/// A running test DNS server.
pub struct TestDns {
    child: Child,
    /// Its UDP and TCP port on 127.0.0.1 (and `::1` when started with `--address ::1`).
    pub port: u16,
    dir: tempfile::TempDir,
}

impl TestDns {
    /// Starts the server: the first argument is a zone file (relative to the repository
    /// root), the rest are testdns.py's options. `None` if dnslib is missing (and not
    /// required).
    pub fn start(args: &[&str]) -> Option<TestDns> {
        if !available() {
            return None;
        }
        let dir = tempfile::Builder::new().prefix("testdns.").tempdir().unwrap();
        let (zone, options) = args.split_first().expect("a zone file");
        let mut cmd = Command::new(python());
        cmd.arg(root().join("tests/dns/testdns.py"))
            .arg("--zone")
            .arg(root().join(zone))
            .args(["--port", "0", "--port-file"])
            .arg(dir.path().join("port"))
            .arg("--log")
            .arg(dir.path().join("queries"))
            .args(options)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(dir.path().join("port")) {
                break text.trim().parse().unwrap();
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("testdns.py exited at start: {status}");
            }
            assert!(Instant::now() < deadline, "testdns.py did not start within 10 s");
            std::thread::sleep(Duration::from_millis(10));
        };
        Some(TestDns { child, port, dir })
    }

    /// The `dns_servers` line for qpsmtpd-rs.
    pub fn server(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The environment that points Perl's Net::DNS at it, a dead server costing 2 s
    /// instead of 75.
    pub fn perl_env(&self) -> [(String, String); 2] {
        [
            ("RES_NAMESERVERS".into(), "127.0.0.1".into()),
            (
                "RES_OPTIONS".into(),
                format!("port:{} retry:1 retrans:2", self.port),
            ),
        ]
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("queries")
    }

    /// The query log since the last [`TestDns::clear_log`]: one line per query,
    /// `udp|tcp CLIENT QNAME QTYPE OUTCOME ANSWERS SECONDS`.
    pub fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Empties the query log (the server appends, so it goes on writing at the start).
    pub fn clear_log(&self) {
        let _ = std::fs::write(self.log_path(), "");
    }

    /// The log after the queries in flight have been written: waits until it has not
    /// changed for 50 ms (at most 1 s).
    pub fn settled_log(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(1);
        let mut last = self.log();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = self.log();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// For a transcript with `! dns`: starts the server and points every run at it (the
/// config item `dns_servers`, Perl's environment). `Err` if the transcript must be
/// skipped (dnslib missing and not required).
pub fn for_transcript(t: &mut Transcript) -> Result<Option<TestDns>, ()> {
    let Some(args) = t.dns.clone() else {
        return Ok(None);
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let dns = TestDns::start(&args).ok_or(())?;
    t.config.push(("dns_servers".into(), dns.server()));
    t.env.extend(dns.perl_env());
    Ok(Some(dns))
}
