//! AUTH through the binary under tcpserver, with real clients and real password tools:
//! hashes made by openssl, Perl's crypt (libxcrypt) and doveadm; hostile credentials sent
//! byte by byte; a checkpassword program; a real Dovecot; the shipped submission configs.

use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::support::{TestDir, root, tool};
use crate::tls::{CHECKPW, make_cert, reply, serve, start_dovecot_with, swaks, text, tls_config};

fn config(lines: &[(&str, &str)]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// The output of a password tool, trimmed.
fn made_by(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program} {args:?}: {}", text(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Sends each line and reads one reply to it; returns every reply.
fn converse(port: u16, lines: &[&str]) -> Vec<String> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut r = BufReader::new(tcp.try_clone().unwrap());
    let mut w = tcp;
    let mut replies = vec![reply(&mut r)];
    for line in lines {
        w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        replies.push(reply(&mut r));
    }
    replies
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn plain(user: &str, pass: &str) -> String {
    b64(format!("\0{user}\0{pass}").as_bytes())
}

/// Every scheme people have in their password files, each made by the tool that makes it:
/// the right password logs in, the stored string itself does not.
#[test]
fn auth_flat_file_checks_hashes_made_by_real_tools() {
    let (Some(_), Some(openssl), Some(perl), Some(doveadm)) =
        (tool("swaks"), tool("openssl"), tool("perl"), tool("doveadm"))
    else {
        return;
    };
    let openssl = openssl.to_str().unwrap();
    let perl = perl.to_str().unwrap();
    let doveadm = doveadm.to_str().unwrap();
    let crypt = |salt: &str| made_by(perl, &["-e", &format!("print crypt('pw one', '{salt}')")]);
    let mut entries = vec![
        ("md5crypt", made_by(openssl, &["passwd", "-1", "pw one"])),
        ("sha256crypt", made_by(openssl, &["passwd", "-5", "pw one"])),
        ("sha512crypt", made_by(openssl, &["passwd", "-6", "pw one"])),
        // Debian's own /etc/shadow default, through libxcrypt.
        ("yescrypt", crypt("$y$j9T$saltsaltsaltsalt")),
        ("bcrypt2b", crypt("$2b$05$abcdefghijklmnopqrstuu")),
    ];
    for scheme in [
        "CRYPT",
        "MD5-CRYPT",
        "SHA256-CRYPT",
        "SHA512-CRYPT",
        "BLF-CRYPT",
        "ARGON2ID",
        "SSHA",
        "SSHA256",
        "SSHA512",
        "SHA256",
        "PLAIN-MD5",
        "SHA512.HEX",
        "PLAIN",
    ] {
        // bcrypt at cost 5, the rest at doveadm's defaults.
        let rounds: &[&str] = if scheme == "BLF-CRYPT" { &["-r", "5"] } else { &[] };
        let hash = made_by(doveadm, &[&["pw", "-s", scheme, "-p", "pw one"], rounds].concat());
        entries.push((scheme, hash));
    }
    each_logs_in_and_not_itself(&entries);
}

/// What htpasswd (Apache's default `$apr1$`, bcrypt, SHA-crypt, `{SHA}`) and mkpasswd
/// (Debian's password tool: yescrypt, SHA-crypt, MD5-crypt, bcrypt) write.
#[test]
fn auth_flat_file_checks_htpasswd_and_mkpasswd_hashes() {
    let (Some(_), Some(htpasswd), Some(mkpasswd)) = (tool("swaks"), tool("htpasswd"), tool("mkpasswd"))
    else {
        return;
    };
    let htpasswd = htpasswd.to_str().unwrap();
    let mkpasswd = mkpasswd.to_str().unwrap();
    // `htpasswd -nb user password` prints `user:hash`.
    let ht = |flag: &str| {
        let line = made_by(htpasswd, &["-nb", flag, "u", "pw one"]);
        line.split_once(':').unwrap().1.to_string()
    };
    let mut entries = vec![
        ("htpasswd-m", ht("-m")),
        ("htpasswd-b", ht("-B")),
        ("htpasswd-s", ht("-s")),
        ("htpasswd-5", ht("-5")),
        ("htpasswd-2", ht("-2")),
    ];
    for method in ["yescrypt", "sha512crypt", "sha256crypt", "md5crypt", "bcrypt"] {
        entries.push((method, made_by(mkpasswd, &["-m", method, "pw one"])));
    }
    each_logs_in_and_not_itself(&entries);
}

/// Serves a flat_auth_pw of one user per (scheme, entry), each with the password `pw one`:
/// the password logs in, the stored string itself does not.
fn each_logs_in_and_not_itself(entries: &[(&str, String)]) {
    let users: Vec<(String, String)> = entries
        .iter()
        .map(|(scheme, hash)| (format!("{}@example.com", scheme.to_lowercase()), hash.clone()))
        .collect();
    let mut lines = vec![
        ("plugins", "auth/auth_flat_file".to_string()),
        ("plugins", "rcpt_ok".to_string()),
        ("tls_before_auth", "0".to_string()),
    ];
    for (user, hash) in &users {
        lines.push(("flat_auth_pw", format!("{user}:{hash}")));
    }
    let lines: Vec<(String, String)> = lines.iter().map(|(a, b)| (a.to_string(), b.clone())).collect();
    let dir = TestDir::new(&lines);
    let Some(server) = serve(&dir, &[]) else { return };
    for (user, hash) in &users {
        let good = converse(
            server.port,
            &["EHLO c.example", &format!("AUTH PLAIN {}", plain(user, "pw one"))],
        );
        assert!(good[2].starts_with("235 "), "{user} {hash}: {good:?}");
        let itself = converse(
            server.port,
            &["EHLO c.example", &format!("AUTH PLAIN {}", plain(user, hash))],
        );
        assert_eq!(
            itself[2], "535 5.7.8 Authentication credentials invalid\r\n",
            "{user}: the stored string {hash} logged in"
        );
    }
}

/// `--check` names every entry that can never match, with its line.
#[test]
fn check_reports_entries_in_unknown_schemes() {
    let dir = TestDir::new(&config(&[
        ("plugins", "auth/auth_flat_file"),
        ("plugins", "rcpt_ok"),
        ("flat_auth_pw", "# users"),
        ("flat_auth_pw", "good@example.com:good_pass"),
        ("flat_auth_pw", "scrypt@example.com:$7$CU..../....salt$hash"),
        ("flat_auth_pw", "foo@example.com:{FOO}secret"),
        ("flat_auth_pw", "broken@example.com:$6$broken"),
        // mkpasswd -m descrypt, mkpasswd -m bsdicrypt, openssl passwd -aixmd5: no `$id$`,
        // so compared as clear text; --check says the hash string itself is the password.
        ("flat_auth_pw", "des@example.com:Y6/Od0lWQtTdQ"),
        ("flat_auth_pw", "bsdi@example.com:_J9..p78yg5PINKr6UQQ"),
        ("flat_auth_pw", "aix@example.com:NjHs5Dun$NaaXU977/uYKL9e/BTVtX."),
        ("flat_auth_pw", "meant@example.com:{PLAIN}Y6/Od0lWQtTdQ"),
        ("flat_auth_pw", "long@example.com:correct horse battery"),
    ]));
    let out = Command::new(crate::support::binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (line, why) in [
        (3, "unsupported hash type $7$"),
        (4, "unsupported password scheme {FOO}"),
        (5, "malformed SHA-crypt hash"),
    ] {
        let expected = format!("flat_auth_pw, line {line}: {why}: this entry never matches");
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }
    for (line, what) in [
        (6, "a traditional DES crypt hash"),
        (7, "a BSDi crypt hash"),
        (8, "an AIX MD5 crypt hash"),
    ] {
        let expected = format!("flat_auth_pw, line {line}: looks like {what}, but is compared as clear text");
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }
    for quiet in ["line 2", "line 9", "line 10"] {
        assert!(!stderr.contains(quiet), "{quiet}: {stderr}");
    }
}

/// `--check` names entries that look like a `{SCHEME}` prefix or a `$id$` hash but are
/// malformed (a blank inside the braces, no closing brace, a blank in the `$id$`): they
/// never match, where before the hash string itself was the password.
#[test]
fn check_reports_malformed_scheme_prefixes() {
    let dir = TestDir::new(&config(&[
        ("plugins", "auth/auth_flat_file"),
        ("plugins", "rcpt_ok"),
        ("flat_auth_pw", "blank@example.com:{ SSHA512}c2FsdA=="),
        ("flat_auth_pw", "unclosed@example.com:{SSHA512c2FsdA=="),
        ("flat_auth_pw", "mcf@example.com:$ 6$saltsalt$hash"),
        ("flat_auth_pw", "clear@example.com:{}x"),
    ]));
    let out = Command::new(crate::support::binary())
        .args(["--check", "--config"])
        .arg(dir.config())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in 1..=3 {
        let expected = format!("flat_auth_pw, line {line}: malformed");
        assert!(stderr.contains(&expected), "{expected:?} not in:\n{stderr}");
    }
    assert!(!stderr.contains("line 4"), "{stderr}");
}

/// An auth plugin whose AUTH can never be offered (tls_before_auth at its default, no tls
/// plugin): `--check` says so, since every client then gets 500 to AUTH (and, with
/// require_auth, 530 to MAIL).
#[test]
fn check_warns_when_auth_is_never_offered() {
    let check = |lines: &[(&str, &str)]| {
        let dir = TestDir::new(&config(lines));
        let out = Command::new(crate::support::binary())
            .args(["--check", "--config"])
            .arg(dir.config())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = "AUTH is never offered";
    let base = [("plugins", "auth/auth_flat_file"), ("plugins", "rcpt_ok")];
    let stderr = check(&base);
    assert!(stderr.contains(warning), "{stderr}");
    let stderr = check(&[base[0], base[1], ("tls_before_auth", "0")]);
    assert!(!stderr.contains(warning), "{stderr}");
    let stderr = check(&[("plugins", "tls"), base[0], base[1]]);
    assert!(!stderr.contains(warning), "{stderr}");
}

/// `--check` names a mail plugin listed before require_auth (its OK would end the chain
/// before require_auth runs).
#[test]
fn check_warns_about_mail_plugins_before_require_auth() {
    let check = |plugins: &[&str]| {
        let mut lines = vec![("tls_before_auth", "0")];
        lines.extend(plugins.iter().map(|p| ("plugins", *p)));
        let dir = TestDir::new(&config(&lines));
        let out = Command::new(crate::support::binary())
            .args(["--check", "--config"])
            .arg(dir.config())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let warning = "badmailfrom runs its mail hook before require_auth";
    let stderr = check(&["auth/auth_flat_file", "badmailfrom", "require_auth", "rcpt_ok"]);
    assert!(stderr.contains(warning), "{stderr}");
    let stderr = check(&["auth/auth_flat_file", "require_auth", "badmailfrom", "rcpt_ok"]);
    assert!(!stderr.contains("before require_auth"), "{stderr}");
}

/// A checkpassword program as the back end: a NUL in a LOGIN user name must not shift its
/// fields (`alice\0alicepw\0...` would check alice's password and carry the rest into
/// Authentication-Results), and it is never asked about an empty password.
#[test]
fn hostile_credentials_never_reach_checkpassword() {
    let (Some(_), Some(truth)) = (tool("bash"), tool("true")) else {
        return;
    };
    let line = format!(
        "auth/auth_checkpassword checkpw $DIR/checkpw true {}",
        truth.display()
    );
    let dir = TestDir::new(&config(&[
        ("plugins", line.as_str()),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("tls_before_auth", "0"),
        ("max_auth_failures", "0"),
    ]));
    let checkpw = dir.path().join("checkpw");
    std::fs::write(&checkpw, CHECKPW).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&checkpw, std::fs::Permissions::from_mode(0o755)).unwrap();
    let ran = dir.path().join("checkpw.fds");
    let Some(server) = serve(&dir, &[]) else { return };
    let shifted = b64(b"alice@example.com\0alice pass\0x; dkim=pass header.d=paypal.com");
    let replies = converse(
        server.port,
        &[
            "EHLO c.example",
            &format!("AUTH LOGIN {shifted}"),
            &format!("AUTH LOGIN {}", b64(b"alice@example.com")),
            "=",
            &format!("AUTH PLAIN {}", plain("alice@example.com", "")),
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<x@elsewhere.example>",
            "QUIT",
        ],
    );
    assert_eq!(
        replies[2], "535 5.7.8 Authentication credentials invalid\r\n",
        "{replies:?}"
    );
    assert!(replies[3].starts_with("334 "), "{replies:?}");
    assert_eq!(
        replies[4], "535 5.7.8 Authentication credentials invalid\r\n",
        "{replies:?}"
    );
    assert_eq!(
        replies[5], "535 5.7.8 Authentication credentials invalid\r\n",
        "{replies:?}"
    );
    assert!(
        replies[7].starts_with("550 "),
        "not authenticated, so no relaying: {replies:?}"
    );
    assert!(!ran.exists(), "the checkpassword program was run");
    // The same program still accepts a real login.
    let good = converse(
        server.port,
        &[
            "EHLO c.example",
            &format!("AUTH PLAIN {}", plain("alice@example.com", "alice pass")),
        ],
    );
    assert!(good[2].starts_with("235 "), "{good:?}");
    assert!(ran.exists());
}

/// Authentication-Results writes `smtp.auth` as RFC 8601 §2.2 allows: a name with `;` or
/// spaces is quoted, so it cannot add results of its own.
#[test]
fn authentication_results_quotes_odd_user_names() {
    let dir = TestDir::new(&config(&[
        ("plugins", "auth/auth_flat_file"),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("tls_before_auth", "0"),
        ("flat_auth_pw", "x; dkim=pass header.d=paypal.com@example.com:pw"),
    ]));
    let Some(server) = serve(&dir, &[]) else { return };
    let replies = converse(
        server.port,
        &[
            "EHLO c.example",
            &format!(
                "AUTH PLAIN {}",
                plain("x; dkim=pass header.d=paypal.com@example.com", "pw")
            ),
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<x@elsewhere.example>",
            "DATA",
            "Subject: x\r\n\r\nbody\r\n.",
            "QUIT",
        ],
    );
    assert!(replies[6].starts_with("250 "), "{replies:?}");
    let msg = String::from_utf8_lossy(&dir.only_message()).into_owned();
    assert!(
        msg.lines()
            .any(|l| l
                .ends_with("auth=pass (plain) smtp.auth=\"x; dkim=pass header.d=paypal.com@example.com\"")),
        "{msg}"
    );
}

/// Dovecot with `auth_username_format = %Ln`: `Alice@Example.NET` logs in as Dovecot's
/// `alice`, and that is the name recorded (Authentication-Results, the `authuser` note,
/// the log), not the one the client typed.
#[test]
fn auth_dovecot_records_the_name_dovecot_returns() {
    let Some(_) = tool("swaks") else { return };
    let scratch = tempfile::tempdir().unwrap();
    let Some(dovecot) = start_dovecot_with(
        scratch.path(),
        "auth_username_format = %Ln",
        "alice:{PLAIN}alice pw:65534:65534::/nonexistent::\n",
    ) else {
        return;
    };
    let line = format!("auth/auth_dovecot socket {}", dovecot.socket.display());
    let dir = TestDir::new(&config(&[
        ("plugins", line.as_str()),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("tls_before_auth", "0"),
    ]));
    let Some(server) = serve(&dir, &[]) else { return };
    let out = swaks(
        server.port,
        &[
            "--auth",
            "LOGIN",
            "--auth-user",
            "Alice@Example.NET",
            "--auth-password",
            "alice pw",
            "--to",
            "x@elsewhere.example",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("235 2.7.0 LOGIN authentication successful for alice - auth_dovecot"),
        "{}",
        text(&out)
    );
    let msg = String::from_utf8_lossy(&dir.only_message()).into_owned();
    assert!(msg.lines().any(|l| l.ends_with("smtp.auth=alice")), "{msg}");
    assert!(msg.contains("with ESMTPA id"), "{msg}");
    assert!(!msg.contains("Alice@Example.NET"), "{msg}");
}

/// The shipped configs for ports 587 and 465 require AUTH before MAIL (RFC 6409 §4.3), even
/// from loopback, which their `relayclients` once let relay.
#[test]
fn shipped_submission_configs_require_auth() {
    let Some(_) = tool("swaks") else { return };
    for (name, args) in [("submission", &[][..]), ("smtps", &["--implicit-tls"][..])] {
        let shipped = root().join("packaging/debian/etc/qpsmtpd-rs").join(name);
        let dir = TestDir::new(&tls_config(&[]));
        if make_cert(&dir).is_none() {
            return;
        }
        copy_shipped(&shipped, &dir);
        let Some(server) = serve(&dir, args) else { return };
        let tls = if name == "smtps" { "--tlsc" } else { "--tls" };
        let out = swaks(server.port, &[tls, "--to", "someone@example.org"]);
        assert!(!out.status.success(), "{name}: {}", text(&out));
        assert!(
            text(&out).contains("530 5.7.0 Authentication required"),
            "{name}: {}",
            text(&out)
        );
        let out = swaks(
            server.port,
            &[
                tls,
                "--auth",
                "PLAIN",
                "--auth-user",
                "good@example.com",
                "--auth-password",
                "good_pass",
                "--to",
                "someone@elsewhere.example",
            ],
        );
        assert!(out.status.success(), "{name}: {}", text(&out));
        assert_eq!(dir.messages().len(), 1, "{name}");
    }
}

/// The shipped `plugins` with the test's certificate and maildir; the shipped files that
/// only `$include` the port 25 config are left out (the test's own are used).
fn copy_shipped(shipped: &Path, dir: &TestDir) {
    let ssl = dir.config().join("ssl");
    let plugins = std::fs::read_to_string(shipped.join("plugins"))
        .unwrap()
        .replace(
            "/etc/qpsmtpd-rs/tls/server.crt",
            ssl.join("qpsmtpd-server.crt").to_str().unwrap(),
        )
        .replace(
            "/etc/qpsmtpd-rs/tls/server.key",
            ssl.join("qpsmtpd-server.key").to_str().unwrap(),
        )
        .replace(
            "/var/spool/qpsmtpd-rs/maildir",
            dir.path().join("maildir").to_str().unwrap(),
        );
    assert!(plugins.contains("require_auth"), "{plugins}");
    std::fs::write(dir.config().join("plugins"), plugins).unwrap();
    // As shipped: loopback is a relay client of the port 25 config.
    std::fs::write(dir.config().join("relayclients"), "127.0.0.1\n").unwrap();
}
