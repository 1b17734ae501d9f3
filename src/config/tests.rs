//! Config file syntax, includes, refused files, TOML and numbers.

use super::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;

fn texts(l: &Lines) -> Vec<&str> {
    l.iter().collect()
}

#[test]
fn qpsmtpd_file_syntax() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("relayclients"),
        "# comment\n\n  127.0.0.1  \n192.0.\n   # indented comment\n2001:DB8::1/32\n",
    )
    .unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert_eq!(
        texts(&c.lines("relayclients").unwrap()),
        ["127.0.0.1", "192.0.", "2001:DB8::1/32"]
    );
    assert_eq!(c.first("relayclients").unwrap().as_deref(), Some("127.0.0.1"));
    assert!(c.lines("missing").unwrap().is_empty());
    let lines = c.lines("relayclients").unwrap();
    let e = &lines.entries()[1];
    assert_eq!(e.line, 4);
}

#[test]
fn include_file_and_directory() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("more")).unwrap();
    fs::write(d.path().join("more/b"), "b1\n").unwrap();
    fs::write(d.path().join("more/a"), "a1\n").unwrap();
    fs::write(d.path().join("more/.hidden"), "no\n").unwrap();
    fs::write(d.path().join("extra"), "x1\n").unwrap();
    fs::write(
        d.path().join("plugins"),
        "first\n$include extra\n$include more\nlast\n",
    )
    .unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let plugins = c.lines("plugins").unwrap();
    assert_eq!(texts(&plugins), ["first", "x1", "a1", "b1", "last"]);
    let origins: Vec<(String, usize)> = plugins
        .entries()
        .iter()
        .map(|e| (e.file.file_name().unwrap().to_string_lossy().into_owned(), e.line))
        .collect();
    let want = [("plugins", 1), ("extra", 1), ("a", 1), ("b", 1), ("plugins", 4)];
    let want: Vec<(String, usize)> = want.iter().map(|(f, l)| (f.to_string(), *l)).collect();
    assert_eq!(origins, want);
}

#[test]
fn include_loop_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("a"), "$include a\n").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert!(matches!(c.lines("a"), Err(ConfigError::Invalid { .. })));
}

#[test]
fn unreadable_file_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("me")).unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert!(matches!(c.lines("me"), Err(ConfigError::Read { .. })));
}

#[test]
fn a_fifo_is_refused_without_waiting() {
    let d = tempfile::tempdir().unwrap();
    let mode = nix::sys::stat::Mode::from_bits_truncate(0o644);
    nix::unistd::mkfifo(&d.path().join("rcpthosts"), mode).unwrap();
    nix::unistd::mkfifo(&d.path().join("pipe"), mode).unwrap();
    fs::write(d.path().join("plugins"), "rcpt_ok\n$include pipe\n").unwrap();
    fs::write(d.path().join("morercpthosts.cdb"), "").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let started = std::time::Instant::now();
    for name in ["rcpthosts", "plugins"] {
        let e = c.lines(name).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
    fs::remove_file(d.path().join("morercpthosts.cdb")).unwrap();
    nix::unistd::mkfifo(&d.path().join("morercpthosts.cdb"), mode).unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert!(c.cdb("morercpthosts").is_err());
}

#[test]
fn as_root_an_include_of_a_private_file_is_refused_without_its_lines() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: needs root");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let secret = d.path().join("secret");
    fs::write(&secret, "root:$6$hash:19000:0:99999:7:::\n").unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o640)).unwrap();
    fs::write(d.path().join("user"), format!("$include {}\n", secret.display())).unwrap();
    fs::write(d.path().join("open"), "shared line\n").unwrap();
    fs::set_permissions(d.path().join("open"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(d.path().join("group"), "$include open\n").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let e = c.lines("user").unwrap_err().to_string();
    assert!(e.contains("not everybody may read"), "{e}");
    assert!(!e.contains("hash"), "{e}");
    assert_eq!(texts(&c.lines("group").unwrap()), ["shared line"]);
    // The account that serves (here root) reads what it may read, also through the
    // config opened to find that account (a process that stays root keeps it).
    let reused = c.read_by_serving_account();
    assert_eq!(
        texts(&reused.lines("user").unwrap()),
        ["root:$6$hash:19000:0:99999:7:::"]
    );
    let c = Config::open(d.path(), None).unwrap().read_by_serving_account();
    assert_eq!(
        texts(&c.lines("user").unwrap()),
        ["root:$6$hash:19000:0:99999:7:::"]
    );
}

#[test]
fn toml_overrides_files_and_qmail_control_is_a_fallback() {
    let d = tempfile::tempdir().unwrap();
    let q = tempfile::tempdir().unwrap();
    fs::write(d.path().join("me"), "file.example\n").unwrap();
    fs::write(q.path().join("databytes"), "1000\n").unwrap();
    fs::write(q.path().join("me"), "qmail.example\n").unwrap();
    fs::write(
        d.path().join(TOML_FILE),
        "me = \"toml.example\"\nrcpthosts = [\"a.example\", \".b.example\"]\ntls_before_auth = true\n",
    )
    .unwrap();
    let c = Config::open(d.path(), Some(q.path().to_path_buf())).unwrap();
    assert_eq!(c.first("me").unwrap().as_deref(), Some("toml.example"));
    assert_eq!(texts(&c.lines("rcpthosts").unwrap()), ["a.example", ".b.example"]);
    assert_eq!(c.first("tls_before_auth").unwrap().as_deref(), Some("1"));
    assert_eq!(c.number("databytes").unwrap(), Some(1000));
    assert_eq!(c.shadowed_files(), vec![d.path().join("me")]);
}

#[test]
fn bad_toml_names_the_line() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join(TOML_FILE), "me = \"ok\"\ndatabytes = = 3\n").unwrap();
    let err = Config::open(d.path(), None).unwrap_err();
    assert!(matches!(err, ConfigError::Invalid { line: 2, .. }), "{err:?}");
}

#[test]
fn seconds_beyond_the_limit_name_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("hook_timeout"), "# long\n18446744073709551615\n").unwrap();
    fs::write(d.path().join("ok"), "3600\n").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let e = c.seconds("hook_timeout", 3600).unwrap_err().to_string();
    assert!(
        e.ends_with(
            "hook_timeout, line 2: hook_timeout must be at most 3600 seconds, not 18446744073709551615"
        ),
        "{e}"
    );
    assert_eq!(c.seconds("ok", 3600).unwrap(), Some(3600));
    assert_eq!(c.seconds("missing", 3600).unwrap(), None);
}

#[test]
fn number_rejects_garbage() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("databytes"), "lots\n").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert!(c.number("databytes").is_err());
}

#[test]
fn items_set_nowhere_are_empty_and_set_ones_are_found_wherever_they_are() {
    let d = tempfile::tempdir().unwrap();
    fs::create_dir(d.path().join("help")).unwrap();
    fs::write(d.path().join("help/mail"), "mail help\n").unwrap();
    fs::write(d.path().join("me"), "file.example\n").unwrap();
    fs::write(d.path().join(TOML_FILE), "databytes = 1000\n").unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert!(c.lines("timeoutsmtpd").unwrap().is_empty());
    assert!(c.lines("").unwrap().is_empty());
    assert_eq!(texts(&c.lines("me").unwrap()), ["file.example"]);
    assert_eq!(texts(&c.lines("databytes").unwrap()), ["1000"]);
    assert_eq!(texts(&c.lines("help/mail").unwrap()), ["mail help"]);
    assert!(c.lines("help/quit").unwrap().is_empty());
}

#[test]
fn lines_are_trimmed_of_any_blank_and_bytes_that_are_not_utf8_replaced() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("badrcptto"),
        b"plain@example.org\n  padded@example.org \t\r\n\xc2\xa0nbsp@example.org\xc2\xa0\n\xffbad@example.org\n# comment\n\n".as_slice(),
    )
    .unwrap();
    let c = Config::open(d.path(), None).unwrap();
    assert_eq!(
        texts(&c.lines("badrcptto").unwrap()),
        [
            "plain@example.org",
            "padded@example.org",
            "nbsp@example.org",
            "\u{fffd}bad@example.org"
        ]
    );
}

#[test]
fn lines_across_the_read_buffer_and_a_last_line_without_an_end_keep_their_numbers() {
    let d = tempfile::tempdir().unwrap();
    let long = "x".repeat(70_000);
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("entry{i}.example\n"));
    }
    text.push_str(&long);
    text.push_str("\r\n\nlast");
    fs::write(d.path().join("rcpthosts"), &text).unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let lines = c.lines("rcpthosts").unwrap();
    let entries = lines.entries();
    assert_eq!(entries.len(), 5002);
    assert_eq!((entries[0].text.as_str(), entries[0].line), ("entry0.example", 1));
    assert_eq!(
        (entries[4999].text.as_str(), entries[4999].line),
        ("entry4999.example", 5000)
    );
    assert_eq!((entries[5000].text.len(), entries[5000].line), (70_000, 5001));
    assert_eq!((entries[5001].text.as_str(), entries[5001].line), ("last", 5003));
}

#[test]
fn join_is_path_join() {
    for dir in ["/etc/qpsmtpd-rs", "/etc/qpsmtpd-rs/", "config", "", "/"] {
        for name in ["me", "help/mail", "/abs/file", "a/../b", "."] {
            assert_eq!(
                super::files::join(Path::new(dir), name).as_os_str(),
                Path::new(dir).join(name).as_os_str(),
                "{dir:?} {name:?}"
            );
        }
    }
}

/// The borrowed view gives every line the text, file and number its copy has, also for
/// lines spliced in from other files.
#[test]
fn the_borrowed_lines_are_the_entries() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("more"), "two\n\nthree\n").unwrap();
    let include = format!("one\n$include {}\nfour\n", d.path().join("more").display());
    fs::write(d.path().join("plugins"), include).unwrap();
    let c = Config::open(d.path(), None).unwrap();
    let lines = c.lines("plugins").unwrap();
    let borrowed: Vec<_> = lines.each().collect();
    let copies: Vec<_> = lines.entries().iter().map(|e| e.borrowed()).collect();
    assert_eq!(borrowed, copies);
    assert_eq!(lines.len(), 4);
    assert_eq!(borrowed[1].file, d.path().join("more"));
    assert_eq!((borrowed[2].text, borrowed[2].line), ("three", 3));
    assert_eq!(borrowed[3].file, d.path().join("plugins"));
    assert_eq!(lines.first_entry(), Some(borrowed[0]));
}
