//! TLS and AUTH with real clients: swaks (`--tls`, `--tlsc`, `--auth`), `openssl s_client
//! -starttls smtp` (session resumption across processes), Python smtplib (`starttls()`,
//! `login()`), a UCSPI-TLS super-server, a STARTTLS injection probe, and the auth plugins
//! against a real checkpassword program and a real Dovecot. Certificates are made here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::clients::{Server, free_port, wait_listening};
use crate::support::{TestDir, binary, root, spawn_inetd, tool};

/// The config of a server that offers STARTTLS, AUTH (flat file with clear and hashed
/// entries), and delivers mail for example.org; tickets shared through `$DIR/ticket.keys`.
pub(crate) fn tls_config(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut lines = vec![
        ("plugins", "tls"),
        ("plugins", "auth/auth_flat_file"),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("rcpthosts", "example.org"),
        ("flat_auth_pw", "good@example.com:good_pass"),
        ("tls_ticket_keys", "$DIR/ticket.keys"),
    ];
    lines.extend_from_slice(extra);
    lines
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A test CA and a certificate for `mx.test` signed by it, where the tls plugin looks by
/// default (`ssl/qpsmtpd-server.crt`, `.key`, and the CA as `ssl/qpsmtpd-ca.crt`).
pub(crate) fn make_cert(dir: &TestDir) -> Option<PathBuf> {
    make_cert_with(
        dir,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
    )
}

/// [`make_cert`] with the server key made by these `openssl req` arguments.
pub(crate) fn make_cert_with(dir: &TestDir, server_key: &[&str]) -> Option<PathBuf> {
    let openssl = tool("openssl")?;
    let ssl = dir.config().join("ssl");
    std::fs::create_dir_all(&ssl).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(&openssl)
            .args(args)
            .current_dir(&ssl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    run(&[
        &["req", "-x509"],
        &ec[..],
        &[
            "-keyout",
            "ca.key",
            "-out",
            "qpsmtpd-ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=Test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"],
        server_key,
        &[
            "-keyout",
            "qpsmtpd-server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=mx.test",
        ],
    ]
    .concat());
    std::fs::write(
        ssl.join("ext"),
        "subjectAltName=DNS:mx.test,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "qpsmtpd-ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "qpsmtpd-server.crt",
    ]);
    Some(ssl)
}

/// `tcpserver ... qpsmtpd-rs --config DIR ARGS...`.
pub(crate) fn serve(dir: &TestDir, args: &[&str]) -> Option<Server> {
    let tcpserver = tool("tcpserver")?;
    let port = free_port();
    let child = Command::new(tcpserver)
        .args([
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
        .args(args)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_listening(port);
    Some(Server { child, port })
}

pub(crate) fn swaks(port: u16, args: &[&str]) -> Output {
    let swaks = tool("swaks").expect("swaks checked by the caller");
    Command::new(swaks)
        .args(["--server", &format!("127.0.0.1:{port}"), "--timeout", "20"])
        .args(["--from", "sender@example.net", "--helo", "client.example"])
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn read(p: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned()
}

#[test]
fn swaks_starttls_and_auth_plain_login_cram_md5() {
    let Some(_) = tool("swaks") else { return };
    let sha512 = {
        let out = Command::new("openssl")
            .args(["passwd", "-6", "hashed_pass"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let bcrypt = bcrypt::hash("bcrypt_pass", 4).unwrap();
    let dir = TestDir::new(&tls_config(&[
        ("flat_auth_pw", &format!("hashed@example.com:{sha512}")),
        (
            "flat_auth_pw",
            &format!("blowfish@example.com:{{BLF-CRYPT}}{bcrypt}"),
        ),
    ]));
    if make_cert(&dir).is_none() {
        return;
    }
    let Some(server) = serve(&dir, &[]) else { return };
    let cases = [
        ("PLAIN", "good@example.com", "good_pass"),
        ("LOGIN", "good@example.com", "good_pass"),
        ("CRAM-MD5", "good@example.com", "good_pass"),
        ("PLAIN", "hashed@example.com", "hashed_pass"),
        ("LOGIN", "blowfish@example.com", "bcrypt_pass"),
    ];
    for (mech, user, pass) in cases {
        let out = swaks(
            server.port,
            &[
                "--tls",
                "--auth",
                mech,
                "--auth-user",
                user,
                "--auth-password",
                pass,
                "--to",
                "someone@elsewhere.example",
            ],
        );
        let t = text(&out);
        assert!(out.status.success(), "swaks --tls --auth {mech} {user}:\n{t}");
        assert!(
            t.contains(&format!("235 2.7.0 {mech} authentication successful for {user}")),
            "{t}"
        );
    }
    // A wrong password is refused, and nothing is relayed.
    let out = swaks(
        server.port,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "good@example.com",
            "--auth-password",
            "nope",
            "--to",
            "someone@elsewhere.example",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out).contains("535 5.7.8 Authentication credentials invalid"),
        "{}",
        text(&out)
    );
    let messages = dir.messages();
    assert_eq!(messages.len(), cases.len());
    for m in &messages {
        let msg = read(m);
        assert!(msg.contains("with ESMTPSA (TLSv1.3 cipher TLS_"), "{msg}");
        assert!(msg.contains("auth=pass ("), "{msg}");
    }
}

#[test]
fn swaks_implicit_tls_on_the_submissions_port() {
    let Some(_) = tool("swaks") else { return };
    // earlytalker waits after the handshake, before the greeting: swaks, polite, passes.
    let dir = TestDir::new(&tls_config(&[("plugins", "earlytalker wait 0.3")]));
    if make_cert(&dir).is_none() {
        return;
    }
    let Some(server) = serve(&dir, &["--implicit-tls"]) else {
        return;
    };
    let out = swaks(
        server.port,
        &[
            "--tlsc",
            "--auth",
            "PLAIN",
            "--auth-user",
            "good@example.com",
            "--auth-password",
            "good_pass",
            "--to",
            "x@elsewhere.example",
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    // Already encrypted: no STARTTLS on offer, AUTH is.
    assert!(
        t.contains("250 AUTH PLAIN LOGIN CRAM-MD5") && !t.contains("STARTTLS"),
        "{t}"
    );
    let msg = String::from_utf8_lossy(&dir.only_message()).into_owned();
    assert!(msg.contains("with ESMTPSA (TLSv1."), "{msg}");
    // A client that speaks clear text to the TLS port gets nothing, and the log says why.
    let mut plain = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    plain.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    plain.write_all(b"EHLO plain.example\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(!String::from_utf8_lossy(&got).contains("250"), "{got:?}");
}

/// Runs `openssl s_client -starttls smtp` with EHLO and QUIT; returns its output.
pub(crate) fn s_client(port: u16, extra: &[&str]) -> String {
    let openssl = tool("openssl").expect("openssl checked by the caller");
    // `timeout`: a test that hangs must end by itself.
    let mut child = Command::new("timeout")
        .arg("30")
        .arg(openssl)
        .args([
            "s_client",
            "-starttls",
            "smtp",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-crlf",
            "-nocommands",
        ])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // s_client reads its input only once TLS is up, so both commands can go at once. Its
    // input stays open until it exits: at the end of its input it would close the
    // connection before the reply to QUIT arrived. After the 221 the server closes the
    // connection, and that ends s_client.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"EHLO openssl.example\nQUIT\n").unwrap();
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    text(&out)
}

#[test]
fn openssl_s_client_starttls_resumes_across_processes() {
    let Some(_) = tool("openssl") else { return };
    let dir = TestDir::new(&tls_config(&[]));
    make_cert(&dir);
    let Some(server) = serve(&dir, &[]) else { return };
    for version in ["-tls1_3", "-tls1_2"] {
        let session = dir.path().join(format!("session{version}.pem"));
        let session = session.to_str().unwrap();
        let first = s_client(server.port, &[version, "-sess_out", session]);
        assert!(first.contains("New, TLSv1."), "{version} first:\n{first}");
        assert!(
            first.contains("250 AUTH PLAIN LOGIN CRAM-MD5") && first.contains("221 2.0.0"),
            "{first}"
        );
        // The next connection is a new process: it resumes with the shared ticket key.
        let second = s_client(server.port, &[version, "-sess_in", session]);
        assert!(second.contains("Reused, TLSv1."), "{version} second:\n{second}");
    }
    let keys = dir.path().join("ticket.keys");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn smtplib_starttls_and_login() {
    let Some(python) = tool("python3") else { return };
    let dir = TestDir::new(&tls_config(&[]));
    if make_cert(&dir).is_none() {
        return;
    }
    let Some(server) = serve(&dir, &[]) else { return };
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(cafile={ca:?})
s = smtplib.SMTP("127.0.0.1", {port}, local_hostname="python.client.example", timeout=20)
s.ehlo()
assert s.has_extn("starttls") and not s.has_extn("auth"), s.esmtp_features
s.starttls(context=ctx)
s.ehlo()
assert not s.has_extn("starttls") and "PLAIN" in s.esmtp_features["auth"], s.esmtp_features
s.login("good@example.com", "good_pass")
refused = s.sendmail("sender@example.net", ["someone@elsewhere.example"], "Subject: smtplib\r\n\r\nover TLS\r\n")
assert refused == {{}}, refused
s.quit()
"#,
        ca = dir.config().join("ssl/qpsmtpd-ca.crt").to_str().unwrap(),
        port = server.port
    );
    let out = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(out.status.success(), "smtplib:\n{}", text(&out));
    let msg = String::from_utf8_lossy(&dir.only_message()).into_owned();
    assert!(
        msg.contains("(HELO python.client.example)") && msg.contains("with ESMTPSA (TLSv1.3"),
        "{msg}"
    );
}

/// A rustls client trusting the test certificate.
pub(crate) fn client_config(dir: &TestDir) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = dir.config().join("ssl/qpsmtpd-ca.crt");
    for cert in CertificateDer::pem_file_iter(pem).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Reads one whole reply (up to the line with a space after the code).
pub(crate) fn reply<R: BufRead>(r: &mut R) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
}

/// earlytalker `check-at DATA` inside STARTTLS: a client that sends its message after
/// `DATA` without waiting for `354` is refused as in clear text; a polite one waits and
/// is let through. (The wait used to end at once through TLS, so a client whose message
/// came in a record of its own passed.)
#[test]
fn earlytalker_checks_data_inside_starttls() {
    if tool("openssl").is_none() {
        return;
    }
    let extra = [("plugins", "earlytalker check-at DATA wait 0.5")];
    let dir = TestDir::new(&tls_config(&extra));
    make_cert(&dir);
    let mut cmd = Command::new(binary());
    cmd.arg("--config").arg(dir.config()).current_dir(dir.path());
    let (mut child, tcp) = spawn_inetd(cmd);
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut plain = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp.try_clone().unwrap();
    assert!(reply(&mut plain).starts_with("220 "));
    w.write_all(b"EHLO c.example\r\n").unwrap();
    assert!(reply(&mut plain).contains("250 STARTTLS"));
    w.write_all(b"STARTTLS\r\n").unwrap();
    assert!(reply(&mut plain).starts_with("220 "));
    let conn =
        rustls::ClientConnection::new(client_config(&dir), ServerName::try_from("mx.test").unwrap()).unwrap();
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    let say = |tls: &mut BufReader<_>, line: &[u8]| {
        let s: &mut rustls::StreamOwned<_, _> = tls.get_mut();
        s.write_all(line).unwrap();
        reply(tls)
    };
    assert!(say(&mut tls, b"EHLO c.example\r\n").starts_with("250"));
    assert!(say(&mut tls, b"MAIL FROM:<a@example.net>\r\n").starts_with("250 "));
    assert!(say(&mut tls, b"RCPT TO:<b@example.org>\r\n").starts_with("250 "));
    // DATA, then the message 0.1 s later without waiting for 354, in its own record.
    tls.get_mut().write_all(b"DATA\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let early = say(&mut tls, b"Subject: early\r\n");
    assert!(
        early.starts_with("554 5.7.1 Connecting host started transmitting"),
        "{early}"
    );
    assert!(
        reply(&mut tls).starts_with("500 "),
        "the message line, as a command"
    );
    assert!(say(&mut tls, b"RSET\r\n").starts_with("250 "));
    assert!(say(&mut tls, b"MAIL FROM:<a@example.net>\r\n").starts_with("250 "));
    assert!(say(&mut tls, b"RCPT TO:<b@example.org>\r\n").starts_with("250 "));
    assert!(say(&mut tls, b"DATA\r\n").starts_with("354 "));
    assert!(say(&mut tls, b"Subject: polite\r\n\r\nbody\r\n.\r\n").starts_with("250 "));
    assert!(say(&mut tls, b"QUIT\r\n").starts_with("221 "));
    let _ = child.wait();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("earlytalker: pass, not spontaneous"), "{log}");
}

#[test]
fn commands_pipelined_with_starttls_are_not_executed() {
    if tool("openssl").is_none() {
        return;
    }
    let dir = TestDir::new(&tls_config(&[("relayclients", "127.0.0.1")]));
    make_cert(&dir);
    let mut cmd = Command::new(binary());
    cmd.arg("--config").arg(dir.config()).current_dir(dir.path());
    let (mut child, tcp) = spawn_inetd(cmd);
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut plain = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp.try_clone().unwrap();
    assert!(reply(&mut plain).starts_with("220 "));
    w.write_all(b"EHLO evil.example\r\n").unwrap();
    assert!(reply(&mut plain).contains("250 STARTTLS"));
    // CVE-2011-0411: the commands after STARTTLS arrive in the same packet.
    w.write_all(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\nRCPT TO:<x@example.org>\r\n")
        .unwrap();
    assert_eq!(reply(&mut plain), "220 2.0.0 Go ahead with TLS\r\n");
    let conn =
        rustls::ClientConnection::new(client_config(&dir), ServerName::try_from("mx.test").unwrap()).unwrap();
    let mut tls = BufReader::new(rustls::StreamOwned::new(conn, tcp));
    tls.get_mut().write_all(b"EHLO good.example\r\n").unwrap();
    let ehlo = reply(&mut tls);
    // Had the injected lines run, their replies would come first.
    assert!(ehlo.starts_with("250-test.example.org Hi"), "{ehlo}");
    tls.get_mut().write_all(b"RCPT TO:<x@example.org>\r\n").unwrap();
    assert!(
        reply(&mut tls).starts_with("503 "),
        "the injected MAIL must not count"
    );
    tls.get_mut().write_all(b"QUIT\r\n").unwrap();
    assert!(reply(&mut tls).starts_with("221 "));
    let _ = child.wait();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(
        log.contains("discarded 60 bytes sent in clear text after STARTTLS"),
        "{log}"
    );
    assert!(!log.contains("injected@evil"), "{log}");
}

#[test]
fn a_bad_handshake_ends_the_connection_with_a_log_line() {
    if tool("openssl").is_none() {
        return;
    }
    let dir = TestDir::new(&tls_config(&[]));
    make_cert(&dir);
    let mut cmd = Command::new(binary());
    cmd.arg("--config").arg(dir.config()).current_dir(dir.path());
    let (mut child, mut tcp) = spawn_inetd(cmd);
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(b"EHLO x\r\nSTARTTLS\r\n").unwrap();
    // The garbage goes after the 220, where a ClientHello is due.
    let mut plain = BufReader::new(tcp.try_clone().unwrap());
    let mut before = String::new();
    while !before.ends_with("220 2.0.0 Go ahead with TLS\r\n") {
        let mut line = String::new();
        assert!(
            plain.read_line(&mut line).unwrap() > 0,
            "no 220 to STARTTLS:\n{before}"
        );
        before.push_str(&line);
    }
    tcp.write_all(b"this is not a TLS ClientHello\r\n").unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    // After the 220 only TLS (an alert, or nothing), never another SMTP reply.
    let smtp_reply = got
        .split(|&b| b == b'\n')
        .any(|l| l.len() >= 4 && l[..3].iter().all(u8::is_ascii_digit) && matches!(l[3], b' ' | b'-'));
    assert!(!smtp_reply, "{before}{}", String::from_utf8_lossy(&got));
    let _ = child.wait();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("TLS failed: TLS handshake failed"), "{log}");
    assert!(log.contains("outcome=\"TLS failed\""), "{log}");
}

#[test]
fn ucspi_tls_super_server_does_the_tls() {
    let (Some(python), Some(_)) = (tool("python3"), tool("swaks")) else {
        return;
    };
    // No certificate for the tls plugin: the super-server holds it.
    let dir = TestDir::new(&tls_config(&[]));
    let Some(ssl) = make_cert(&dir) else { return };
    let (cert, key) = (ssl.join("qpsmtpd-server.crt"), ssl.join("qpsmtpd-server.key"));
    let (held_cert, held_key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
    std::fs::rename(&cert, &held_cert).unwrap();
    std::fs::rename(&key, &held_key).unwrap();
    let port_file = dir.path().join("port");
    let mut server = Command::new(python)
        .arg(root().join("tests/tools/ucspi-tls-server"))
        .args([&held_cert, &held_key, &port_file])
        .arg(binary())
        .arg("--config")
        .arg(dir.config())
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !port_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let port: u16 = std::fs::read_to_string(&port_file).unwrap().parse().unwrap();
    let out = swaks(
        port,
        &[
            "--tls",
            "--auth",
            "LOGIN",
            "--auth-user",
            "good@example.com",
            "--auth-password",
            "good_pass",
            "--to",
            "x@elsewhere.example",
        ],
    );
    let _ = server.wait();
    let mut log = String::new();
    server.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(out.status.success(), "{}\n--- log ---\n{log}", text(&out));
    let msg = String::from_utf8_lossy(&dir.only_message()).into_owned();
    assert!(msg.contains("with ESMTPSA (TLSv1.3 cipher TLS_"), "{msg}");
}

/// A checkpassword program as qmail defines the interface: `user\0password\0timestamp\0` on
/// fd 3, exit 0 and run the rest of the command line when good, exit 1 when not. It also
/// notes what its fd 0 and 2 are, to show they are not the client's connection.
pub(crate) const CHECKPW: &str = r#"#!/bin/bash
IFS= read -r -d '' user <&3 || exit 2
IFS= read -r -d '' pass <&3 || exit 2
readlink /proc/self/fd/0 /proc/self/fd/2 > "$(dirname "$0")/checkpw.fds"
if [ "$user" = "alice@example.com" ] && [ "$pass" = "alice pass" ]; then exec "$@"; fi
if [ "$user" = "tempfail@example.com" ]; then exit 111; fi
exit 1
"#;

#[test]
fn auth_checkpassword_runs_a_checkpassword_program() {
    let (Some(_), Some(_), Some(truth)) = (tool("swaks"), tool("bash"), tool("true")) else {
        return;
    };
    let line = format!(
        "auth/auth_checkpassword checkpw $DIR/checkpw true {}",
        truth.display()
    );
    let config: Vec<(String, String)> = [
        ("plugins", line.as_str()),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("tls_before_auth", "0"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let dir = TestDir::new(&config);
    let checkpw = dir.path().join("checkpw");
    std::fs::write(&checkpw, CHECKPW).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&checkpw, std::fs::Permissions::from_mode(0o755)).unwrap();
    let Some(server) = serve(&dir, &[]) else { return };
    let auth = |user: &str, pass: &str| {
        swaks(
            server.port,
            &[
                "--auth",
                "LOGIN",
                "--auth-user",
                user,
                "--auth-password",
                pass,
                "--to",
                "x@elsewhere.example",
            ],
        )
    };
    let good = auth("alice@example.com", "alice pass");
    assert!(good.status.success(), "{}", text(&good));
    assert!(
        text(&good)
            .contains("235 2.7.0 LOGIN authentication successful for alice@example.com - auth_checkpassword")
    );
    let bad = auth("alice@example.com", "wrong");
    assert!(
        text(&bad).contains("535 5.7.8 Authentication credentials invalid"),
        "{}",
        text(&bad)
    );
    let temp = auth("tempfail@example.com", "x");
    assert!(
        text(&temp).contains("454 4.7.0 Temporary authentication failure"),
        "{}",
        text(&temp)
    );
    let fds = std::fs::read_to_string(dir.path().join("checkpw.fds")).unwrap();
    assert_eq!(
        fds, "/dev/null\n/dev/null\n",
        "the program must not get the client's connection"
    );
    assert_eq!(dir.messages().len(), 1);
}

/// Dovecot from Debian's dovecot-core, with a private base_dir, a passwd-file user database
/// and only the auth service listening, on a socket in the test directory.
pub(crate) struct Dovecot {
    child: std::process::Child,
    pub(crate) socket: PathBuf,
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

pub(crate) fn start_dovecot(dir: &Path) -> Option<Dovecot> {
    start_dovecot_with(
        dir,
        "",
        "alice@example.net:{PLAIN}alice pw:65534:65534::/nonexistent::\n",
    )
}

static INSTANCES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`start_dovecot`] with more settings and another passwd-file.
pub(crate) fn start_dovecot_with(dir: &Path, settings: &str, passwd: &str) -> Option<Dovecot> {
    let dovecot = tool("dovecot")?;
    let base = dir.join("dovecot");
    for sub in ["run", "state"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    let users = base.join("users");
    std::fs::write(&users, passwd).unwrap();
    let conf = base.join("dovecot.conf");
    let b = base.display();
    std::fs::write(
        &conf,
        format!(
            "instance_name = qpsmtpd-rs-test-{pid}-{n}\nbase_dir = {b}/run\nstate_dir = {b}/state\nlog_path = {b}/dovecot.log\n\
             protocols =\nssl = no\ndisable_plaintext_auth = no\nauth_mechanisms = plain login\nauth_failure_delay = 0\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {users}\n}}\n\
             userdb {{\n  driver = passwd-file\n  args = username_format=%u {users}\n}}\n\
             service auth {{\n  unix_listener auth-client {{\n    mode = 0666\n  }}\n}}\n{settings}\n",
            pid = std::process::id(),
            n = INSTANCES.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            users = users.display()
        ),
    )
    .unwrap();
    let child = Command::new(dovecot)
        .arg("-F")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let socket = base.join("run/auth-client");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        socket.exists(),
        "dovecot did not start: {}",
        std::fs::read_to_string(base.join("dovecot.log")).unwrap_or_default()
    );
    Some(Dovecot { child, socket })
}

#[test]
fn auth_dovecot_asks_a_real_dovecot() {
    let Some(_) = tool("swaks") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let Some(dovecot) = start_dovecot(scratch.path()) else {
        return;
    };
    let line = format!("auth/auth_dovecot socket {}", dovecot.socket.display());
    let dir = TestDir::new(&tls_config(&[("plugins", line.as_str())]));
    if make_cert(&dir).is_none() {
        return;
    }
    let Some(server) = serve(&dir, &[]) else { return };
    for mech in ["PLAIN", "LOGIN"] {
        let out = swaks(
            server.port,
            &[
                "--tls",
                "--auth",
                mech,
                "--auth-user",
                "alice@example.net",
                "--auth-password",
                "alice pw",
                "--to",
                "x@elsewhere.example",
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        assert!(text(&out).contains(&format!(
            "235 2.7.0 {mech} authentication successful for alice@example.net - auth_dovecot"
        )));
    }
    let out = swaks(
        server.port,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.net",
            "--auth-password",
            "wrong",
            "--to",
            "x@elsewhere.example",
        ],
    );
    assert!(
        text(&out).contains("535 5.7.8 Authentication credentials invalid"),
        "{}",
        text(&out)
    );
    // Dovecot gone: a temporary failure, not a wrong password.
    drop(dovecot);
    let out = swaks(
        server.port,
        &[
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice@example.net",
            "--auth-password",
            "alice pw",
            "--to",
            "x@elsewhere.example",
        ],
    );
    assert!(
        text(&out).contains("454 4.7.0 Temporary authentication failure"),
        "{}",
        text(&out)
    );
    assert_eq!(dir.messages().len(), 2);
}

/// Is the test running as root (CI is)? Else it skips, or fails when nothing may skip.
fn as_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !crate::support::required(),
        "this test must run as root (QPSMTPD_RS_REQUIRE_ALL=1)"
    );
    eprintln!("SKIPPED: not running as root");
    false
}

/// posttls-finger (Postfix's TLS probe) against 127.0.0.1:port with STARTTLS and one
/// reconnection after a second: its report on whether the session was re-used.
fn posttls_finger(port: u16, scratch: &Path) -> String {
    let finger = tool("posttls-finger").expect("checked by the caller");
    // It reads main.cf from $MAIL_CONFIG; an empty one gives Postfix's defaults.
    std::fs::write(scratch.join("main.cf"), "").unwrap();
    let out = Command::new("timeout")
        .arg("60")
        .arg(finger)
        .args(["-c", "-l", "may", "-r", "1", &format!("[127.0.0.1]:{port}")])
        .env("MAIL_CONFIG", scratch)
        .output()
        .unwrap();
    text(&out)
}

/// Started as root with `user nobody`, the key (and certificate) only root may read:
/// the files are opened before the switch, so STARTTLS works, sessions of two processes
/// share the ticket key (made by nobody, mode 0600) and resume (openssl s_client, Postfix's
/// posttls-finger), and `--check` as root says the same.
#[test]
fn root_only_key_and_resumption_across_processes_when_started_as_root() {
    let (Some(_), Some(_)) = (tool("openssl"), tool("posttls-finger")) else {
        return;
    };
    if !as_root() {
        return;
    }
    use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
    let dir = TestDir::new(&tls_config(&[("user", "nobody"), ("group", "nogroup")]));
    let keys_file = dir.path().join("state/tls-ticket-keys");
    std::fs::write(
        dir.config().join("tls_ticket_keys"),
        format!("{}\n", keys_file.display()),
    )
    .unwrap();
    let ssl = make_cert(&dir).unwrap();
    for f in ["qpsmtpd-server.key", "qpsmtpd-server.crt", "qpsmtpd-ca.crt"] {
        std::fs::set_permissions(ssl.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::set_permissions(&ssl, std::fs::Permissions::from_mode(0o700)).unwrap();
    // What nobody may use: the test dir, the spool, the maildir, the state directory.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["maildir", "state"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    for d in [dir.path().join("maildir"), dir.path().join("state"), dir.spool()] {
        chown(&d, Some(65534), Some(65534)).unwrap();
    }
    std::fs::set_permissions(dir.path().join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();

    let check = Command::new(binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let report = text(&check);
    assert!(check.status.success(), "{report}");
    assert!(
        report.contains("certificate ") && report.contains(" and its key load"),
        "{report}"
    );
    assert!(
        report.contains("tls-ticket-keys (made by the first TLS session;"),
        "{report}"
    );

    let Some(server) = serve(&dir, &[]) else { return };
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();
    let first = s_client(server.port, &["-sess_out", session]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    assert!(first.contains("250 AUTH PLAIN LOGIN CRAM-MD5"), "{first}");
    let second = s_client(server.port, &["-sess_in", session]);
    assert!(second.contains("Reused, TLSv1.3"), "{second}");
    let keys = std::fs::metadata(&keys_file).unwrap();
    assert_eq!((keys.uid(), keys.mode() & 0o777), (65534, 0o600));

    let finger = posttls_finger(server.port, dir.path());
    assert!(finger.contains("Reconnecting after 1 seconds"), "{finger}");
    assert!(!finger.contains("declined session caching"), "{finger}");
    assert!(finger.contains("Reusing old session"), "{finger}");
    // A resumed handshake signs nothing: only the first shows the signature's digest.
    assert_eq!(
        finger.matches("TLS connection established").count(),
        2,
        "{finger}"
    );
    assert_eq!(finger.matches("server-digest").count(), 1, "{finger}");

    // The same with `tls_ticket_keys none`: TLS, but no resumption.
    std::fs::write(dir.config().join("tls_ticket_keys"), "none\n").unwrap();
    let first = s_client(server.port, &["-sess_out", session]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    let second = s_client(server.port, &["-sess_in", session]);
    assert!(second.contains("New, TLSv1.3"), "{second}");
}

/// Started as root, with the ticket-key file in the service user's own directory: what that
/// user leaves at the path is neither followed nor waited on. A symlink to keys that only
/// root may read is not used (before, root opened it before the switch and sessions
/// resumed with root's keys: root opened any file the service user pointed at), and a
/// FIFO does not hang the connection (before, every process blocked in open(2), as root,
/// before its greeting, and ignored SIGTERM). TLS works in both cases, without
/// resumption, the log says why, and `--check` warns.
#[test]
fn ticket_key_path_planted_by_the_service_user_is_neither_followed_nor_waited_on() {
    let Some(_) = tool("openssl") else { return };
    if !as_root() {
        return;
    }
    use std::os::unix::fs::{PermissionsExt, chown, lchown, symlink};
    let dir = TestDir::new(&tls_config(&[
        ("user", "nobody"),
        ("group", "nogroup"),
        ("logging", "logging/file loglevel LOGINFO $DIR/logs/session.log"),
    ]));
    let keys_file = dir.path().join("state/tls-ticket-keys");
    std::fs::write(
        dir.config().join("tls_ticket_keys"),
        format!("{}\n", keys_file.display()),
    )
    .unwrap();
    make_cert(&dir).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["maildir", "state", "logs"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
        chown(dir.path().join(d), Some(65534), Some(65534)).unwrap();
    }
    chown(dir.spool(), Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(dir.path().join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    // Keys only root may read, valid and current.
    let root_keys = dir.path().join("root-keys");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::write(
        &root_keys,
        format!("{now} {} {}\n", "ab".repeat(16), "cd".repeat(32)),
    )
    .unwrap();
    std::fs::set_permissions(&root_keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let log = dir.path().join("logs/session.log");
    let session = dir.path().join("session.pem");
    let session = session.to_str().unwrap();
    let Some(server) = serve(&dir, &[]) else { return };

    // The service user's symlink to root's keys.
    symlink(&root_keys, &keys_file).unwrap();
    lchown(&keys_file, Some(65534), Some(65534)).unwrap();
    let first = s_client(server.port, &["-sess_out", session]);
    assert!(first.contains("New, TLSv1.3"), "{first}");
    // No ticket (no session file), or one that does not resume.
    if Path::new(session).exists() {
        let second = s_client(server.port, &["-sess_in", session]);
        assert!(!second.contains("Reused"), "resumed with root's keys: {second}");
    }
    assert!(read(&log).contains("is a symbolic link"), "{}", read(&log));
    let check = Command::new(binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let report = text(&check);
    assert!(
        report.contains("TLS session resumption will be off") && report.contains("symbolic link"),
        "{report}"
    );

    // A FIFO instead: the greeting comes, and TLS works.
    std::fs::remove_file(&keys_file).unwrap();
    nix::unistd::mkfifo(&keys_file, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    chown(&keys_file, Some(65534), Some(65534)).unwrap();
    let tcp = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = String::new();
    let got = BufReader::new(&tcp).read_line(&mut greeting);
    assert!(
        got.is_ok() && greeting.starts_with("220 "),
        "no greeting with a FIFO at the key path: {got:?} {greeting:?}"
    );
    drop(tcp);
    let tls = s_client(server.port, &[]);
    assert!(tls.contains("New, TLSv1.3"), "{tls}");
    assert!(read(&log).contains("not a regular file"), "{}", read(&log));
}
