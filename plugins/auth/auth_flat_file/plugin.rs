//! auth/auth_flat_file: checks AUTH against `flat_auth_pw` (`user@domain:password`, the
//! password in clear text or as a SHA-crypt, bcrypt or argon2 hash). See README.md beside
//! this file.

use crate::auth::{Stored, cram_md5_matches, password_matches, stored};
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginSpec, Verdict};

/// The plugin instance.
pub struct FlatFile;

/// `auth/auth_flat_file` (no arguments).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, String> {
    if !spec.args.is_empty() {
        return Err(format!("takes no arguments, got {}", spec.args.join(" ")));
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
        let user = user.to_lowercase();
        if !user.contains('@') {
            cx.log(Level::Info, "fail: missing domain");
            return Outcome::declined();
        }
        let lines = match cx.config("flat_auth_pw") {
            Ok(lines) => lines,
            Err(e) => return e.into(),
        };
        let entry = lines.iter().find_map(|line| {
            let (name, pass) = line.split_once(':')?;
            (name.to_lowercase() == user).then(|| pass.to_string())
        });
        let Some(entry) = entry else {
            cx.log(Level::Info, format_args!("fail: no such user: {user}"));
            return Outcome::declined();
        };
        check(cx, &entry, password, digest.zip(ticket))
    }
}

/// qpsmtpd's `validate_password`: clear or hashed match for PLAIN/LOGIN, HMAC-MD5 for
/// CRAM-MD5 (which needs the clear password, so hashed entries decline it).
fn check(cx: &Context<'_>, entry: &str, password: Option<&str>, cram: Option<(&str, &str)>) -> Outcome {
    let matched = match (password, cram) {
        (Some(attempt), _) => password_matches(entry, attempt),
        (None, Some((digest, ticket))) => match stored(entry) {
            Stored::Clear(clear) => cram_md5_matches(clear, ticket, digest),
            Stored::Hash(_) => {
                cx.log(Level::Info, "skip: cram-md5 not supported w/o clear pass");
                return Outcome::with(Verdict::Declined, NAME);
            }
        },
        (None, None) => false,
    };
    if matched {
        cx.log(Level::Info, "pass: password match");
        Outcome::with(Verdict::Ok, NAME)
    } else {
        cx.log(Level::Info, "fail: wrong password");
        Outcome::with(Verdict::Deny, format!("{NAME} - wrong password"))
    }
}
