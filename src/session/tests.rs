//! The session on its own, driven through [`Session::step`] with plugins made for the
//! test: what it asks the driver for and what it answers.

use super::*;
use crate::plugin::testing::spec;
use crate::plugin::{Context, Plugin};

/// A plugin that offers `offers` and answers `DECLINED` to nothing.
struct Offering(Offers);

impl Plugin for Offering {
    fn hooks(&self) -> Vec<Hook> {
        Vec::new()
    }

    fn run(&self, _hook: Hook, _cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        Outcome::declined()
    }

    fn offers(&self) -> Offers {
        self.0.clone()
    }
}

/// A session with these plugins, a client at 192.0.2.1, our name `mx.example`.
pub(super) fn session(plugins: Vec<Box<dyn Plugin>>) -> Session {
    let mut chain = Chain::new();
    for (i, plugin) in plugins.into_iter().enumerate() {
        chain.push(spec(&format!("test:{i}"), &[]), plugin);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("me"), "mx.example\n").unwrap();
    let config = Config::open(dir.path(), None).unwrap();
    Session::new(Setup {
        conn: Connection::new("1", "192.0.2.1"),
        config,
        chain,
        log: Logger::silent("1"),
    })
    .unwrap()
}

/// What the session has queued to send, as text.
pub(super) fn sent(s: &mut Session) -> String {
    let mut out = Vec::new();
    s.output(&mut out, b"");
    String::from_utf8(out).unwrap()
}

#[test]
fn ehlo_lists_the_keywords_plugins_offer_once_each() {
    let keywords = |k: &[&str]| Offers {
        ehlo: k.iter().map(|k| k.to_string()).collect(),
        ..Offers::default()
    };
    let mut s = session(vec![
        Box::new(Offering(keywords(&["XCLIENT NAME ADDR", "X-ONE"]))),
        Box::new(Offering(keywords(&["X-ONE", "PIPELINING"]))),
    ]);
    s.step(Input::Connected(Opening::default()));
    assert!(sent(&mut s).starts_with("220 mx.example ESMTP"));
    s.step(Input::Line(b"EHLO client.example"));
    let reply = sent(&mut s);
    assert!(
        reply.ends_with("250-SMTPUTF8\r\n250-XCLIENT NAME ADDR\r\n250 X-ONE\r\n"),
        "{reply}"
    );
    assert_eq!(reply.matches("PIPELINING").count(), 1, "{reply}");
    s.step(Input::Line(b"HELO client.example"));
    assert!(!sent(&mut s).contains("X-ONE"), "HELO lists no keywords");
}

#[test]
fn a_greeting_wait_comes_before_the_connect_hooks_and_greeting() {
    let wait = std::time::Duration::from_millis(300);
    let offers = Offers {
        greeting_wait: Some(wait),
        ..Offers::default()
    };
    let mut s = session(vec![Box::new(Offering(offers))]);
    let want = s.step(Input::Connected(Opening::default()));
    assert!(
        matches!(want, Want::Quiet { timeout } if timeout == wait),
        "{want:?}"
    );
    assert_eq!(sent(&mut s), "", "no greeting before the wait is over");
    let want = s.step(Input::Talked(true));
    assert!(matches!(want, Want::Command { .. }), "{want:?}");
    assert!(sent(&mut s).starts_with("220 mx.example ESMTP"));
    assert_eq!(
        s.conn.early_input, None,
        "the finding is for the hooks after the wait"
    );
    // A stray answer later changes nothing.
    s.step(Input::Talked(true));
    s.step(Input::Line(b"HELO client.example"));
    assert!(sent(&mut s).starts_with("250 mx.example"));
}

#[test]
fn a_relay_client_is_not_kept_waiting() {
    let offers = Offers {
        greeting_wait: Some(std::time::Duration::from_secs(5)),
        data_wait: Some(std::time::Duration::from_secs(5)),
        ..Offers::default()
    };
    let mut s = session(vec![Box::new(Offering(offers))]);
    s.conn.relay_client = true;
    let want = s.step(Input::Connected(Opening::default()));
    assert!(matches!(want, Want::Command { .. }), "{want:?}");
    assert!(sent(&mut s).starts_with("220 "));
}
