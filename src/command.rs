//! Command lines: splitting off the verb, and qpsmtpd's MAIL/RCPT argument parser.
//!
//! Both are pure functions over one line (without its CRLF), tested with tables taken
//! from the reference (§2 and §3.10).

/// The verbs the core implements; anything else goes to the `unrecognized_command` hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// HELO
    Helo,
    /// EHLO
    Ehlo,
    /// MAIL
    Mail,
    /// RCPT
    Rcpt,
    /// DATA
    Data,
    /// RSET
    Rset,
    /// NOOP
    Noop,
    /// VRFY
    Vrfy,
    /// HELP
    Help,
    /// QUIT
    Quit,
    /// AUTH (only known once an EHLO reply offered it)
    Auth,
    /// STARTTLS (only known while it is offered)
    Starttls,
}

impl Verb {
    fn from_lowercase(verb: &str) -> Option<Verb> {
        Some(match verb {
            "helo" => Verb::Helo,
            "ehlo" => Verb::Ehlo,
            "mail" => Verb::Mail,
            "rcpt" => Verb::Rcpt,
            "data" => Verb::Data,
            "rset" => Verb::Rset,
            "noop" => Verb::Noop,
            "vrfy" => Verb::Vrfy,
            "help" => Verb::Help,
            "quit" => Verb::Quit,
            "auth" => Verb::Auth,
            "starttls" => Verb::Starttls,
            _ => return None,
        })
    }
}

/// A command line split as qpsmtpd splits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine<'a> {
    /// The verb, lower-cased (`""` for a line that starts with a space or is empty).
    pub verb: String,
    /// The known verb, if it is one.
    pub known: Option<Verb>,
    /// Everything after the first run of spaces (`""` if none).
    pub rest: &'a str,
}

/// Splits a line on the first run of spaces (only spaces: `MAIL\tFROM:` is one unknown
/// verb), lower-cases the verb and looks it up. Verbs longer than 12 characters or with
/// non-word characters are never known (qpsmtpd's `/^(\w{1,12})$/`).
pub fn split(line: &str) -> CommandLine<'_> {
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i..].trim_start_matches(' ')),
        None => (line, ""),
    };
    let verb = verb.to_lowercase();
    let word = !verb.is_empty()
        && verb.chars().count() <= 12
        && verb.chars().all(|c| c.is_alphanumeric() || c == '_');
    let known = if word { Verb::from_lowercase(&verb) } else { None };
    CommandLine { verb, known, rest }
}

/// The result of parsing `FROM:<addr> PARAMS` / `TO:<addr> PARAMS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathArgs {
    /// The address as the client wrote it (normally `<...>`).
    pub addr: String,
    /// `KEY[=VALUE]` parameters in the order given.
    pub params: Vec<String>,
}

/// Which of the two path commands is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathCommand {
    /// MAIL FROM:
    Mail,
    /// RCPT TO:
    Rcpt,
}

/// qpsmtpd's `parse_mail` / `parse_rcpt` with `_get_mail_params`; `Err` carries the text
/// of the `501` reply.
pub fn parse_path(cmd: PathCommand, line: &str) -> Result<PathArgs, &'static str> {
    let prefix = match cmd {
        PathCommand::Mail => "from:",
        PathCommand::Rcpt => "to:",
    };
    let head = line.get(..prefix.len());
    if !head.is_some_and(|h| h.eq_ignore_ascii_case(prefix)) {
        return Err("Syntax error in command");
    }
    let mut rest = line[prefix.len()..].trim_matches(|c: char| c.is_ascii_whitespace());
    let mut params = Vec::new();
    while let Some((before, param)) = peel_param(rest) {
        params.push(param.to_string());
        rest = before;
    }
    params.reverse();
    if !rest.is_empty() {
        if at_then_space(rest) {
            return Err("Syntax error in parameters");
        }
        return Ok(PathArgs {
            addr: rest.to_string(),
            params,
        });
    }
    let first = if params.is_empty() {
        None
    } else {
        Some(params.remove(0))
    };
    let addr = match (cmd, first) {
        (PathCommand::Mail, None) => "<>".to_string(),
        (PathCommand::Mail, Some(a)) => a,
        (PathCommand::Rcpt, None) => return Err("Syntax error in address"),
        (PathCommand::Rcpt, Some(a)) => {
            if !a.contains('@') && !a.eq_ignore_ascii_case("postmaster") && !a.eq_ignore_ascii_case("abuse") {
                return Err("Syntax error in address");
            }
            a
        }
    };
    Ok(PathArgs { addr, params })
}

/// Peels `\s+KEY[=VALUE]` off the end: KEY is `[A-Za-z0-9][A-Za-z0-9-]*`, VALUE has no
/// `=`, space or control character.
fn peel_param(s: &str) -> Option<(&str, &str)> {
    let start = s.rfind(|c: char| c.is_ascii_whitespace())?;
    let param = &s[start + 1..];
    if !is_param(param) {
        return None;
    }
    Some((
        s[..start].trim_end_matches(|c: char| c.is_ascii_whitespace()),
        param,
    ))
}

fn is_param(p: &str) -> bool {
    let (key, value) = match p.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (p, None),
    };
    let mut key_chars = key.chars();
    let key_ok = key_chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && key_chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
    let value_ok =
        value.is_none_or(|v| !v.is_empty() && v.chars().all(|c| c != '=' && c != ' ' && (c as u32) >= 0x20));
    key_ok && value_ok
}

/// qpsmtpd's `/\@.*\s/`: whitespace somewhere after an `@`.
fn at_then_space(s: &str) -> bool {
    s.find('@')
        .is_some_and(|i| s[i..].chars().any(|c| c.is_ascii_whitespace()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verb_split() {
        let c = split("MAIL FROM:<a@b>");
        assert_eq!(
            (c.verb.as_str(), c.known, c.rest),
            ("mail", Some(Verb::Mail), "FROM:<a@b>")
        );
        let c = split("mail   FROM: <a@b>");
        assert_eq!(c.rest, "FROM: <a@b>");
        let c = split("MAIL\tFROM:<a@b>");
        assert_eq!((c.verb.as_str(), c.known), ("mail\tfrom:<a@b>", None));
        let c = split(" NOOP");
        assert_eq!((c.verb.as_str(), c.known, c.rest), ("", None, "NOOP"));
        assert_eq!(split("").verb, "");
        assert_eq!(split("QUIT").known, Some(Verb::Quit));
        assert_eq!(split("abcdefghijklmnop").known, None);
    }

    fn ok(addr: &str, params: &[&str]) -> Result<PathArgs, &'static str> {
        Ok(PathArgs {
            addr: addr.to_string(),
            params: params.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Reference §3.10, "[verified table]".
    #[test]
    fn qpsmtpd_mail_rcpt_table() {
        use PathCommand::{Mail, Rcpt};
        let cases = [
            (Mail, "FROM:<a@b.c>", ok("<a@b.c>", &[])),
            (Mail, "from:<a@b.c>", ok("<a@b.c>", &[])),
            (Mail, "FROM: <a@b.c>", ok("<a@b.c>", &[])),
            (Mail, "FROM:  <a@b.c>  ", ok("<a@b.c>", &[])),
            (Mail, "FROM :<a@b.c>", Err("Syntax error in command")),
            (
                Mail,
                "FROM:<a@b.c> SIZE=100 BODY=8BITMIME",
                ok("<a@b.c>", &["SIZE=100", "BODY=8BITMIME"]),
            ),
            (
                Mail,
                "FROM:<a@b.c> size=100 FOO",
                ok("<a@b.c>", &["size=100", "FOO"]),
            ),
            (Mail, "FROM:<a@b.c> =x", Err("Syntax error in parameters")),
            (Mail, "FROM:<a@b.c> SIZE==1", Err("Syntax error in parameters")),
            (Mail, "FROM:", ok("<>", &[])),
            (Mail, "FROM:a@b.c", ok("a@b.c", &[])),
            (Mail, "FROM:<a b@c.d>", ok("<a b@c.d>", &[])),
            (Mail, "FROM:<a@b.c d>", Err("Syntax error in parameters")),
            (Mail, "FROM:<a@b.c>SIZE=1", ok("<a@b.c>SIZE=1", &[])),
            (Mail, "FROM:<a@b.c>\tSIZE=1", ok("<a@b.c>", &["SIZE=1"])),
            (Rcpt, "TO:", Err("Syntax error in address")),
            (Rcpt, "TO:<>", ok("<>", &[])),
            (Rcpt, "TO:postmaster", ok("postmaster", &[])),
            (Rcpt, "TO:root", ok("root", &[])),
            (
                Rcpt,
                "TO:<a@b.c> ORCPT=rfc822;a@b.c",
                ok("<a@b.c>", &["ORCPT=rfc822;a@b.c"]),
            ),
            (Rcpt, "TO:post master", ok("post", &["master"])),
            (Rcpt, "FROM:<a@b.c>", Err("Syntax error in command")),
        ];
        for (cmd, line, want) in cases {
            assert_eq!(parse_path(cmd, line), want, "{line}");
        }
    }
}
