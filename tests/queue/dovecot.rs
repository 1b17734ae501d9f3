//! A private Dovecot LMTP instance (Debian's dovecot-lmtpd) with test mailboxes, for
//! queue/lmtp over its Unix socket and over TCP. Delivered files are checked byte for byte.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use super::{Talk, after_our_headers, cfg, files_in, find, read, root_or_skip, tricky_message, wait_for};
use crate::clients::{free_port, wait_listening};
use crate::support::{TestDir, tool};

/// A running Dovecot; stopped with SIGTERM and reaped when dropped.
struct Dovecot {
    dir: TestDir,
    child: Child,
    port: u16,
}

impl Dovecot {
    fn start() -> Option<Dovecot> {
        let dovecot = tool("dovecot")?;
        if !root_or_skip("a private Dovecot") {
            return None;
        }
        let dir = TestDir::new(&[]);
        let t = dir.path().to_path_buf();
        // Dovecot delivers as nobody: it must be able to reach the mailboxes.
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["run", "state", "mail"] {
            std::fs::create_dir_all(t.join(d)).unwrap();
        }
        assert!(
            Command::new("chown")
                .arg("nobody:nogroup")
                .arg(t.join("mail"))
                .status()
                .unwrap()
                .success()
        );
        let port = free_port();
        let users: String = ["alice", "bob"]
            .iter()
            .map(|u| {
                format!(
                    "{u}@example.net:{{PLAIN}}pw:65534:65534::{}/mail/{u}::\n",
                    t.display()
                )
            })
            .collect();
        std::fs::write(t.join("users"), users).unwrap();
        std::fs::write(t.join("dovecot.conf"), conf(&t, port)).unwrap();
        let child = Command::new(dovecot)
            .arg("-F")
            .arg("-c")
            .arg(t.join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let d = Dovecot { dir, child, port };
        assert!(
            wait_for(10, || d.socket().exists()),
            "dovecot did not start:\n{}",
            d.log()
        );
        wait_listening(port);
        Some(d)
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/lmtp")
    }

    fn delivered(&self, user: &str) -> Vec<PathBuf> {
        files_in(&self.dir.path().join("mail").join(user).join("Maildir/new"))
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&read(&self.dir.path().join("dovecot.log"))).into_owned()
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
        let _ = self.child.wait();
    }
}

fn conf(t: &std::path::Path, port: u16) -> String {
    let t = t.display();
    let name = t.to_string().replace(['/', '.'], "-");
    format!(
        "instance_name = qpsmtpd-rs{name}
base_dir = {t}/run
state_dir = {t}/state
log_path = {t}/dovecot.log
protocols = lmtp
listen = 127.0.0.1
ssl = no
hostname = mx.example.net
postmaster_address = postmaster@example.net
first_valid_uid = 1000
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {t}/users
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {t}/users
}}
service lmtp {{
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
  unix_listener lmtp {{
    mode = 0666
  }}
}}
"
    )
}

fn lmtp_config(target: &str) -> TestDir {
    let line = format!("queue/lmtp {target} timeout 10");
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.net"),
    ]))
}

#[test]
fn dovecot_lmtp_delivers_byte_for_byte() {
    let Some(dc) = Dovecot::start() else { return };

    // Over the Unix socket, three recipients, one of them unknown to Dovecot: it is
    // refused at RCPT time with Dovecot's 550; the other two get exactly one copy each.
    let dir = lmtp_config(&dc.socket().display().to_string());
    let mut t = Talk::start(&dir);
    let r = t.envelope(
        "sender@example.org",
        &["alice@example.net", "nobody@example.net", "bob@example.net"],
    );
    assert!(r[0].starts_with("250 "), "{r:?}");
    assert!(
        r[1].starts_with("550 5.1.1 <nobody@example.net> User doesn't exist"),
        "{r:?}"
    );
    assert!(r[2].starts_with("250 "), "{r:?}");
    assert_eq!(
        t.data(&tricky_message("lmtp")),
        "250 2.0.0 Queued! Delivered to 2 recipients"
    );
    t.quit();
    for user in ["alice", "bob"] {
        let got = dc.delivered(user);
        assert_eq!(got.len(), 1, "{user}:\n{}", dc.log());
        let msg = read(&got[0]);
        assert_eq!(
            after_our_headers(&msg),
            &tricky_message("lmtp")[..],
            "{}",
            String::from_utf8_lossy(&msg)
        );
        assert!(
            find(
                &msg,
                b"Authentication-Results: test.example.org; auth=none\nReceived: from "
            )
            .is_some()
        );
    }

    // Over TCP, one recipient: Dovecot's own reply text is passed on.
    let dir = lmtp_config(&format!("127.0.0.1:{}", dc.port));
    let mut t = Talk::start(&dir);
    t.envelope("sender@example.org", &["alice@example.net"]);
    let reply = t.data(&tricky_message("tcp"));
    assert!(
        reply.starts_with("250 2.0.0 Queued! <alice@example.net> ") && reply.ends_with(" Saved"),
        "{reply}"
    );
    t.quit();
    assert!(wait_for(5, || dc.delivered("alice").len() == 2));

    // A client gone after the final dot: nothing delivered.
    let mut t = Talk::start(&dir);
    t.envelope("sender@example.org", &["bob@example.net"]);
    let log = t.data_and_vanish(&tricky_message("vanished"));
    assert!(log.contains("client gone before queueing"), "{log}");
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(
        dc.delivered("bob").len(),
        1,
        "the vanished client's message was delivered"
    );
}
