//! Debian's stock qpsmtpd configuration (`/etc/qpsmtpd` from the `qpsmtpd` package) runs
//! unchanged but for what any site changes: where mail goes, our domain, writable paths.
//! It passes `--check`, and a message from a client that may not relay (127.0.0.2, so
//! that the DNS plugins apply) is delivered through tcpserver. With zones filled in, the
//! stock `dnsbl` and `rhsbl` lines refuse what the test DNS server lists.
//!
//! Every line of the stock `plugins` file is kept as it is, `check_earlytalker action
//! log` included (so each greeting waits its one second, and a client that talks before
//! it is logged, not refused).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::clients::{Server, free_port, wait_listening};
use crate::support::dns::TestDns;
use crate::support::{binary, required, tool};

/// Where the `qpsmtpd` package puts its config.
const STOCK: &str = "/etc/qpsmtpd";

/// A copy of the stock config in a temporary directory.
struct Stock {
    dir: tempfile::TempDir,
}

impl Stock {
    /// Copies `/etc/qpsmtpd` and makes the edits a site makes (the Debian package's
    /// debconf answers write the first two the same way): mail into a maildir, our
    /// domain in `debian-rcpthosts`, the includes pointing into the copy, and a spool
    /// and log file we can write. `dns_servers` points at the test DNS server (Debian
    /// would read /etc/resolv.conf). `None` if the package is not installed.
    fn copy(dns: &TestDns) -> Option<Stock> {
        if !Path::new(STOCK).join("plugins").is_file() {
            assert!(
                !required(),
                "Debian's qpsmtpd package is required (QPSMTPD_RS_REQUIRE_ALL=1) but {STOCK}/plugins is missing"
            );
            eprintln!("SKIPPED: {STOCK} is not installed (apt-get install qpsmtpd)");
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("qpsmtpd-rs-stock.")
            .tempdir()
            .unwrap();
        let s = Stock { dir };
        std::fs::create_dir_all(s.config()).unwrap();
        for entry in std::fs::read_dir(STOCK).unwrap().flatten() {
            if entry.path().is_file() {
                std::fs::copy(entry.path(), s.config().join(entry.file_name())).unwrap();
            }
        }
        let config = s.config().to_string_lossy().into_owned();
        s.edit("plugins", |t| {
            t.replace("$include /etc/qpsmtpd/", &format!("$include {config}/"))
        });
        s.edit("rcpthosts", |t| {
            t.replace("$include /etc/qpsmtpd/", &format!("$include {config}/"))
        });
        let maildir = s.path().join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        s.edit("debian-queue-method", |t| {
            format!("{t}queue/maildir {}\n", maildir.display())
        });
        s.edit("debian-rcpthosts", |t| t.replace("unset", "example.org"));
        std::fs::create_dir_all(s.path().join("spool")).unwrap();
        s.write("spool_dir", &format!("{}\n", s.path().join("spool").display()));
        s.edit("logging", |t| {
            t.replace("/var/log/qpsmtpd/qpsmtpd.log", &s.log().to_string_lossy())
        });
        s.write("dns_servers", &format!("{}\n", dns.server()));
        Some(s)
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn config(&self) -> PathBuf {
        self.path().join("config")
    }

    fn log(&self) -> PathBuf {
        self.path().join("qpsmtpd.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn write(&self, name: &str, text: &str) {
        std::fs::write(self.config().join(name), text).unwrap();
    }

    fn edit(&self, name: &str, f: impl FnOnce(&str) -> String) {
        let path = self.config().join(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, f(&text)).unwrap();
    }

    fn delivered(&self) -> usize {
        std::fs::read_dir(self.path().join("Maildir/new"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// `tcpserver -R -H -l 0 127.0.0.1 PORT qpsmtpd-rs --config DIR`, as a site runs it.
    fn serve(&self, tcpserver: &Path) -> Server {
        let port = free_port();
        let child = Command::new(tcpserver)
            .args(["-R", "-H", "-l", "0", "127.0.0.1", &port.to_string()])
            .arg(binary())
            .arg("--config")
            .arg(self.config())
            // CI runs as root; Debian's config names no `user` (its init script starts
            // qpsmtpd as the qpsmtpd user).
            .arg("--allow-root")
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_listening(port);
        Server { child, port }
    }
}

/// One swaks session from `local` (a loopback address) to the server: its exit status
/// and transcript.
fn swaks(swaks: &Path, server: &Server, local: &str, from: &str) -> (bool, String) {
    let out = Command::new(swaks)
        .args(["--server", &format!("127.0.0.1:{}", server.port)])
        .args(["--local-interface", local])
        .args([
            "--helo",
            "client.example.net",
            "--from",
            from,
            "--to",
            "b@example.org",
        ])
        .args(["--header", "Subject: stock config"])
        .args(["--body", "Delivered through Debian's stock plugins."])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn debians_stock_config_passes_check_and_delivers_through_tcpserver() {
    let (Some(tcpserver), Some(swaks_bin)) = (tool("tcpserver"), tool("swaks")) else {
        return;
    };
    let Some(dns) = TestDns::start(&["tests/dns/test.zone"]) else {
        return;
    };
    let Some(stock) = Stock::copy(&dns) else {
        return;
    };
    let plugins = std::fs::read_to_string(stock.config().join("plugins")).unwrap();
    let original = std::fs::read_to_string(Path::new(STOCK).join("plugins")).unwrap();
    let kept: Vec<&str> = original.lines().filter(|l| !l.starts_with("$include")).collect();
    let copied: Vec<&str> = plugins.lines().filter(|l| !l.starts_with("$include")).collect();
    assert_eq!(copied, kept, "the stock plugins file, unchanged");
    assert!(kept.contains(&"check_earlytalker action log"), "{original}");

    let check = Command::new(binary())
        .args(["--check", "--allow-root", "--config"])
        .arg(stock.config())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "--check failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    for name in [
        "check_earlytalker",
        "check_relay",
        "rhsbl",
        "dnsbl",
        "check_spamhelo",
        "check_badmailfrom",
        "check_badrcptto",
        "check_loop",
        "rcpt_ok",
        "queue/maildir",
    ] {
        assert!(report.contains(name), "--check does not list {name}:\n{report}");
    }

    let server = stock.serve(&tcpserver);
    dns.clear_log();
    let (ok, text) = swaks(&swaks_bin, &server, "127.0.0.2", "a@example.net");
    assert!(ok, "swaks failed:\n{text}");
    assert!(text.contains("<-  250 2.0.0 Queued"), "{text}");
    assert_eq!(stock.delivered(), 1, "{text}");
    let message = std::fs::read_dir(stock.path().join("Maildir/new"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .next()
        .unwrap();
    assert!(message.contains("\nX-HELO: client.example.net\n"), "{message}");
    assert!(message.contains("Delivered through Debian's stock plugins."));
    let log = stock.log_text();
    for line in [
        "(connect) check_earlytalker: pass, not spontaneous",
        "(connect) check_relay:",
        "(ehlo) check_spamhelo: pass",
        "(mail) rhsbl: pass, no zones",
        "(connect) dnsbl:",
    ] {
        assert!(log.contains(line), "the log lacks {line:?}:\n{log}");
    }
    // The stock lists are empty: nothing to ask.
    assert_eq!(dns.settled_log(), Vec::<String>::new());

    // A client that talks before the greeting is only logged (`action log`).
    let mut early = std::net::TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    early
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    early.write_all(b"EHLO early.example\r\nQUIT\r\n").unwrap();
    let mut replies = String::new();
    let _ = early.read_to_string(&mut replies);
    assert!(replies.starts_with("220 "), "{replies}");
    assert!(replies.contains("\r\n250-"), "{replies}");
    assert!(replies.contains("\r\n221 "), "{replies}");
    let log = stock.log_text();
    assert!(
        log.contains("check_earlytalker: fail, tolerated: Connecting host started transmitting"),
        "{log}"
    );
}

#[test]
fn the_stock_dns_plugins_refuse_what_their_zones_list() {
    let (Some(tcpserver), Some(swaks_bin)) = (tool("tcpserver"), tool("swaks")) else {
        return;
    };
    let Some(dns) = TestDns::start(&["tests/dns/test.zone"]) else {
        return;
    };
    let Some(stock) = Stock::copy(&dns) else {
        return;
    };
    stock.edit("dnsbl_zones", |t| format!("{t}dnsbl.test\n"));
    stock.edit("rhsbl_zones", |t| format!("{t}rhsbl.test\n"));
    let server = stock.serve(&tcpserver);

    // 127.0.0.2 is the RFC 5782 test entry of every IPv4 list.
    let (ok, text) = swaks(&swaks_bin, &server, "127.0.0.2", "a@example.net");
    assert!(!ok);
    assert!(
        text.contains("<** 550 5.7.1 Listed in dnsbl.test (RFC 5782 test entry)"),
        "{text}"
    );
    // 127.0.0.3 is not listed; its sender's domain is.
    let (ok, text) = swaks(&swaks_bin, &server, "127.0.0.3", "x@spammer.example");
    assert!(!ok);
    assert!(
        text.contains(
            "<** 550 5.7.1 Mail from spammer.example rejected because it spammer.example is listed in rhsbl.test"
        ),
        "{text}"
    );
    // 127.0.0.1 is in the stock relayclients: immune, nothing asked for it.
    dns.clear_log();
    let (ok, text) = swaks(&swaks_bin, &server, "127.0.0.1", "x@spammer.example");
    assert!(ok, "{text}");
    assert_eq!(dns.settled_log(), Vec::<String>::new());
    assert_eq!(stock.delivered(), 1);
}
