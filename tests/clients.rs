//! Real clients (swaks, Python smtplib) deliver through the binary under ucspi-tcp's
//! `tcpserver`, as a site would run it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{TestDir, binary, tool};

/// A super-server process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on the port.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("nothing listens on port {port}");
}

/// `tcpserver -R -H -l 0 127.0.0.1 PORT qpsmtpd-rs --config DIR` in the test directory.
pub fn tcpserver(tcpserver: &Path, dir: &TestDir, extra_env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut cmd = Command::new(tcpserver);
    cmd.args([
        "-R",
        "-H",
        "-l",
        "0",
        "127.0.0.1",
        &port.to_string(),
        binary(),
        "--config",
    ])
    .arg(dir.config())
    .current_dir(dir.path())
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    wait_listening(port);
    Server { child, port }
}

/// A config that accepts mail for example.org into `$DIR/maildir`.
pub fn delivering_config() -> Vec<(String, String)> {
    [
        ("plugins", "relay"),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("rcpthosts", "example.org"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn read(p: &PathBuf) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
}

#[test]
fn swaks_and_smtplib_deliver_through_tcpserver() {
    let Some(tcpserver_bin) = tool("tcpserver") else {
        return;
    };
    let swaks = tool("swaks");
    let python = tool("python3");
    let dir = TestDir::new(&delivering_config());
    let server = tcpserver(&tcpserver_bin, &dir, &[]);
    let mut expected = 0;
    if let Some(swaks) = swaks {
        let out = Command::new(swaks)
            .args(["--server", &format!("127.0.0.1:{}", server.port)])
            .args(["--from", "sender@example.net", "--to", "rcpt@example.org"])
            .args([
                "--helo",
                "swaks.client.example",
                "--header",
                "Subject: from swaks",
            ])
            .args(["--body", "Sent by swaks."])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "swaks failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        expected += 1;
    }
    if let Some(python) = python {
        let script = format!(
            r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", {port}, local_hostname="python.client.example", timeout=20)
refused = s.sendmail("sender@example.net", ["rcpt@example.org"],
    "Subject: from smtplib\r\n\r\nSent by Python.\r\n.leading dot\r\n")
assert refused == {{}}, refused
s.quit()
"#,
            port = server.port
        );
        let out = Command::new(python).arg("-c").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "smtplib failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        expected += 1;
    }
    let messages = dir.messages();
    assert_eq!(messages.len(), expected);
    for m in &messages {
        let text = read(m);
        assert!(
            text.contains("Received: from [127.0.0.1] (HELO ") && text.contains(") (127.0.0.1 port "),
            "no Received header with the client's address:\n{text}"
        );
        assert!(text.contains("Delivered-To: rcpt@example.org"), "{text}");
    }
    let texts: Vec<String> = messages.iter().map(read).collect();
    if texts.len() == 2 {
        assert!(texts.iter().any(|t| t.contains("(HELO swaks.client.example)")));
        assert!(
            texts
                .iter()
                .any(|t| t.contains("(HELO python.client.example)") && t.contains("\n.leading dot\n"))
        );
    }
}

#[test]
fn tcpserver_relayclient_from_the_environment() {
    let Some(tcpserver_bin) = tool("tcpserver") else {
        return;
    };
    let Some(python) = tool("python3") else { return };
    let dir = TestDir::new(&delivering_config());
    let server = tcpserver(&tcpserver_bin, &dir, &[("RELAYCLIENT", "")]);
    let script = format!(
        r#"
import smtplib
s = smtplib.SMTP("127.0.0.1", {port}, timeout=20)
s.sendmail("a@example.net", ["someone@elsewhere.example"], "Subject: relayed\r\n\r\nok\r\n")
s.quit()
"#,
        port = server.port
    );
    let out = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "relaying with RELAYCLIENT failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(dir.messages().len(), 1);
}
