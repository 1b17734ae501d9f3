//! queue/exim-bsmtp with Debian's Exim binary and a private configuration (its own spool,
//! log and maildirs). Exim and Postfix conflict as packages, so tests/run unpacks Exim's
//! package into target/exim instead of installing it; an installed exim4 is used when
//! there is one.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use super::{Talk, after_our_headers, cfg, files_in, read, root_or_skip, tricky_message, wait_for};
use crate::support::{TestDir, required, root};

fn exim_binary() -> Option<PathBuf> {
    let candidates = [
        root().join("target/exim/usr/sbin/exim4"),
        PathBuf::from("/usr/sbin/exim4"),
    ];
    let found = candidates.into_iter().find(|p| p.is_file());
    if found.is_none() {
        assert!(
            !required(),
            "exim4 is required (QPSMTPD_RS_REQUIRE_ALL=1); tests/run unpacks it"
        );
        eprintln!("SKIPPED: exim4 is not available");
    }
    found
}

fn exim_conf(t: &std::path::Path) -> String {
    let t = t.display();
    format!(
        "exim_user = root
exim_group = root
never_users =
keep_environment =
spool_directory = {t}/spool
log_file_path = {t}/log/%slog
primary_hostname = exim.example.net
domainlist local_domains = example.org
trusted_users = root
acl_not_smtp = acl_check_msg
begin acl
acl_check_msg:
  deny condition = ${{if match{{$h_subject:}}{{refuse}}}}
       message = 5.7.1 refused by policy
  accept
begin routers
local:
  driver = accept
  domains = +local_domains
  local_parts = alice : bob
  transport = maildir
begin transports
maildir:
  driver = appendfile
  directory = {t}/mail/$local_part_data/Maildir
  maildir_format
  create_directory
  user = nobody
  group = nogroup
"
    )
}

#[test]
fn exim_takes_batched_smtp_and_its_refusals_reach_the_client() {
    let Some(exim) = exim_binary() else { return };
    if !root_or_skip("a private Exim") {
        return;
    }
    let work = TestDir::new(&[]);
    let t = work.path().to_path_buf();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["spool", "log", "mail"] {
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
    std::fs::write(t.join("exim.conf"), exim_conf(&t)).unwrap();
    // The plugin runs `<exim_path> -bS`; the wrapper adds the private configuration.
    let wrapper = t.join("rsmtp");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} -C {} \"$@\"\n",
            exim.display(),
            t.join("exim.conf").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = format!("queue/exim-bsmtp exim_path {} timeout 20", wrapper.display());
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let delivered = |user: &str| files_in(&t.join("mail").join(user).join("Maildir/new"));

    let mut talk = Talk::start(&dir);
    talk.envelope("sender@example.net", &["alice@example.org"]);
    assert_eq!(talk.data(&tricky_message("bsmtp")), "250 2.0.0 Queued!");
    let r = talk.data_after_rset(&["bob@example.org"], &tricky_message("refuse"));
    assert_eq!(r, "552 5.7.1 refused by policy");
    talk.quit();
    let mainlog = || String::from_utf8_lossy(&read(&t.join("log/mainlog"))).into_owned();
    assert!(wait_for(20, || delivered("alice").len() == 1), "{}", mainlog());
    let msg = read(&delivered("alice")[0]);
    assert_eq!(
        after_our_headers(&msg),
        &tricky_message("bsmtp")[..],
        "{}",
        String::from_utf8_lossy(&msg)
    );
    assert!(delivered("bob").is_empty(), "a refused message was delivered");

    // Exim cannot run (its configuration is missing): a temporary failure.
    let broken = t.join("rsmtp-broken");
    std::fs::write(
        &broken,
        format!(
            "#!/bin/sh\nexec {} -C {}/missing.conf \"$@\"\n",
            exim.display(),
            t.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    let line = format!("queue/exim-bsmtp exim_path {} timeout 20", broken.display());
    let bad = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
    ]));
    let mut talk = Talk::start(&bad);
    talk.envelope("sender@example.net", &["bob@example.org"]);
    assert_eq!(
        talk.data(&tricky_message("broken")),
        "451 4.3.0 Unable to queue message; try again later"
    );
    let log = talk.quit();
    assert!(log.contains("exim -bS exited with 1"), "{log}");

    // A client gone after the final dot: Exim never hears of the message.
    let mut talk = Talk::start(&dir);
    talk.envelope("sender@example.net", &["bob@example.org"]);
    let log = talk.data_and_vanish(&tricky_message("vanished"));
    assert!(log.contains("client gone before queueing"), "{log}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(delivered("bob").is_empty());
    assert!(files_in(&dir.spool()).is_empty(), "spool or batch file left");
}

/// Exim's sendmail interface reads each recipient argument as an address list, like
/// Postfix's: `"alice,bob"@example.org` must arrive quoted to stay one (unroutable)
/// recipient; unquoted it was alice@<primary_hostname> and bob@example.org. The same
/// recipients in BSMTP `RCPT TO:` lines.
#[test]
fn exim_reads_exactly_the_accepted_recipients() {
    let Some(exim) = exim_binary() else { return };
    if !root_or_skip("a private Exim") {
        return;
    }
    let work = TestDir::new(&[]);
    let t = work.path().to_path_buf();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o755)).unwrap();
    for d in ["spool", "log", "mail"] {
        std::fs::create_dir_all(t.join(d)).unwrap();
    }
    std::fs::write(t.join("exim.conf"), exim_conf(&t)).unwrap();
    // Queue only: the test reads the recipients from Exim's queue listing.
    let wrapper = t.join("exim");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexec {} -C {} -odq \"$@\"\n",
            exim.display(),
            t.join("exim.conf").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let queued = || {
        let out = Command::new(&exim)
            .arg("-C")
            .arg(t.join("exim.conf"))
            .arg("-bp")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for plugin in [
        format!("queue/sendmail {} timeout 20", wrapper.display()),
        format!("queue/exim-bsmtp exim_path {} timeout 20", wrapper.display()),
    ] {
        let dir = TestDir::new(&cfg(&[
            ("plugins", "rcpt_ok"),
            ("plugins", &plugin),
            ("rcpthosts", "example.org"),
        ]));
        let mut talk = Talk::start(&dir);
        assert!(talk.cmd("EHLO client.example").starts_with("250"));
        assert!(talk.cmd("MAIL FROM:<\"s e\"@example.net>").starts_with("250"));
        let r = talk.cmd("RCPT TO:<alice,bob@example.org>");
        assert!(r.starts_with("501 "), "{r}");
        for rcpt in [
            "\"alice,bob\"@example.org",
            "\"x y\"@example.org",
            "carol@example.org",
        ] {
            let r = talk.cmd(&format!("RCPT TO:<{rcpt}>"));
            assert!(r.starts_with("250 "), "{rcpt}: {r}");
        }
        assert!(talk.data(&tricky_message("argv")).starts_with("250 "), "{plugin}");
        talk.quit();
        let listing = queued();
        let mut rcpts: Vec<&str> = listing
            .lines()
            .filter(|l| l.starts_with("          "))
            .map(str::trim)
            .collect();
        rcpts.sort_unstable();
        assert_eq!(
            rcpts,
            [
                "\"alice,bob\"@example.org",
                "\"x y\"@example.org",
                "carol@example.org"
            ],
            "{plugin}:\n{listing}"
        );
        assert!(listing.contains("<\"s e\"@example.net>"), "{plugin}:\n{listing}");
        // Empty the queue for the next round.
        let _ = std::fs::remove_dir_all(t.join("spool/input"));
        let _ = std::fs::remove_dir_all(t.join("spool/msglog"));
    }
}
