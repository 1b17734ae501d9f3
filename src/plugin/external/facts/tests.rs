use super::*;
use crate::config::Config;
use crate::connection::{Connection, Greeting};
use crate::log::Logger;
use crate::plugin::Chain;
use crate::transaction::Transaction;

#[test]
fn escapes_round_trip() {
    for s in [
        "plain <a@b>",
        "two\nlines\r",
        "back\\slash",
        "bell\x07",
        "tab\there",
        "ünïcode",
        "next\u{85}line\u{2028}sep\u{2029}para\u{9f}",
    ] {
        let mut buf = Vec::new();
        escape_into(&mut buf, s, false);
        let text = String::from_utf8(buf).unwrap();
        assert!(!text.contains('\n'));
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(!text.contains(['\u{85}', '\u{2028}', '\u{2029}']), "{text:?}");
        assert_eq!(unescape(&text), s);
    }
    let mut buf = Vec::new();
    escape_into(&mut buf, "a name", true);
    assert_eq!(buf, b"a\\x20name");
    assert_eq!(unescape("odd \\q and \\x4"), "odd \\q and \\x4");
    assert_eq!(unescape("\\u2028 \\u12 \\ud800"), "\u{2028} \\u12 \\ud800");
}

#[test]
fn request_lines() {
    let mut conn = Connection::new("c1", "192.0.2.1");
    conn.hello = Some(Greeting {
        esmtp: true,
        host: "client.example".into(),
    });
    conn.notes.insert("naughty".into(), "one\ntwo".into());
    let mut txn = Transaction::new("c1.1".into());
    txn.sender = Some(Address::from_parts("a", Some("b.example")));
    txn.mail_params = vec![("size".into(), Some("10".into())), ("smtputf8".into(), None)];
    txn.header.push_line(b"Subject: hi\n");
    txn.header.push_line(b"  folded\n");
    let (config, log, chain) = (Config::empty(), Logger::silent("c1"), Chain::new());
    let mut replies = Vec::new();
    let cx = Context {
        conn: &mut conn,
        txn: &mut txn,
        config: &config,
        chain: &chain,
        log: &log,
        me: "mx.example",
        replies: &mut replies,
        plugin: "p",
        hook: Hook::Rcpt,
        log_adjust: None,
    };
    let rcpt = Address::from_parts("x", Some("y.example"));
    let params = Vec::new();
    let args = Args::Address {
        addr: &rcpt,
        params: &params,
    };
    let text = String::from_utf8(request(Hook::Rcpt, &cx, args, None).finish()).unwrap();
    for line in [
        "hook rcpt\n",
        "remote_ip 192.0.2.1\n",
        "helo_verb EHLO\n",
        "note naughty one\\ntwo\n",
        "sender a@b.example\n",
        "mail_param size=10\n",
        "mail_param smtputf8\n",
        "header Subject: hi  folded\n",
        "address x@y.example\n",
    ] {
        assert!(text.contains(line), "{line:?} missing in\n{text}");
    }
    assert!(text.starts_with("hook rcpt\n") && text.ends_with("\n\n"));
}

/// The facts of one `auth-*` hook call, as lines.
fn auth_request(hook: Hook, args: Args<'_>) -> Vec<String> {
    let mut conn = Connection::new("c1", "192.0.2.1");
    let mut txn = Transaction::new("c1.1".into());
    let (config, log, chain) = (Config::empty(), Logger::silent("c1"), Chain::new());
    let mut replies = Vec::new();
    let cx = Context {
        conn: &mut conn,
        txn: &mut txn,
        config: &config,
        chain: &chain,
        log: &log,
        me: "mx.example",
        replies: &mut replies,
        plugin: "p",
        hook,
        log_adjust: None,
    };
    let text = String::from_utf8(request(hook, &cx, args, None).finish()).unwrap();
    text.lines()
        .filter(|l| l.starts_with("login_"))
        .map(str::to_string)
        .collect()
}

#[test]
fn auth_hooks_get_the_mechanism_user_and_the_parts_the_mechanism_has() {
    let plain = Args::Auth {
        mechanism: "plain",
        user: "bob",
        password: Some("a b\nc"),
        digest: None,
        ticket: None,
    };
    assert_eq!(
        auth_request(Hook::AuthPlain, plain),
        [
            "login_mechanism plain",
            "login_user bob",
            "login_password a b\\nc"
        ]
    );
    let cram = Args::Auth {
        mechanism: "cram-md5",
        user: "bob",
        password: None,
        digest: Some("0123abcd"),
        ticket: Some("<1.2@mx.example>"),
    };
    assert_eq!(
        auth_request(Hook::AuthCramMd5, cram),
        [
            "login_mechanism cram-md5",
            "login_user bob",
            "login_digest 0123abcd",
            "login_ticket <1.2@mx.example>"
        ]
    );
}
