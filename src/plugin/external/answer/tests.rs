use super::*;

fn lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn verdicts_and_messages() {
    let a = parse(&lines("DENY 5.1.1 No such user")).unwrap();
    assert_eq!(a.outcome, Outcome::with(Verdict::Deny, "5.1.1 No such user"));
    let a = parse(&lines("\nDECLINED\n")).unwrap();
    assert_eq!(a.outcome, Outcome::declined());
    let a = parse(&lines("DENY-5.5.3 Too many\nDENY 5.5.3 (number 3)")).unwrap();
    // The repeated code stays in the message; Reply::from_plugin shows it once.
    assert_eq!(a.outcome.msg, vec!["5.5.3 Too many", "5.5.3 (number 3)"]);
    let a = parse(&lines("OK-<a@b>\nOK SIZE=10")).unwrap();
    assert_eq!(a.outcome.msg, vec!["<a@b>", "SIZE=10"]);
    assert_eq!(
        parse(&lines("denyhard bye")).unwrap().outcome.verdict,
        Verdict::DenyDisconnect
    );
    assert_eq!(parse(&lines("OK\nmore")).unwrap().trailing, 1);
    assert!(parse(&lines("DENY-a\nOK b")).is_err());
    assert!(parse(&lines("DENY-a")).is_err());
    assert!(parse(&lines("")).unwrap_err().contains("no answer"));
    assert!(
        parse(&lines("hello world"))
            .unwrap_err()
            .contains("not understood")
    );
    assert!(parse(&lines("OKAY")).is_err());
    assert!(is_final("DENYSOFT_DISCONNECT later") && is_final("OK") && !is_final("OK-x"));
    assert!(!is_final("note OK x") && !is_final("OKAY"));
}

#[test]
fn coprocess_lines_carry_the_request_id() {
    assert!(ends_tagged("7 DECLINED", 7) && !ends_tagged("7 note a b", 7));
    assert!(!ends_tagged("", 7) && !ends_tagged("7 DENY-more", 7));
    // Out of step: stop reading, untag says why.
    assert!(ends_tagged("6 OK", 7) && ends_tagged("OK", 7) && ends_tagged("07 OK", 7));
    assert_eq!(
        untag(&lines("7 note a b\n\n7 DENY 5.7.1 no"), 7).unwrap(),
        vec!["note a b", "DENY 5.7.1 no"]
    );
    assert!(untag(&lines("6 OK"), 7).unwrap_err().contains("late or doubled"));
    assert!(
        untag(&lines("OK"), 7)
            .unwrap_err()
            .contains("without the request id")
    );
    assert!(untag(&lines("8 OK"), 7).unwrap_err().contains("request 8"));
    assert!(untag(&lines("07 OK"), 7).is_err());
}

#[test]
fn actions() {
    let a = parse(&lines(
        "note spam\\x20score 5\\n6\ntxn_note_delete x\nheader_add X-Check: yes \\\\o/\n\
         header_prepend X-Top:\nheader_delete Subject\nrelay_client 1\nlog LOGINFO hi\n\
         reply 250 fine\nDONE",
    ))
    .unwrap();
    assert_eq!(
        a.actions,
        vec![
            Action::Note {
                txn: false,
                name: "spam score".into(),
                value: Some("5\n6".into())
            },
            Action::Note {
                txn: true,
                name: "x".into(),
                value: None
            },
            Action::HeaderAdd {
                top: false,
                name: "X-Check".into(),
                value: "yes \\o/".into()
            },
            Action::HeaderAdd {
                top: true,
                name: "X-Top".into(),
                value: "".into()
            },
            Action::HeaderDelete("Subject".into()),
            Action::RelayClient(true),
            Action::Log(Level::Info, "hi".into()),
            Action::Reply(250, "fine".into()),
        ]
    );
    for bad in [
        "header_add Bad Name: x",
        "header_add nocolon",
        "relay_client yes",
        "reply 99 x",
        "log LOUD x",
        "note",
    ] {
        assert!(parse(&lines(&format!("{bad}\nOK"))).is_err(), "{bad}");
    }
}
