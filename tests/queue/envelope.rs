//! The envelope property: for any session the server accepts, each of the seven queue
//! backends' envelope, read back by that backend's own rules, names exactly the
//! recipients the client was told `250` for (and the sender it was told `250` for), a
//! client that may not relay reaches only our domain, and the stored headers gain no line
//! break.
//!
//! Sessions are generated (proptest) from hostile pieces: NUL, CR, tab, commas, quotes,
//! backslashes, `@ % !`, RFC 822 specials, U+0085, U+2028, bytes that are not UTF-8,
//! source routes, broken domains. Each runs through the binary once per backend:
//!
//! | backend | read back by |
//! |---|---|
//! | queue/qmail-queue | a stand-in that keeps fd 1; split at NUL as qmail-queue does |
//! | queue/sendmail, queue/postfix-queue | real Exim behind the sendmail interface (`-odq`), its queue listing |
//! | queue/exim-bsmtp | real Exim reading the batch (`-bS -odq`), its queue listing |
//! | queue/maildir | the file's `Return-Path` and `Delivered-To` fields |
//! | queue/smtp-forward, queue/lmtp | a loopback server's `MAIL FROM:` / `RCPT TO:` lines |
//!
//! What the client was told 250 for, and every line a backend wrote, is read with
//! [`read_path`] / [`read_mailbox`]: RFC 5321's grammar written out here on its own, not
//! the server's parser. Postfix's own sendmail is checked with fixed hostile cases in
//! postfix.rs (it needs a running instance). `PROPTEST_CASES` sets the number of sessions.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{Talk, cfg, files_in, read, root_or_skip};
use crate::support::{TestDir, binary_command, required, root};

/// A mailbox as a receiving server reads it: the local part's value and the domain,
/// lower-cased (domains are case-insensitive; local parts are not).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Mailbox {
    local: String,
    domain: String,
}

/// What one backend stored for one message.
#[derive(Debug, Default)]
struct Stored {
    sender: Option<Mailbox>,
    rcpts: BTreeSet<Mailbox>,
}

/// RFC 5322 `atext` and non-ASCII (RFC 6531); no specials, blanks or controls.
fn atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (!c.is_ascii() && !c.is_control())
}

/// `local@domain`: a dot-string or quoted-string local part. Controls and line
/// separators are never part of an address, quoted or not.
fn read_mailbox(s: &str) -> Result<Mailbox, String> {
    if s.chars()
        .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
    {
        return Err(format!("control character in {s:?}"));
    }
    let (local, rest) = if let Some(q) = s.strip_prefix('"') {
        let mut value = String::new();
        let mut it = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = it.next() {
            match c {
                '\\' => value.push(it.next().ok_or("dangling backslash")?.1),
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated quote in {s:?}"))?;
        (value, &q[end..])
    } else {
        let at = s.find('@').ok_or_else(|| format!("no @ in {s:?}"))?;
        let local = &s[..at];
        if !local.split('.').all(|a| !a.is_empty() && a.chars().all(atext)) {
            return Err(format!("not a dot-string: {local:?}"));
        }
        (local.to_string(), &s[at..])
    };
    let domain = rest
        .strip_prefix('@')
        .ok_or_else(|| format!("no @ after the local part in {s:?}"))?;
    if local.is_empty() || domain.is_empty() || domain.contains(['@', ' ', ',', '<', '>', '"', '(']) {
        return Err(format!("bad mailbox {s:?}"));
    }
    Ok(Mailbox {
        local,
        domain: domain.to_ascii_lowercase(),
    })
}

/// `<[@route,...:]mailbox>` or `<>` (`None`).
fn read_path(s: &str) -> Result<Option<Mailbox>, String> {
    let inner = s
        .strip_prefix('<')
        .and_then(|s| s.strip_suffix('>'))
        .ok_or_else(|| format!("no angle brackets: {s:?}"))?;
    if inner.is_empty() {
        return Ok(None);
    }
    let mailbox = if inner.starts_with('@') {
        // A source route ends at the first `:` outside an address literal.
        let mut depth = 0;
        let colon = inner
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                c == ':' && depth == 0
            })
            .ok_or("route without a colon")?
            .0;
        &inner[colon + 1..]
    } else {
        inner
    };
    read_mailbox(mailbox).map(Some)
}

/// The path at the start of a command argument (after `FROM:` / `TO:`): up to the first
/// `>` outside quotes; what follows must be empty or blank-separated parameters.
fn path_of(arg: &str) -> Result<&str, String> {
    let arg = arg.trim_start_matches(' ');
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in arg.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => {
                let rest = &arg[i + 1..];
                if !(rest.is_empty() || rest.starts_with(' ')) {
                    return Err(format!("junk after the path: {arg:?}"));
                }
                return Ok(&arg[..=i]);
            }
            _ => {}
        }
    }
    Err(format!("no path in {arg:?}"))
}

/// A command line as an SMTP server reads it: `MAIL FROM:<path> ...` / `RCPT TO:<path>`.
fn read_command(line: &[u8], verb: &str) -> Result<Option<Mailbox>, String> {
    let line = std::str::from_utf8(line).map_err(|_| format!("not UTF-8: {line:?}"))?;
    let line = line.strip_suffix("\r\n").unwrap_or(line);
    let head = line.get(..verb.len()).filter(|h| h.eq_ignore_ascii_case(verb));
    if head.is_none() {
        return Err(format!("not {verb}: {line:?}"));
    }
    read_path(path_of(&line[verb.len()..])?)
}

// ---- the sessions ----

/// One generated session.
#[derive(Debug, Clone)]
struct Case {
    /// RELAYCLIENT set: every domain is allowed.
    relay: bool,
    /// The argument after `MAIL FROM:`.
    mail: Vec<u8>,
    /// The arguments after `RCPT TO:`.
    rcpts: Vec<Vec<u8>>,
}

/// Atoms of a valid dot-string (`%` and `!` are routing from a client that may not relay).
const ATOMS: &[&[u8]] = &[
    b"alice",
    b"bob",
    b"x",
    b"T",
    b"a+tag",
    b"o'neil",
    b"x=y",
    b"_",
    b"%",
    b"!",
    b"z\xc3\xa9",
];

/// Pieces of a valid quoted string: specials, blanks and escapes a list parser cares about.
const QUOTED: &[&[u8]] = &[
    b"alice",
    b"bob",
    b" ",
    b",",
    b"@",
    b"<",
    b">",
    b"(",
    b")",
    b";",
    b":",
    b".",
    b"..",
    b"[",
    b"]",
    b"\\\"",
    b"\\\\",
    b"\\ ",
    b"\\a",
    b"evil@evil.example",
    b"Tevil@evil.example",
    b"\xc3\xa9",
];

/// Pieces an attacker would try anywhere: bytes no address may hold, and broken syntax.
const HOSTILE: &[&[u8]] = &[
    b"alice",
    b".",
    b"..",
    b"@",
    b",",
    b" ",
    b"\t",
    b"\0",
    b"\r",
    b"\"",
    b"\\",
    b"(",
    b")",
    b"<",
    b">",
    b";",
    b":",
    b"[",
    b"]",
    b"\0Tevil@evil.example\0",
    b"\rX-Injected: yes",
    b"\xc2\x85",
    b"\xe2\x80\xa8",
    b"\xff",
];

/// Domains other than `example.org` (ours), broken ones included.
const DOMAINS: &[&[u8]] = &[
    b"EXAMPLE.org",
    b"evil.example",
    b"[192.0.2.1]",
    b"[IPv6:2001:db8::1]",
    b"[999.0.0.1]",
    b"b\xc3\xbccher.example",
    b"example.org.",
    b"exa_mple.org",
    b"example.org,evil.example",
    b"example.org>evil.example",
    b"-x.example",
    b"",
];

const ROUTES: &[&[u8]] = &[b"@r.example:", b"@r.example,@[192.0.2.9]:", b"@r.example", b"@:"];

fn pieces(from: &'static [&'static [u8]], n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(from), n).prop_map(|p| p.concat())
}

fn local_part() -> impl Strategy<Value = Vec<u8>> {
    let quote = |p: Vec<u8>| [&b"\""[..], &p, b"\""].concat();
    prop_oneof![
        8 => prop::collection::vec(pieces(ATOMS, 1..3), 1..3).prop_map(|a| a.join(&b'.')),
        4 => pieces(QUOTED, 1..5).prop_map(quote),
        1 => pieces(HOSTILE, 1..4),
        1 => pieces(HOSTILE, 1..4).prop_map(quote),
    ]
}

fn path() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![6 => Just(&b""[..]), 1 => prop::sample::select(ROUTES)],
        local_part(),
        prop_oneof![4 => Just(&b"example.org"[..]), 1 => prop::sample::select(DOMAINS)],
        0..10u8,
    )
        .prop_map(|(route, local, domain, shape)| {
            let mailbox = [&local[..], b"@", domain].concat();
            match shape {
                0 => mailbox,
                1 => [&b" <"[..], route, &mailbox, b">"].concat(),
                2 => [&b"<"[..], route, &mailbox, b"> SIZE=10"].concat(),
                _ => [&b"<"[..], route, &mailbox, b">"].concat(),
            }
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        any::<bool>(),
        prop_oneof![4 => path(), 1 => Just(b"<>".to_vec())],
        any::<bool>(),
        prop::collection::vec(path(), 1..4),
    )
        .prop_map(|(relay, mail, smtputf8, rcpts)| Case {
            relay,
            mail: if smtputf8 {
                [&mail[..], b" SMTPUTF8"].concat()
            } else {
                mail
            },
            rcpts,
        })
}

const MESSAGE: &[u8] = b"From: a@example.net\nSubject: envelope\n\nbody line\n";

/// The replies a session got, and what it asked for.
struct Told {
    sender: Option<Result<Option<Mailbox>, String>>,
    rcpts: Vec<Result<Option<Mailbox>, String>>,
    queued: bool,
}

fn talk(backend: &Backend, case: &Case) -> Told {
    let mut cmd = binary_command(&backend.dir);
    cmd.envs(backend.env.iter().map(|(k, v)| (k, v)));
    if case.relay {
        cmd.env("RELAYCLIENT", "");
    }
    let mut t = Talk::start_with(&backend.dir, cmd);
    assert!(t.cmd("EHLO client.example").starts_with("250"));
    let mail_line = [&b"MAIL FROM:"[..], &case.mail, b"\r\n"].concat();
    let r = t.raw(&mail_line);
    let sender = r
        .starts_with("250")
        .then(|| read_command(&mail_line, "MAIL FROM:"));
    let mut rcpts = Vec::new();
    for arg in &case.rcpts {
        let line = [&b"RCPT TO:"[..], arg, b"\r\n"].concat();
        if t.raw(&line).starts_with("250") {
            rcpts.push(read_command(&line, "RCPT TO:"));
        }
    }
    let queued = sender.is_some() && !rcpts.is_empty() && t.data(MESSAGE).starts_with("250");
    t.quit();
    Told {
        sender,
        rcpts,
        queued,
    }
}

// ---- the backends ----

enum Kind {
    QmailQueue(PathBuf),
    Exim(PathBuf),
    Maildir(PathBuf),
    Hop(Arc<Mutex<Vec<Transaction>>>),
}

struct Backend {
    name: &'static str,
    dir: TestDir,
    env: Vec<(String, String)>,
    kind: Kind,
}

/// `MAIL FROM:` and `RCPT TO:` lines of a transaction a next hop took.
type Transaction = (Vec<u8>, Vec<Vec<u8>>);

fn config(plugin: &str) -> TestDir {
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", plugin),
        ("rcpthosts", "example.org"),
    ]))
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn exim_binary() -> Option<PathBuf> {
    let found = [
        root().join("target/exim/usr/sbin/exim4"),
        PathBuf::from("/usr/sbin/exim4"),
    ]
    .into_iter()
    .find(|p| p.is_file());
    assert!(
        found.is_some() || !required(),
        "exim4 is required (QPSMTPD_RS_REQUIRE_ALL=1); tests/run unpacks it"
    );
    found
}

/// A private Exim that only queues: its queue listing is how it read the envelope.
fn exim_backend(name: &'static str, exim: &Path, plugin: impl Fn(&Path) -> String) -> Backend {
    let work = TestDir::new(&[]);
    let t = work.path();
    std::fs::set_permissions(t, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::create_dir_all(t.join("spool")).unwrap();
    std::fs::create_dir_all(t.join("log")).unwrap();
    let conf = t.join("exim.conf");
    std::fs::write(
        &conf,
        format!(
            "exim_user = root\nexim_group = root\nnever_users =\nkeep_environment =\n\
             spool_directory = {0}/spool\nlog_file_path = {0}/log/%slog\n\
             primary_hostname = exim.example.net\ntrusted_users = root\n",
            t.display()
        ),
    )
    .unwrap();
    let wrapper = t.join("exim");
    executable(
        &wrapper,
        &format!(
            "#!/bin/sh\nexec {} -C {} -odq \"$@\"\n",
            exim.display(),
            conf.display()
        ),
    );
    let dir = config(&plugin(&wrapper));
    let kind = Kind::Exim(t.to_path_buf());
    // The work directory lives as long as the test process.
    std::mem::forget(work);
    Backend {
        name,
        dir,
        env: Vec::new(),
        kind,
    }
}

/// A next hop that accepts everything and records each transaction it took.
fn hop(lmtp: bool) -> (u16, Arc<Mutex<Vec<Transaction>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let taken = Arc::new(Mutex::new(Vec::new()));
    let log = taken.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let log = log.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                let _ = w.write_all(b"220 hop.example ESMTP\r\n");
                let (mut mail, mut rcpts) = (Vec::new(), Vec::new());
                loop {
                    let mut line = Vec::new();
                    if r.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.get(..4).unwrap_or(b"").to_ascii_uppercase();
                    let answer: Vec<u8> = match &verb[..] {
                        b"EHLO" | b"LHLO" => b"250-hop.example\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n".to_vec(),
                        b"MAIL" => {
                            mail = line.clone();
                            rcpts.clear();
                            b"250 ok\r\n".to_vec()
                        }
                        b"RCPT" => {
                            rcpts.push(line.clone());
                            b"250 ok\r\n".to_vec()
                        }
                        b"RSET" | b"NOOP" => b"250 ok\r\n".to_vec(),
                        b"QUIT" => {
                            let _ = w.write_all(b"221 bye\r\n");
                            return;
                        }
                        b"DATA" => {
                            let _ = w.write_all(b"354 go\r\n");
                            loop {
                                let mut l = Vec::new();
                                if r.read_until(b'\n', &mut l).unwrap_or(0) == 0 {
                                    return;
                                }
                                if l == b".\r\n" {
                                    break;
                                }
                            }
                            log.lock().unwrap().push((mail.clone(), rcpts.clone()));
                            let n = if lmtp { rcpts.len() } else { 1 };
                            b"250 2.0.0 taken\r\n".repeat(n)
                        }
                        _ => b"500 what\r\n".to_vec(),
                    };
                    if w.write_all(&answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, taken)
}

fn backends() -> Vec<Backend> {
    let mut out = Vec::new();

    let qq = TestDir::new(&[]);
    let script = qq.path().join("qmail-queue");
    executable(
        &script,
        "#!/bin/sh\n# Keeps the message (fd 0) and the envelope (fd 1) as qmail-queue reads them.\n\
         cat > \"$QQ_OUT/msg.$$\" || exit 54\ncat <&1 > \"$QQ_OUT/env.$$\" || exit 54\n",
    );
    let out_dir = qq.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    out.push(Backend {
        name: "qmail-queue",
        dir: config(&format!("queue/qmail-queue {}", script.display())),
        env: vec![("QQ_OUT".into(), out_dir.to_string_lossy().into_owned())],
        kind: Kind::QmailQueue(out_dir),
    });
    std::mem::forget(qq);

    if let Some(exim) = exim_binary().filter(|_| root_or_skip("a private Exim")) {
        out.push(exim_backend("sendmail", &exim, |w| {
            format!("queue/sendmail {}", w.display())
        }));
        out.push(exim_backend("postfix-queue", &exim, |w| {
            format!("queue/postfix-queue sendmail {}", w.display())
        }));
        out.push(exim_backend("exim-bsmtp", &exim, |w| {
            format!("queue/exim-bsmtp exim_path {}", w.display())
        }));
    }

    let dir = config("queue/maildir $DIR/maildir");
    let maildir = dir.path().join("maildir");
    out.push(Backend {
        name: "maildir",
        dir,
        env: Vec::new(),
        kind: Kind::Maildir(maildir),
    });

    for (name, lmtp) in [("smtp-forward", false), ("lmtp", true)] {
        let (port, taken) = hop(lmtp);
        let plugin = if lmtp {
            format!("queue/lmtp 127.0.0.1:{port} timeout 10")
        } else {
            format!("queue/smtp-forward 127.0.0.1 {port} timeout 10")
        };
        out.push(Backend {
            name,
            dir: config(&plugin),
            env: Vec::new(),
            kind: Kind::Hop(taken),
        });
    }
    out
}

impl Backend {
    /// What the backend holds now (at most one message), read by its own rules; then
    /// empties it.
    fn take(&self) -> Result<Option<Stored>, String> {
        match &self.kind {
            Kind::QmailQueue(dir) => {
                let envs: Vec<PathBuf> = files_in(dir)
                    .into_iter()
                    .filter(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().starts_with("env."))
                    })
                    .collect();
                let stored = envs.first().map(|p| qmail_envelope(&read(p))).transpose()?;
                for f in files_in(dir) {
                    std::fs::remove_file(f).unwrap();
                }
                Ok(stored)
            }
            Kind::Exim(work) => {
                let stored = exim_queue(work)?;
                let _ = std::fs::remove_dir_all(work.join("spool/input"));
                let _ = std::fs::remove_dir_all(work.join("spool/msglog"));
                Ok(stored)
            }
            Kind::Maildir(dir) => {
                let files = files_in(&dir.join("new"));
                let stored = files.first().map(|p| maildir_file(&read(p))).transpose()?;
                for f in files {
                    std::fs::remove_file(f).unwrap();
                }
                Ok(stored)
            }
            Kind::Hop(taken) => {
                let mut taken = taken.lock().unwrap();
                let stored = taken.last().map(|(mail, rcpts)| -> Result<Stored, String> {
                    Ok(Stored {
                        sender: read_command(mail, "MAIL FROM:")?,
                        rcpts: rcpts
                            .iter()
                            .map(|l| read_command(l, "RCPT TO:")?.ok_or_else(|| "RCPT TO:<>".to_string()))
                            .collect::<Result<_, _>>()?,
                    })
                });
                taken.clear();
                stored.transpose()
            }
        }
    }
}

/// `Fsender\0Trcpt\0...\0\0`, each address split at its last `@` (qmail-send's rule).
fn qmail_envelope(env: &[u8]) -> Result<Stored, String> {
    let text = std::str::from_utf8(env).map_err(|_| format!("envelope not UTF-8: {env:?}"))?;
    let entries: Vec<&str> = text
        .strip_suffix("\0\0")
        .ok_or("no closing NUL")?
        .split('\0')
        .collect();
    let split = |a: &str| -> Result<Option<Mailbox>, String> {
        if a.is_empty() {
            return Ok(None);
        }
        let (local, domain) = a.rsplit_once('@').ok_or_else(|| format!("no @ in {a:?}"))?;
        Ok(Some(Mailbox {
            local: local.to_string(),
            domain: domain.to_ascii_lowercase(),
        }))
    };
    let mut stored = Stored::default();
    for (i, e) in entries.iter().enumerate() {
        match (i, e.strip_prefix('F'), e.strip_prefix('T')) {
            (0, Some(f), _) => stored.sender = split(f)?,
            (i, _, Some(t)) if i > 0 => {
                stored.rcpts.insert(split(t)?.ok_or("empty recipient")?);
            }
            _ => return Err(format!("bad envelope entry {e:?} in {text:?}")),
        }
    }
    Ok(stored)
}

/// Exim's queue listing (`-bp`): `<sender>` on the message line, recipients indented.
fn exim_queue(work: &Path) -> Result<Option<Stored>, String> {
    let out = Command::new(exim_binary().ok_or("no exim")?)
        .arg("-C")
        .arg(work.join("exim.conf"))
        .arg("-bp")
        .output()
        .map_err(|e| e.to_string())?;
    let listing = String::from_utf8(out.stdout).map_err(|_| "listing not UTF-8".to_string())?;
    let mut stored: Option<Stored> = None;
    for line in listing.lines() {
        if let Some(rcpt) = line.strip_prefix("          ") {
            let s = stored.as_mut().ok_or("recipient before a message line")?;
            s.rcpts.insert(read_mailbox(rcpt.trim())?);
        } else if let Some(lt) = line.find('<') {
            if stored.is_some() {
                return Err(format!("more than one message queued:\n{listing}"));
            }
            stored = Some(Stored {
                sender: read_path(&line[lt..])?,
                rcpts: BTreeSet::new(),
            });
        }
    }
    Ok(stored)
}

/// A maildir file: `Return-Path: <path>`, then `Delivered-To: mailbox` lines, then our
/// trace fields, then exactly the client's message. No CR anywhere, no header line that
/// is not one of ours or the message's.
fn maildir_file(file: &[u8]) -> Result<Stored, String> {
    let text = std::str::from_utf8(file).map_err(|_| "file not UTF-8".to_string())?;
    let message = std::str::from_utf8(MESSAGE).unwrap();
    let ours = text
        .strip_suffix(message)
        .ok_or_else(|| format!("the message was changed:\n{text}"))?;
    if text.contains('\r') {
        return Err(format!("a CR was stored:\n{text:?}"));
    }
    let mut stored = Stored::default();
    for line in ours.lines() {
        if let Some(p) = line.strip_prefix("Return-Path: ") {
            stored.sender = read_path(p)?;
        } else if let Some(m) = line.strip_prefix("Delivered-To: ") {
            stored.rcpts.insert(read_mailbox(m)?);
        } else if !(line.starts_with("Authentication-Results: ")
            || line.starts_with("Received: ")
            || line.starts_with(' '))
        {
            return Err(format!("a header line that is not ours: {line:?}\n{text}"));
        }
    }
    Ok(stored)
}

/// The property for one session and one backend; `Ok(true)` when a message was queued.
fn check(backend: &Backend, case: &Case) -> Result<bool, String> {
    let told = talk(backend, case);
    let name = backend.name;
    let stored = backend.take().map_err(|e| format!("{name}: {e}"))?;
    let Some(stored) = stored.filter(|_| told.queued) else {
        return if told.queued {
            Err(format!("{name}: the client was told 250 but nothing was stored"))
        } else {
            Ok(false)
        };
    };
    let sender = told.sender.ok_or("queued without a sender")?;
    let sender = sender.map_err(|e| format!("{name}: accepted a sender the grammar refuses: {e}"))?;
    let mut wanted = BTreeSet::new();
    for r in told.rcpts {
        let r = r.map_err(|e| format!("{name}: accepted a recipient the grammar refuses: {e}"))?;
        wanted.insert(r.ok_or("accepted RCPT TO:<>")?);
    }
    if stored.sender != sender {
        return Err(format!(
            "{name}: sender {:?} stored as {:?}",
            sender, stored.sender
        ));
    }
    if stored.rcpts != wanted {
        return Err(format!(
            "{name}: the client was told 250 for {wanted:?}, the backend has {:?}",
            stored.rcpts
        ));
    }
    if !case.relay {
        for r in &stored.rcpts {
            if r.domain != "example.org" || r.local.contains(['@', '%', '!']) {
                return Err(format!("{name}: relayed for a stranger to {r:?}"));
            }
        }
    }
    Ok(true)
}

#[test]
fn every_backend_gets_exactly_the_accepted_envelope() {
    let backends = backends();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let queued = Mutex::new(vec![0u32; backends.len()]);
    let result = runner.run(&case(), |case| {
        for (i, b) in backends.iter().enumerate() {
            if check(b, &case).map_err(TestCaseError::fail)? {
                queued.lock().unwrap()[i] += 1;
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let queued = queued.into_inner().unwrap();
    let summary: Vec<String> = backends
        .iter()
        .zip(&queued)
        .map(|(b, n)| format!("{} {n}", b.name))
        .collect();
    eprintln!(
        "{cases} sessions; messages queued per backend: {}",
        summary.join(", ")
    );
    // The property must not hold only because nothing was ever accepted.
    if cases >= 32 {
        assert!(queued.iter().all(|n| *n > 0), "{summary:?}");
    }
}

/// The reading rules themselves, on the forms that matter.
#[test]
fn reference_reader() {
    let m = |l: &str, d: &str| Mailbox {
        local: l.into(),
        domain: d.into(),
    };
    assert_eq!(read_mailbox("\"a,b\"@Example.ORG"), Ok(m("a,b", "example.org")));
    assert_eq!(read_mailbox("\"a\\\"b\"@x"), Ok(m("a\"b", "x")));
    assert!(read_mailbox("a,b@x").is_err());
    assert!(read_mailbox("a b@x").is_err());
    assert!(read_mailbox("a\0b@x").is_err());
    assert_eq!(read_path("<@r.example,@[IPv6:::1]:a@x>"), Ok(Some(m("a", "x"))));
    assert_eq!(read_path("<>"), Ok(None));
    assert_eq!(
        read_command(b"RCPT TO:<\"a> b\"@x> NOTIFY=NEVER\r\n", "RCPT TO:"),
        Ok(Some(m("a> b", "x")))
    );
    assert!(read_command(b"RCPT TO:<a@x>junk\r\n", "RCPT TO:").is_err());
    assert!(qmail_envelope(b"Fs@x\0Ta@x\0Tb@y\0\0").is_ok_and(|s| s.rcpts.len() == 2));
}
