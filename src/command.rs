//! Command lines: splitting off the verb, and qpsmtpd's MAIL/RCPT argument parser.
//!
//! Both are pure functions over one line (without its CRLF), tested with tables of what
//! qpsmtpd's `Qpsmtpd::SMTP::dispatch` and `Qpsmtpd::Command::parse` do.

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

/// Why a command line is refused before its verb is acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    /// A control character other than tab (NUL, a bare CR, DEL, a C1 control) or a Unicode
    /// line separator: no SMTP grammar allows one, and each is a way to cut a line short
    /// downstream (a qmail-queue envelope entry, an environment variable, a header field).
    Control,
    /// Bytes that are not UTF-8: addresses and domains are ASCII or, with SMTPUTF8, UTF-8
    /// (RFC 6531 §3.3); anything else would be stored as U+FFFD.
    Utf8,
}

impl LineError {
    /// The text of the `501` reply.
    pub fn text(self) -> &'static str {
        match self {
            LineError::Control => "Syntax error: control characters are not allowed in commands",
            LineError::Utf8 => "Syntax error: invalid UTF-8 in command",
        }
    }
}

/// Checks a command line's bytes: UTF-8, no control character but tab (README Differences
/// 62).
pub fn check_line(raw: &[u8]) -> Result<&str, LineError> {
    if raw.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(LineError::Control);
    }
    let line = std::str::from_utf8(raw).map_err(|_| LineError::Utf8)?;
    if line.chars().any(|c| c != '\t' && crate::address::forbidden(c)) {
        return Err(LineError::Control);
    }
    Ok(line)
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

/// Parses `FROM:<path> [PARAMS]` / `TO:<path> [PARAMS]`; `Err` carries the text of the
/// `501` reply.
///
/// A bracketed path ends at the first `>` outside a quoted string (so a quoted local part
/// may hold spaces and `>`), and the parameters follow it after blanks. An argument
/// without brackets (for `dont_require_anglebrackets`) is split as qpsmtpd's `parse_mail`
/// did: parameters are peeled off the end. A missing address is an error for MAIL too
/// (qpsmtpd took a bare `MAIL FROM:` as the null sender: README Differences 61).
pub fn parse_path(cmd: PathCommand, line: &str) -> Result<PathArgs, &'static str> {
    let prefix = match cmd {
        PathCommand::Mail => "from:",
        PathCommand::Rcpt => "to:",
    };
    let head = line.get(..prefix.len());
    if !head.is_some_and(|h| h.eq_ignore_ascii_case(prefix)) {
        return Err("Syntax error in command");
    }
    let rest = line[prefix.len()..].trim_matches(is_blank);
    if rest.is_empty() {
        return Err("Syntax error in address");
    }
    if rest.starts_with('<') {
        return bracketed(rest);
    }
    let mut rest = rest;
    let mut params = Vec::new();
    while let Some((before, param)) = peel_param(rest) {
        params.push(param.to_string());
        rest = before;
    }
    params.reverse();
    if at_then_space(rest) {
        return Err("Syntax error in parameters");
    }
    Ok(PathArgs {
        addr: rest.to_string(),
        params,
    })
}

/// `<path>` and the blank-separated parameters after it. Anything glued to the `>` (or a
/// path that never closes) stays part of the address, which then fails to parse.
fn bracketed(rest: &str) -> Result<PathArgs, &'static str> {
    let whole = || PathArgs {
        addr: rest.to_string(),
        params: Vec::new(),
    };
    let Some(end) = path_end(rest) else {
        return Ok(whole());
    };
    let (addr, tail) = rest.split_at(end);
    if !tail.is_empty() && !tail.starts_with(is_blank) {
        return Ok(whole());
    }
    let params: Vec<String> = tail
        .split(is_blank)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    if !params.iter().all(|p| is_param(p)) {
        return Err("Syntax error in parameters");
    }
    Ok(PathArgs {
        addr: addr.to_string(),
        params,
    })
}

/// The length of the `<...>` at the start of `s`: up to the first `>` outside a quoted
/// string (where `\` escapes the next character).
fn path_end(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
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

    /// qpsmtpd's table (its `Qpsmtpd::Command` tests), with our fixes marked.
    #[test]
    fn mail_rcpt_arguments() {
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
            // qpsmtpd: the null sender.
            (Mail, "FROM:", Err("Syntax error in address")),
            (Mail, "FROM:a@b.c", ok("a@b.c", &[])),
            (Mail, "FROM:a@b.c SIZE=1", ok("a@b.c", &["SIZE=1"])),
            (Mail, "FROM:<a b@c.d>", ok("<a b@c.d>", &[])),
            (
                Mail,
                "FROM:<\"a b\"@c.d> SIZE=1",
                ok("<\"a b\"@c.d>", &["SIZE=1"]),
            ),
            (Mail, "FROM:<\"a>b\"@c.d>", ok("<\"a>b\"@c.d>", &[])),
            (Mail, "FROM:<\"a\\\"> b\"@c.d>", ok("<\"a\\\"> b\"@c.d>", &[])),
            // `\` escapes only inside a quoted string: outside one, `\>` closes the path.
            (Mail, "FROM:<a\\>b@c.d> SIZE=1", ok("<a\\>b@c.d> SIZE=1", &[])),
            // qpsmtpd: "Syntax error in parameters"; now the address does not parse.
            (Mail, "FROM:<a@b.c d>", ok("<a@b.c d>", &[])),
            (Mail, "FROM:a@b.c d", ok("a@b.c", &["d"])),
            (Mail, "FROM:a@b.c d=", Err("Syntax error in parameters")),
            (Mail, "FROM:<a@b.c>SIZE=1", ok("<a@b.c>SIZE=1", &[])),
            (Mail, "FROM:<a@b.c", ok("<a@b.c", &[])),
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

    #[test]
    fn line_bytes() {
        assert_eq!(
            check_line(b"MAIL FROM:<a@b.c>\tSIZE=1"),
            Ok("MAIL FROM:<a@b.c>\tSIZE=1")
        );
        assert_eq!(
            check_line("RCPT TO:<zoë@b.c>".as_bytes()),
            Ok("RCPT TO:<zoë@b.c>")
        );
        for bad in [
            &b"RCPT TO:<x\0Tevil@evil.com\0Ty@example.org>"[..],
            b"RCPT TO:<b\rX-Injected: yes@example.org>",
            b"HELO a\x1b[2J",
            b"NOOP\x7f",
            "RCPT TO:<a\u{85}b@c.d>".as_bytes(),
            "RCPT TO:<a\u{2028}b@c.d>".as_bytes(),
        ] {
            assert_eq!(check_line(bad), Err(LineError::Control), "{bad:?}");
        }
        assert_eq!(check_line(b"RCPT TO:<j\xfcrgen@b.c>"), Err(LineError::Utf8));
    }
}
