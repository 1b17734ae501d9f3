//! The table against plugins/README.md ("The reply each verdict gives"), which plugin
//! authors read: every code, every "close" and every default text there must be what
//! the session does.

use super::*;
use crate::plugin::{Outcome, Verdict};

const README: &str = include_str!("../../../plugins/README.md");

/// The rows of the markdown table whose header line starts with `header`.
fn table(header: &str) -> Vec<Vec<String>> {
    let mut lines = README.lines().skip_while(|l| !l.starts_with(header)).skip(2);
    let mut rows = Vec::new();
    for line in lines.by_ref() {
        let Some(inner) = line.strip_prefix('|').and_then(|l| l.strip_suffix('|')) else {
            break;
        };
        rows.push(inner.split('|').map(|c| c.trim().replace("**", "")).collect());
    }
    assert!(!rows.is_empty(), "no table {header:?} in plugins/README.md");
    rows
}

fn row_of(name: &str) -> Option<&'static Row> {
    let hook = Hook::from_name(name)?;
    rows().into_iter().find(|r| r.hook == hook)
}

const VERDICTS: [Verdict; 6] = [
    Verdict::Ok,
    Verdict::Declined,
    Verdict::Deny,
    Verdict::DenySoft,
    Verdict::DenyDisconnect,
    Verdict::DenySoftDisconnect,
];

/// A cell as the README writes it: the code, ` close` when the connection closes; `-` or
/// `queue` for a command that goes on without a reply of its own.
fn shown(act: &Act) -> Vec<String> {
    match act {
        Act::Go(0) => vec!["-".into(), "queue".into()],
        Act::Go(code) => vec![code.to_string()],
        Act::Quiet => vec![String::new()],
        Act::Say { code, then, .. } => {
            let closes = matches!(
                then,
                Then::Close | Then::CloseAs(_) | Then::RefuseAndClose | Then::FailAndClose
            );
            vec![if closes {
                format!("{code} close")
            } else {
                code.to_string()
            }]
        }
    }
}

#[test]
fn every_code_and_close_is_the_readmes() {
    let mut seen = Vec::new();
    for cells in table("| Hook | OK | DECLINED |") {
        for name in cells[0].split(", ").filter(|n| *n != "auth-*") {
            let row = row_of(name).unwrap_or_else(|| panic!("no row for {name}"));
            seen.push(row.hook);
            for (verdict, readme) in VERDICTS.iter().zip(&cells[1..]) {
                let ours = shown(row.act(*verdict));
                assert!(
                    ours.contains(readme),
                    "{name} {verdict}: README {readme:?}, table {ours:?}"
                );
            }
        }
    }
    for row in rows() {
        assert!(
            seen.contains(&row.hook),
            "{} is not in the README's table",
            row.hook
        );
    }
}

#[test]
fn done_sends_nothing_but_for_auth() {
    for row in rows() {
        if row.hook == Hook::Auth {
            assert_eq!(row.done, row.deny, "AUTH: DONE counts as a failure");
        } else {
            assert!(matches!(row.done, Act::Quiet | Act::Go(0)), "{}", row.hook);
        }
    }
}

/// One line of the README's texts table.
struct TextLine {
    hooks: Vec<Hook>,
    codes: Vec<u16>,
    verdict: Option<Verdict>,
    statuses: Vec<String>,
    texts: Vec<String>,
}

fn text_lines() -> Vec<TextLine> {
    table("| Hook, reply | Code | Default text |")
        .into_iter()
        .map(|cells| {
            let (names, rest) = cells[0].split_once(' ').unwrap_or((&cells[0], ""));
            let verdict = rest
                .split_once('(')
                .and_then(|(_, v)| Verdict::from_name(v.trim_end_matches(')')));
            TextLine {
                hooks: names.split('/').filter_map(Hook::from_name).collect(),
                codes: rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|n| n.parse().ok())
                    .collect(),
                verdict,
                statuses: cells[1]
                    .split([',', '/'])
                    .map(|s| s.trim().to_string())
                    .filter(|s| s != "none")
                    .collect(),
                texts: cells[2]
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .map(str::to_string)
                    .collect(),
            }
        })
        .collect()
}

/// Does a README text line cover this cell?
fn covers(line: &TextLine, hook: Hook, verdict: Verdict, code: u16) -> bool {
    line.hooks.contains(&hook) && line.codes.contains(&code) && line.verdict.is_none_or(|v| v == verdict)
}

#[test]
fn every_default_text_and_status_is_the_readmes() {
    let lines = text_lines();
    for row in rows().into_iter().filter(|r| r.hook != Hook::Auth) {
        for verdict in VERDICTS {
            let Act::Say {
                code, status, text, ..
            } = row.act(verdict)
            else {
                continue;
            };
            // The most specific README line: one naming the verdict, else any.
            let line = lines
                .iter()
                .filter(|l| covers(l, row.hook, verdict, *code))
                .max_by_key(|l| l.verdict.is_some())
                .unwrap_or_else(|| panic!("README names no text for {} {code} ({verdict})", row.hook));
            let status = status.as_str();
            assert!(
                line.statuses.iter().any(|s| s == status),
                "{} {code}: status {status}, README {:?}",
                row.hook,
                line.statuses
            );
            let text = text.as_str();
            if !line.texts.is_empty() {
                assert!(
                    line.texts.iter().any(|t| text.ends_with(t.as_str())),
                    "{} {code}: text {text:?}, README {:?}",
                    row.hook,
                    line.texts
                );
            }
        }
    }
}

#[test]
fn auth_failures_are_the_readmes() {
    let prose = README.split_whitespace().collect::<Vec<_>>().join(" ");
    for verdict in VERDICTS {
        if let Act::Say {
            code,
            status,
            text: Text::Fixed(text),
            ..
        } = AUTH.act(verdict)
        {
            let quoted = format!("`{code} {} {}`", status.as_str(), text.as_str());
            assert!(prose.contains(&quoted), "{quoted} is not in plugins/README.md");
        }
    }
}

#[test]
fn answers_fill_in_the_subject_and_take_the_plugins_text() {
    let out = Outcome::new(Verdict::Deny);
    let Answer::Reply(reply, Then::Stay) = answer(&MAIL, out, "<a@b.example>") else {
        panic!("MAIL DENY is a reply");
    };
    assert_eq!(reply.to_wire(), "550 5.7.1 <a@b.example>, denied\r\n");
    let out = Outcome::with(Verdict::DenySoft, "4.7.0 come back later");
    let Answer::Reply(reply, Then::Stay) = answer(&RCPT, out, "") else {
        panic!("RCPT DENYSOFT is a reply");
    };
    assert_eq!(reply.to_wire(), "450 4.7.0 come back later\r\n");
    let out = Outcome::with(Verdict::Declined, "ignored");
    let Answer::Reply(reply, _) = answer(&RCPT, out, "") else {
        panic!("RCPT DECLINED is a reply");
    };
    assert_eq!(
        reply.to_wire(),
        "450 4.7.1 No plugin decided if relaying is allowed\r\n"
    );
    assert!(matches!(answer(&DATA, Outcome::ok(), ""), Answer::Go(_)));
    assert!(matches!(
        answer(&DATA, Outcome::new(Verdict::Done), ""),
        Answer::Quiet
    ));
}

#[test]
fn help_names_this_version() {
    assert!(HELP_TEXT.starts_with(&format!("This is qpsmtpd-rs {}\n", crate::VERSION)));
}
