//! auth/auth_checkpassword: checks AUTH with a checkpassword program (qmail's interface:
//! `user\0password\0timestamp\0` on the child's fd 3, exit 0 = good). See README.md beside
//! this file.

use std::io::Write as _;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginSpec, Verdict, key_values};

/// The plugin instance.
pub struct CheckPassword {
    /// `checkpw` and `true` from the arguments; else read from `smtpauth-checkpassword`.
    programs: Option<(PathBuf, PathBuf)>,
    timeout: Duration,
}

/// `auth/auth_checkpassword [checkpw PATH true PATH] [timeout SECONDS]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, String> {
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
                return Err(format!(
                    "unknown argument {other:?} (known: checkpw, true, timeout)"
                ));
            }
        }
    }
    let programs = match (checkpw, truth) {
        (Some(c), Some(t)) => Some((c, t)),
        (None, None) => None,
        _ => return Err("checkpw and true must be given together".into()),
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
            Ok(status) if status.success() => {
                cx.conn.notes.insert("authuser".into(), user.to_string());
                cx.log(Level::Info, format_args!("pass, auth success with {mechanism}"));
                Outcome::with(Verdict::Ok, NAME)
            }
            // checkpassword's convention: 111 is a temporary problem (cannot reach the
            // password database), anything else a refusal.
            Ok(status) if status.code() == Some(111) => {
                cx.log(
                    Level::Warn,
                    format_args!("checkpassword temporary failure: {status}"),
                );
                Outcome::with(Verdict::DenySoft, format!("{NAME} - temporary failure"))
            }
            Ok(status) => {
                cx.log(Level::Notice, format_args!("fail, auth failed: {status}"));
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
/// close-on-exec. A program that takes longer than `timeout` is killed.
fn run_checkpassword(
    checkpw: &PathBuf,
    truth: &PathBuf,
    user: &str,
    password: &str,
    timeout: Duration,
) -> std::io::Result<ExitStatus> {
    let (reader, mut writer) = std::io::pipe()?;
    let mut cmd = Command::new(checkpw);
    cmd.arg(truth)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: OwnedFd::from(reader),
        child_fd: 3,
    }])
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut child = cmd.spawn()?;
    // Our copy of the read end lives in `cmd`; drop it so the child sees end of input.
    drop(cmd);
    let mut data = Vec::with_capacity(user.len() + password.len() + 10);
    for part in [user.as_bytes(), password.as_bytes(), b"Y123456"] {
        data.extend_from_slice(part);
        data.push(0);
    }
    // A few hundred bytes fit in the pipe, so this never blocks; a child that exits
    // without reading gives EPIPE, which only means it decided without them.
    let _ = writer.write_all(&data);
    drop(writer);
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "checkpassword program timed out",
            ));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
