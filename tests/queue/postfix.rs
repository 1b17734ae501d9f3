//! A private Postfix (Debian's package) on loopback, with its own config, queue and mail
//! directories, as the next hop of queue/smtp-forward and the target of
//! queue/postfix-queue. It delivers example.org into maildirs through virtual(8), so
//! every accepted message can be found, and counted, on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{Talk, after_our_headers, cfg, files_in, find, read, root_or_skip, tricky_message, wait_for};
use crate::clients::{free_port, wait_listening};
use crate::support::{TestDir, tool};

/// A running private Postfix; stopped (by its own `postfix stop`) when dropped.
pub struct Postfix {
    pub dir: TestDir,
    pub port: u16,
}

impl Postfix {
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("conf")
    }

    pub fn mail(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Messages delivered to a mailbox.
    pub fn delivered(&self, user: &str) -> Vec<PathBuf> {
        files_in(&self.mail().join(user).join("new"))
    }

    /// Files still in the queue (not yet delivered, or stuck).
    pub fn queued(&self) -> Vec<PathBuf> {
        ["maildrop", "incoming", "active", "deferred", "hold"]
            .iter()
            .flat_map(|q| files_in(&self.dir.path().join("queue").join(q)))
            .collect()
    }

    /// Waits until the queue is empty and returns the log.
    pub fn settle(&self) -> String {
        wait_for(20, || self.queued().is_empty());
        String::from_utf8_lossy(&read(&self.dir.path().join("maillog"))).into_owned()
    }

    pub fn start() -> Option<Postfix> {
        tool("postfix")?;
        if !root_or_skip("a private Postfix") {
            return None;
        }
        let dir = TestDir::new(&[]);
        let t = dir.path().to_path_buf();
        for d in ["conf", "queue", "data", "mail"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        chown(&t.join("data"), "postfix:postfix");
        chown(&t.join("mail"), "nobody:nogroup");
        let port = free_port();
        write_tls_files(&t.join("conf"));
        std::fs::write(t.join("conf/main.cf"), main_cf(&t)).unwrap();
        std::fs::write(t.join("conf/master.cf"), master_cf(port)).unwrap();
        std::fs::write(t.join("conf/access"), "temp@example.org 451 4.3.0 try later\n").unwrap();
        let pf = Postfix { dir, port };
        let ok = Command::new("postfix")
            .arg("-c")
            .arg(pf.conf())
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "postfix start failed:\n{}", pf.settle());
        wait_listening(port);
        Some(pf)
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let _ = Command::new("postfix")
            .arg("-c")
            .arg(self.conf())
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // master exits shortly after; its pid file goes with it.
        let pid = self.dir.path().join("queue/pid/master.pid");
        wait_for(10, || !pid.exists());
    }
}

fn chown(path: &Path, owner: &str) {
    assert!(
        Command::new("chown")
            .arg(owner)
            .arg(path)
            .status()
            .unwrap()
            .success()
    );
}

fn main_cf(t: &Path) -> String {
    let t = t.display();
    format!(
        "compatibility_level = 3.6
queue_directory = {t}/queue
data_directory = {t}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = next.example.net
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
alias_maps =
alias_database =
biff = no
maillog_file = {t}/maillog
maillog_file_prefixes = {t}
virtual_mailbox_domains = example.org
virtual_mailbox_base = {t}/mail
virtual_mailbox_maps = inline:{{ alice@example.org=alice/, bob@example.org=bob/, carol@example.org=carol/ }}
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 100
smtpd_recipient_restrictions = check_recipient_access texthash:{t}/conf/access, permit_mynetworks, reject_unauth_destination
smtpd_authorized_xclient_hosts = 127.0.0.0/8
smtpd_tls_security_level = may
smtpd_tls_cert_file = {t}/conf/cert.pem
smtpd_tls_key_file = {t}/conf/key.pem
smtpd_tls_received_header = yes
"
    )
}

fn master_cf(port: u16) -> String {
    let services = "\
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
";
    format!("127.0.0.1:{port} inet n - n - - smtpd\n{services}")
}

/// A test CA (`ca.pem`) and a certificate for `mx.test` it signed (`cert.pem`, `key.pem`).
fn write_tls_files(conf: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    std::fs::write(conf.join("leaf.ext"), "subjectAltName=DNS:mx.test\n").unwrap();
    let steps: [Vec<&str>; 3] = [
        [
            &[
                "req",
                "-x509",
                "-days",
                "2",
                "-subj",
                "/CN=qpsmtpd-rs test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ][..],
            &ec[..],
        ]
        .concat(),
        [
            &[
                "req",
                "-subj",
                "/CN=mx.test",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ][..],
            &ec[..],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let ok = Command::new("openssl")
            .args(&args)
            .current_dir(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "openssl {args:?} failed");
    }
}

fn forward_config(pf: &Postfix, extra: &str) -> TestDir {
    let line = format!(
        "queue/smtp-forward 127.0.0.1 {} xclient timeout 10 {extra}",
        pf.port
    );
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]))
}

#[test]
fn postfix_as_next_hop_and_as_local_queue() {
    let Some(pf) = Postfix::start() else { return };
    if tool("openssl").is_none() {
        return;
    }

    // smtp-forward: per-recipient answers at RCPT time, one delivery for the good ones.
    let dir = forward_config(&pf, "");
    let mut t = Talk::start(&dir);
    let r = t.envelope(
        "sender@example.net",
        &[
            "alice@example.org",
            "ghost@example.org",
            "temp@example.org",
            "bob@example.org",
        ],
    );
    assert!(r[0].starts_with("250 "), "{r:?}");
    assert!(
        r[1].starts_with("550 5.1.1 <ghost@example.org>: Recipient address rejected: User unknown"),
        "the next hop's 5xx must reach the client: {r:?}"
    );
    assert_eq!(
        r[2],
        "451 4.3.0 <temp@example.org>: Recipient address rejected: try later"
    );
    assert!(r[3].starts_with("250 "), "{r:?}");
    let reply = t.data(&tricky_message("forwarded"));
    assert!(reply.starts_with("250 2.0.0 Queued! queued as "), "{reply}");
    t.quit();
    let log = pf.settle();
    for user in ["alice", "bob"] {
        let got = pf.delivered(user);
        assert_eq!(got.len(), 1, "{user}: exactly one copy\n{log}");
        let msg = read(&got[0]);
        assert_eq!(after_our_headers(&msg), &tricky_message("forwarded")[..]);
        // XCLIENT: Postfix saw our client, not us.
        assert!(
            find(&msg, b"from client.example (unknown [192.0.2.7])").is_some(),
            "{}",
            String::from_utf8_lossy(&msg)
        );
    }

    // STARTTLS with a verified certificate.
    let ca = pf.conf().join("ca.pem");
    let dir = forward_config(
        &pf,
        &format!("tls verify tls_ca {} tls_name mx.test", ca.display()),
    );
    let mut t = Talk::start(&dir);
    let r = t.envelope("sender@example.net", &["carol@example.org"]);
    assert!(r[0].starts_with("250"), "{r:?}");
    assert!(t.data(&tricky_message("tls")).starts_with("250 "));
    t.quit();
    pf.settle();
    let got = pf.delivered("carol");
    assert_eq!(got.len(), 1);
    let msg = read(&got[0]);
    assert!(
        find(&msg, b"(using TLSv1.3 with cipher").is_some(),
        "{}",
        String::from_utf8_lossy(&msg)
    );

    // A certificate for another name: no delivery, a temporary refusal.
    let dir = forward_config(
        &pf,
        &format!("tls verify tls_ca {} tls_name other.test", ca.display()),
    );
    let mut t = Talk::start(&dir);
    let r = t.envelope("sender@example.net", &["carol@example.org"]);
    assert_eq!(r[0], "450 4.7.0 TLS with the next hop failed; try again later");
    t.quit();

    // A client that hangs up after the final dot: the downstream transaction is never
    // completed, so Postfix delivers nothing.
    let dir = forward_config(&pf, "tls may");
    let mut t = Talk::start(&dir);
    assert!(t.envelope("sender@example.net", &["alice@example.org"])[0].starts_with("250"));
    let log = t.data_and_vanish(&tricky_message("vanished"));
    assert!(log.contains("client gone before queueing"), "{log}");

    // postfix-queue: through Postfix's sendmail command into the same instance.
    let line = format!(
        "queue/postfix-queue config_directory {} timeout 20",
        pf.conf().display()
    );
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let mut t = Talk::start(&dir);
    t.envelope("", &["bob@example.org"]);
    let reply = t.data(&tricky_message("postdrop"));
    assert_eq!(reply, "250 2.0.0 Queued! <postdrop@client.example>");
    t.quit();
    let log = pf.settle();
    assert!(wait_for(10, || pf.delivered("bob").len() == 2), "{log}");
    let copies: Vec<Vec<u8>> = pf.delivered("bob").iter().map(|p| read(p)).collect();
    let postdrop: Vec<&Vec<u8>> = copies
        .iter()
        .filter(|m| find(m, b"Subject: postdrop").is_some())
        .collect();
    assert_eq!(postdrop.len(), 1, "exactly one copy through postfix-queue");
    assert_eq!(after_our_headers(postdrop[0]), &tricky_message("postdrop")[..]);
    assert!(
        postdrop[0].starts_with(b"Return-Path: <MAILER-DAEMON>")
            || find(postdrop[0], b"Return-Path: <>").is_some()
    );

    let log = pf.settle();
    assert!(
        pf.delivered("alice").len() == 1,
        "the vanished client's message was delivered:\n{log}"
    );
    assert!(find(log.as_bytes(), b"vanished").is_none());
}

/// Postfix's sendmail reads each recipient argument as an RFC 822 address list: an
/// unquoted `alice,bob@example.org` is two recipients (bob would get the message). The
/// comma is refused unquoted, and a quoted local part is passed quoted, so Postfix sees
/// exactly the one recipient the client was told 250 for.
#[test]
fn postfix_sendmail_reads_exactly_the_accepted_recipients() {
    let Some(pf) = Postfix::start() else { return };
    let line = format!(
        "queue/postfix-queue config_directory {} timeout 20",
        pf.conf().display()
    );
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let mut t = Talk::start(&dir);
    assert!(t.cmd("EHLO client.example").starts_with("250"));
    assert!(t.cmd("MAIL FROM:<>").starts_with("250"));
    let r = t.cmd("RCPT TO:<alice,bob@example.org>");
    assert!(r.starts_with("501 "), "{r}");
    let r = t.cmd("RCPT TO:<\"alice,bob\"@example.org>");
    assert!(r.starts_with("250 "), "{r}");
    let r = t.cmd("RCPT TO:<\"carol (x) <y>\"@example.org>");
    assert!(r.starts_with("250 "), "{r}");
    assert!(t.data(&tricky_message("commas")).starts_with("250 "));
    t.quit();
    let log = pf.settle();
    // Unknown in the virtual mailbox table: bounced (to <>, so no DSN), one line each.
    for rcpt in [
        "to=<\"alice,bob\"@example.org>",
        "to=<\"carol (x) <y>\"@example.org>",
    ] {
        assert!(log.contains(rcpt), "{rcpt} not in the log:\n{log}");
    }
    for user in ["alice", "bob", "carol"] {
        assert!(
            pf.delivered(user).is_empty(),
            "{user} got a copy: a recipient argument was split\n{log}"
        );
    }
    assert_eq!(log.matches(" to=<").count(), 2, "{log}");
}
