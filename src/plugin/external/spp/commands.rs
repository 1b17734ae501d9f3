//! What a qmail-spp plugin prints: one command per line, a letter and its payload
//! (qmail-spp's `spp.c`). Reading stops at the first of `A`, `N`, `O`, `D`, `E`, `R`.

use crate::plugin::Verdict;

/// The commands that matter after a plugin ran, in the order it printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    /// `H<header>`: header lines for the message.
    pub headers: Vec<String>,
    /// `C<addr>`: the new address for the current MAIL or RCPT.
    pub change: Option<String>,
    /// `S<var>=<value>` (Some) and `U<var>` (None), in order.
    pub env: Vec<(String, Option<String>)>,
    /// `LM`, `LR`, `LD`: errors deferred to the next MAIL, RCPT or DATA.
    pub deferred: Vec<(char, String)>,
    /// `P<msg>`: lines printed to the client.
    pub printed: Vec<String>,
    /// The command that ended the list, if any.
    pub last: Option<Last>,
}

/// The commands that end a section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Last {
    /// `A`: accept, and run no more qmail-spp plugins in this connection.
    Accept,
    /// `N`: accept; the remaining plugins of this section are skipped, qmail's own
    /// checks (here: the rest of the chain) still apply.
    Next,
    /// `O`: like `N`, and the rest of the chain is skipped too.
    Override,
    /// `E<msg>`: refuse the command with this reply.
    Error(String),
    /// `R<msg>`: reply and drop the connection.
    Drop(String),
    /// `D`: drop the connection without a word.
    DropSilently,
}

/// Reads a plugin's output lines.
pub fn parse(lines: &[String]) -> Printed {
    let mut p = Printed::default();
    for line in lines {
        let mut chars = line.chars();
        let Some(letter) = chars.next() else {
            continue;
        };
        let rest = chars.as_str();
        // qmail-spp skips lines of one character only for data commands; the ending
        // commands need no payload.
        match letter {
            'H' if !rest.is_empty() => p.headers.push(rest.to_string()),
            'C' if !rest.is_empty() => p.change = Some(rest.to_string()),
            'S' if !rest.is_empty() => {
                let (name, value) = rest.split_once('=').unwrap_or((rest, ""));
                p.env.push((name.to_string(), Some(value.to_string())));
            }
            'U' if !rest.is_empty() => p.env.push((rest.to_string(), None)),
            'P' => p.printed.push(rest.to_string()),
            'L' => {
                let mut r = rest.chars();
                if let Some(which @ ('M' | 'R' | 'D')) = r.next() {
                    p.deferred.push((which, r.as_str().to_string()));
                }
            }
            'A' => p.last = Some(Last::Accept),
            'N' => p.last = Some(Last::Next),
            'O' => p.last = Some(Last::Override),
            'D' => p.last = Some(Last::DropSilently),
            'E' => p.last = Some(Last::Error(rest.to_string())),
            'R' => p.last = Some(Last::Drop(rest.to_string())),
            _ => {}
        }
        if p.last.is_some() {
            break;
        }
    }
    p
}

/// An SMTP reply a plugin wrote (`550 5.1.1 no such user`, or `550-...` for printed
/// lines): the class digit and the text after the code.
pub fn reply_text(line: &str) -> Option<(u8, &str)> {
    let code = line.get(..3)?;
    let class = code.bytes().next()?;
    if !code.bytes().all(|b| b.is_ascii_digit()) || !(b'2'..=b'5').contains(&class) {
        return None;
    }
    let text = match line.as_bytes().get(3) {
        None => "",
        Some(b' ' | b'-') => &line[4..],
        Some(_) => return None,
    };
    Some((class - b'0', text))
}

/// The verdict for a refusal: a 5xx code refuses for good, a 4xx code for now.
pub fn refusal(class: u8, disconnect: bool) -> Option<Verdict> {
    match (class, disconnect) {
        (5, false) => Some(Verdict::Deny),
        (4, false) => Some(Verdict::DenySoft),
        (5, true) => Some(Verdict::DenyDisconnect),
        (4, true) => Some(Verdict::DenySoftDisconnect),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    #[test]
    fn commands_until_the_last_one() {
        let p = parse(&lines(
            "HX-Spp: yes\nSGREY=1\nUOLD\nLR451 try later\nP550-first\nCnew@example.org\nE550 5.1.1 no\nHX-After: no",
        ));
        assert_eq!(p.headers, vec!["X-Spp: yes"]);
        assert_eq!(
            p.env,
            vec![("GREY".into(), Some("1".into())), ("OLD".into(), None)]
        );
        assert_eq!(p.deferred, vec![('R', "451 try later".into())]);
        assert_eq!(p.printed, vec!["550-first"]);
        assert_eq!(p.change.as_deref(), Some("new@example.org"));
        assert_eq!(p.last, Some(Last::Error("550 5.1.1 no".into())));
        assert_eq!(parse(&lines("junk\n\nN")).last, Some(Last::Next));
        assert_eq!(parse(&lines("")).last, None);
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_text("550 5.1.1 no"), Some((5, "5.1.1 no")));
        assert_eq!(reply_text("451-more"), Some((4, "more")));
        assert_eq!(reply_text("421"), Some((4, "")));
        assert_eq!(reply_text("sorry"), None);
        assert_eq!(reply_text("55x no"), None);
        assert_eq!(reply_text("650 no"), None);
        assert_eq!(refusal(2, false), None);
    }
}
