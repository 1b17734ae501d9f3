//! auth/auth_flat_file: checks AUTH against `flat_auth_pw` (`user@domain:password`, the
//! password in clear text or as a SHA-crypt, bcrypt or argon2 hash). See README.md beside
//! this file.

use crate::auth::{Stored, constant_time_eq, cram_md5_matches, password_matches, stored};
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct FlatFile;

/// `auth/auth_flat_file` (no arguments).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    if !spec.args.is_empty() {
        return Err(PluginError::Args(format!(
            "takes no arguments, got {}",
            spec.args.join(" ")
        )));
    }
    Ok(Box::new(FlatFile))
}

/// qpsmtpd's `validate_password` names the plugin file in its messages.
const NAME: &str = "auth_flat_file";

impl Plugin for FlatFile {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::AuthPlain, Hook::AuthLogin, Hook::AuthCramMd5]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Auth {
            user,
            password,
            digest,
            ticket,
            ..
        } = args
        else {
            return Outcome::declined();
        };
        if password.is_none() && digest.is_none() {
            cx.log(Level::Info, "fail: missing password");
            return Outcome::with(Verdict::Deny, "authflat - missing password");
        }
        if !user.contains('@') {
            cx.log(Level::Info, "fail: missing domain");
            return Outcome::declined();
        }
        let lines = match cx.config("flat_auth_pw") {
            Ok(lines) => lines,
            Err(e) => return e.into(),
        };
        let (entry, dummy) = find(&lines, user);
        let Some((name, entry)) = entry else {
            // An unknown user costs what a known one does (README Differences 56): the
            // attempt is checked against another entry's hash and the answer ignored.
            let scheme = waste_time(dummy, password, digest.zip(ticket));
            cx.log(
                Level::Info,
                format_args!("fail: no such user: {user} (checked against a dummy {scheme} entry)"),
            );
            return Outcome::declined();
        };
        if let Stored::Unusable(why) = stored(entry) {
            // Costs what a real check would, as for an unknown user: a user whose entry
            // never matches must not stand out by a quick answer.
            let scheme = waste_time(dummy, password, digest.zip(ticket));
            cx.log(
                Level::Warn,
                format_args!(
                    "fail: unusable entry ({why}); it never matches (checked against a dummy {scheme} entry)"
                ),
            );
            return Outcome::with(Verdict::Deny, format!("{NAME} - wrong password"));
        }
        let out = check(cx, entry, password, digest.zip(ticket));
        if out.verdict == Verdict::Ok {
            // The session records this name (Authentication-Results, the 235 reply, the
            // note), not the client's spelling of it.
            cx.conn.notes.insert("authuser".into(), name.to_string());
        }
        out
    }
}

/// The user's name and entry, and the first hashed entry of the file (the dummy for
/// unknown users). Names match without regard to ASCII case only, as qpsmtpd's `lc` on
/// bytes did (Unicode folding would let `\u{212A}elvin` in as `kelvin`). Every line is
/// looked at, so a user's place in the file does not show in the time taken.
type Found<'a> = (Option<(&'a str, &'a str)>, Option<&'a str>);

fn find<'a>(lines: &'a crate::config::Lines, user: &str) -> Found<'a> {
    let (mut entry, mut dummy) = (None, None);
    for line in lines.iter() {
        let Some((name, pass)) = line.split_once(':') else {
            continue;
        };
        if entry.is_none() && name.eq_ignore_ascii_case(user) {
            entry = Some((name, pass));
        }
        if dummy.is_none() && matches!(stored(pass), Stored::Hash(_)) {
            dummy = Some(pass);
        }
    }
    (entry, dummy)
}

/// Does the work a real check would, against the dummy entry (or, in a file of clear
/// passwords, a clear comparison), and throws the answer away. Returns the scheme used.
fn waste_time(dummy: Option<&str>, password: Option<&str>, cram: Option<(&str, &str)>) -> &'static str {
    const CLEAR: &str = "no such user: a clear text of ordinary length";
    match (password, cram) {
        (Some(attempt), _) => match dummy.map(stored) {
            Some(Stored::Hash(hash)) => {
                std::hint::black_box(hash.matches(attempt));
                hash.scheme()
            }
            _ => {
                std::hint::black_box(password_matches(CLEAR, attempt));
                "clear"
            }
        },
        (None, Some((digest, ticket))) => {
            std::hint::black_box(cram_md5_matches(CLEAR, ticket, digest));
            "cram-md5"
        }
        (None, None) => "none",
    }
}

/// qpsmtpd's `validate_password`: clear or hashed match for PLAIN/LOGIN, HMAC-MD5 for
/// CRAM-MD5 (which needs the clear password, so hashed entries decline it). An entry in a
/// scheme we cannot check never matches (`--check` names it).
fn check(cx: &Context<'_>, entry: &str, password: Option<&str>, cram: Option<(&str, &str)>) -> Outcome {
    let matched = match (stored(entry), password, cram) {
        (Stored::Unusable(why), _, _) => {
            cx.log(
                Level::Warn,
                format_args!("fail: unusable entry ({why}); it never matches"),
            );
            false
        }
        (Stored::Clear(clear), Some(attempt), _) => constant_time_eq(clear.as_bytes(), attempt.as_bytes()),
        (Stored::Hash(hash), Some(attempt), _) => hash.matches(attempt),
        (Stored::Clear(clear), None, Some((digest, ticket))) => cram_md5_matches(clear, ticket, digest),
        (Stored::Hash(_), None, Some(_)) => {
            cx.log(Level::Info, "skip: cram-md5 not supported w/o clear pass");
            return Outcome::with(Verdict::Declined, NAME);
        }
        (_, None, None) => false,
    };
    if matched {
        cx.log(Level::Info, "pass: password match");
        Outcome::with(Verdict::Ok, NAME)
    } else {
        cx.log(Level::Info, "fail: wrong password");
        Outcome::with(Verdict::Deny, format!("{NAME} - wrong password"))
    }
}
