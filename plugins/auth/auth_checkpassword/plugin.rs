//! auth/auth_checkpassword: checks AUTH with a checkpassword program (qmail's interface:
//! `user\0password\0timestamp\0` on the child's fd 3, exit 0 = good). See README.md beside
//! this file.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::child::{ChildError, Exit, Fd, Spawn};
use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict, key_values};

/// The plugin instance.
pub struct CheckPassword {
    /// `checkpw` and `true` from the arguments; else read from `smtpauth-checkpassword`.
    programs: Option<(PathBuf, PathBuf)>,
    timeout: Duration,
}

/// `auth/auth_checkpassword [checkpw PATH true PATH] [timeout SECONDS]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let (mut checkpw, mut truth, mut timeout) = (None, None, Duration::from_secs(30));
    for (k, v) in key_values(&spec.args)? {
        match k.as_str() {
            "checkpw" => checkpw = Some(PathBuf::from(v)),
            "true" => truth = Some(PathBuf::from(v)),
            "timeout" => {
                // At most an hour: far more overflows the clock's arithmetic.
                let secs: u64 = v
                    .parse()
                    .ok()
                    .filter(|s| *s <= 3600)
                    .ok_or_else(|| format!("timeout must be seconds, at most 3600, not {v:?}"))?;
                timeout = Duration::from_secs(secs.max(1));
            }
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: checkpw, true, timeout)"
                )));
            }
        }
    }
    let programs = match (checkpw, truth) {
        (Some(c), Some(t)) => Some((c, t)),
        (None, None) => None,
        _ => {
            return Err(PluginError::Args(
                "checkpw and true must be given together".into(),
            ));
        }
    };
    Ok(Box::new(CheckPassword { programs, timeout }))
}

const NAME: &str = "auth_checkpassword";

impl Plugin for CheckPassword {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::AuthPlain, Hook::AuthLogin]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Args::Auth {
            mechanism,
            user,
            password: Some(password),
            ..
        } = args
        else {
            return Outcome::declined();
        };
        // The session refuses these already; a checkpassword program must never be asked
        // about an empty password (some accept one for accounts that have none) or get a
        // NUL that would shift its fields.
        if !crate::auth::valid_name(user) || !crate::auth::valid_password(password) {
            cx.log(
                Level::Notice,
                "fail: empty, too long or control characters in the credentials",
            );
            return Outcome::new(Verdict::Deny);
        }
        let (checkpw, truth) = match self.programs(cx) {
            Ok(p) => p,
            Err(msg) => {
                cx.log(Level::Error, &msg);
                return Outcome::with(Verdict::DenySoft, format!("{NAME} - not configured"));
            }
        };
        match run_checkpassword(&checkpw, &truth, user, password, self.timeout) {
            Ok(Exit::Code(0)) => {
                cx.conn.notes.insert("authuser".into(), user.to_string());
                cx.log(Level::Info, format_args!("pass, auth success with {mechanism}"));
                Outcome::with(Verdict::Ok, NAME)
            }
            // checkpassword's convention: 111 is a temporary problem (cannot reach the
            // password database), anything else a refusal.
            Ok(status @ Exit::Code(111)) => {
                cx.log(
                    Level::Warn,
                    format_args!("checkpassword temporary failure: {}", status.describe()),
                );
                Outcome::with(Verdict::DenySoft, format!("{NAME} - temporary failure"))
            }
            Ok(status) => {
                cx.log(
                    Level::Notice,
                    format_args!("fail, auth failed: {}", status.describe()),
                );
                Outcome::declined()
            }
            Err(e) => {
                cx.log(Level::Error, format_args!("{}: {e}", checkpw.display()));
                Outcome::with(Verdict::DenySoft, format!("{NAME} - temporary failure"))
            }
        }
    }
}

impl CheckPassword {
    /// The programs from the arguments, else the first line of `smtpauth-checkpassword`
    /// (`CHECKPW TRUE`).
    fn programs(&self, cx: &Context<'_>) -> Result<(PathBuf, PathBuf), String> {
        if let Some(p) = &self.programs {
            return Ok(p.clone());
        }
        let line = cx
            .config_first("smtpauth-checkpassword")
            .map_err(|e| e.to_string())?
            .ok_or("no checkpw/true arguments and no smtpauth-checkpassword config")?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(c), Some(t), None) => Ok((PathBuf::from(c), PathBuf::from(t))),
            _ => Err(format!(
                "smtpauth-checkpassword: expected \"CHECKPW TRUE\", got {line:?}"
            )),
        }
    }
}

/// Runs `checkpw true` with the credentials on fd 3. Its stdin, stdout and stderr are
/// /dev/null, never the client's connection; every other descriptor of ours is
/// close-on-exec. A program that takes longer than `timeout` is killed with everything
/// it started (its process group).
fn run_checkpassword(
    checkpw: &PathBuf,
    truth: &PathBuf,
    user: &str,
    password: &str,
    timeout: Duration,
) -> Result<Exit, ChildError> {
    let mut data = Vec::with_capacity(user.len() + password.len() + 10);
    for part in [user.as_bytes(), password.as_bytes(), b"Y123456"] {
        data.extend_from_slice(part);
        data.push(0);
    }
    let mut cmd = Command::new(checkpw);
    cmd.arg(truth);
    // A program that exits without reading fd 3 has decided without the credentials;
    // only its exit status counts.
    let done = Spawn::new(cmd)
        .fd(3, Fd::Feed(Box::new(Cursor::new(data))))
        .run(Instant::now() + timeout)?;
    Ok(done.exit)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::plugin::testing;

    fn check(dir: &std::path::Path, script: &str, password: &str) -> Outcome {
        let program = dir.join("checkpw");
        std::fs::write(&program, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
        let args = [
            "checkpw",
            program.to_str().unwrap(),
            "true",
            "/bin/true",
            "timeout",
            "1",
        ];
        let config = Config::empty();
        let plugin = new(&testing::spec("auth/auth_checkpassword", &args), &config).unwrap();
        let auth = Args::Auth {
            mechanism: "plain",
            user: "someone",
            password: Some(password),
            digest: None,
            ticket: None,
        };
        testing::run(plugin, &config, Hook::AuthPlain, auth).out
    }

    #[test]
    fn the_credentials_arrive_on_fd_3_and_the_exit_status_decides() {
        let dir = tempfile::tempdir().unwrap();
        let script = "[ \"$(tr '\\0' , <&3)\" = someone,secret,Y123456, ] && exec \"$1\"; exit 1";
        assert_eq!(
            check(dir.path(), script, "secret"),
            Outcome::with(Verdict::Ok, NAME)
        );
        assert_eq!(check(dir.path(), script, "wrong"), Outcome::declined());
        let out = check(dir.path(), "exit 111", "secret");
        assert_eq!(out.verdict, Verdict::DenySoft);
    }

    #[test]
    fn a_program_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}\nsleep 30", pidfile.display());
        let out = check(dir.path(), &script, "secret");
        assert_eq!(
            out,
            Outcome::with(Verdict::DenySoft, format!("{NAME} - temporary failure"))
        );
        let pid = std::fs::read_to_string(&pidfile).unwrap();
        let pid: i32 = pid.trim().parse().unwrap();
        // Gone, or a zombie waiting for its new parent to reap it.
        let mut alive = true;
        for _ in 0..100 {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if !stat
                .rsplit(") ")
                .next()
                .is_some_and(|s| !s.starts_with(['Z', 'X']) && !s.is_empty())
            {
                alive = false;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(
            !alive,
            "the program's background process {pid} survived the timeout"
        );
    }
}
