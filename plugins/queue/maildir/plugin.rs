//! queue/maildir: delivers each accepted message into a maildir, durably, before the
//! client hears `250`. See README.md beside this file.

use std::cell::Cell;
use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::address::Address;
use crate::config::Config;
use crate::durable::{self, Failure as HandoffFailure};
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct Maildir {
    dir: PathBuf,
    subdirs: Option<String>,
    perms: u32,
    host: String,
    counter: Cell<u32>,
}

/// `queue/maildir DIR [SUBDIR-PATTERN [MODE]]`: the pattern may use `%l` (local part),
/// `%d` (domain) and `%u` (`local@domain`); MODE is octal (default 700) for the
/// directories created; files get the same bits without execute.
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let Some(dir) = spec.args.first() else {
        return Err(PluginError::Args(
            "maildir directory not specified (queue/maildir DIR [SUBDIRS [MODE]])".into(),
        ));
    };
    let subdirs = match spec.args.get(1) {
        None => None,
        Some(p) if p.contains("%l") || p.contains("%d") || p.contains("%u") => Some(p.clone()),
        Some(p) => {
            return Err(PluginError::Args(format!(
                "sub directory {p:?} does not contain %l, %d or %u"
            )));
        }
    };
    let perms = match spec.args.get(2) {
        None => 0o700,
        Some(m) if m.len() == 3 && m.bytes().all(|b| (b'0'..=b'7').contains(&b)) => {
            // qpsmtpd treated 000 as "not given" (700).
            u32::from_str_radix(m, 8)
                .ok()
                .filter(|p| *p != 0)
                .unwrap_or(0o700)
        }
        Some(m) => {
            return Err(PluginError::Args(format!(
                "mode {m:?} is not a three-digit octal number"
            )));
        }
    };
    if spec.args.len() > 3 {
        return Err(PluginError::Args(format!(
            "too many arguments: {}",
            spec.args.join(" ")
        )));
    }
    let host: String = crate::host::hostname()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
        .collect();
    Ok(Box::new(Maildir {
        dir: PathBuf::from(dir),
        subdirs,
        perms,
        host,
        counter: Cell::new(0),
    }))
}

impl Plugin for Maildir {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Queue]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let result = match &self.subdirs {
            Some(pattern) => self.deliver_each(cx, pattern),
            None => {
                let rcpts: Vec<String> = cx.txn.recipients.iter().map(Address::mailbox).collect();
                for r in rcpts {
                    cx.txn.header.add("Delivered-To", &r, Some(0));
                }
                self.deliver(cx, &self.dir, None)
            }
        };
        match result {
            Ok(()) => {
                let id = cx
                    .txn
                    .header
                    .get("Message-Id")
                    .map(|v| v.lines().next().unwrap_or("").trim().to_string())
                    .unwrap_or_default();
                Outcome::ok_with(format!("Queued! {id}").trim_end().to_string())
            }
            Err((step, e)) => {
                cx.log(
                    Level::Error,
                    format_args!("maildir delivery failed ({step}): {e}"),
                );
                Outcome::with(Verdict::Declined, format!("queue error ({step})"))
            }
        }
    }
}

impl Maildir {
    /// One copy per recipient into `DIR/<pattern>`.
    fn deliver_each(&self, cx: &mut Context<'_>, pattern: &str) -> Result<(), HandoffFailure> {
        let rcpts = cx.txn.recipients.clone();
        for rcpt in &rcpts {
            let user = sanitize(rcpt.user());
            let host = sanitize(rcpt.host().unwrap_or(""));
            let sub = pattern
                .replace("%l", &user)
                .replace("%d", &host)
                .replace("%u", &format!("{user}@{host}"));
            let dir = self.dir.join(sub);
            self.deliver(cx, &dir, Some(rcpt))?;
        }
        Ok(())
    }

    /// Writes tmp/NAME and publishes it into new/ durably (the maildir protocol plus the
    /// syncs that make it durable before we answer 250; which syncs depends on the file
    /// system, see src/durable.rs).
    fn deliver(
        &self,
        cx: &mut Context<'_>,
        dir: &Path,
        rcpt: Option<&Address>,
    ) -> Result<(), HandoffFailure> {
        self.make_dirs(dir).map_err(|e| ("mkdir", e))?;
        let name = self.unique_name();
        let tmp = dir.join("tmp").join(&name);
        let file = match self.write_file(cx, &tmp, rcpt) {
            Ok(file) => file,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        let choice = durable::choose(&file);
        if choice.first {
            cx.log(
                Level::Debug,
                format_args!("maildir sync: {} ({})", choice.scheme.describe(), choice.why),
            );
        }
        durable::publish(&file, dir, &name, choice.scheme)
    }

    /// Writes the message to `path`, sets its mode, and returns it open, not yet synced.
    fn write_file(
        &self,
        cx: &mut Context<'_>,
        path: &Path,
        rcpt: Option<&Address>,
    ) -> Result<File, HandoffFailure> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.perms & 0o666)
            .open(path)
            .map_err(|e| ("open", e))?;
        // Room for the whole file when the message is small (its Return-Path and
        // Delivered-To lines within the 1 KiB over its size), 64 KiB at most: a large
        // body goes from the spool file to this one in the kernel, past the buffer.
        let room = usize::try_from(cx.txn.message_size()).unwrap_or(usize::MAX);
        let mut out = BufWriter::with_capacity(room.saturating_add(1024).min(64 * 1024), file);
        let sender = cx.txn.sender.clone().unwrap_or_else(Address::null);
        let write = |out: &mut BufWriter<File>, cx: &mut Context<'_>| -> io::Result<()> {
            writeln!(out, "Return-Path: {}", sender.smtp_path())?;
            if let Some(r) = rcpt {
                writeln!(out, "Delivered-To: {}", r.mailbox())?;
            }
            cx.txn.write_message_to_file(out)?;
            Ok(())
        };
        write(&mut out, cx).map_err(|e| ("write", e))?;
        let file = out.into_inner().map_err(|e| ("write", e.into_error()))?;
        // Exactly the configured bits, whatever the umask (qpsmtpd cleared the umask).
        file.set_permissions(Permissions::from_mode(self.perms & 0o666))
            .map_err(|e| ("chmod", e))?;
        Ok(file)
    }

    fn make_dirs(&self, dir: &Path) -> io::Result<()> {
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(self.perms);
        let mut created = Vec::new();
        for sub in ["tmp", "new", "cur"] {
            let d = dir.join(sub);
            if !d.is_dir() {
                // Remember which levels are new, to give them exactly the configured mode.
                let mut p = d.as_path();
                let mut fresh = Vec::new();
                while !p.exists() {
                    fresh.push(p.to_path_buf());
                    match p.parent() {
                        Some(parent) => p = parent,
                        None => break,
                    }
                }
                builder.create(&d)?;
                created.extend(fresh);
            }
        }
        for d in created {
            std::fs::set_permissions(&d, Permissions::from_mode(self.perms))?;
        }
        Ok(())
    }

    /// `time.P<pid>M<microseconds>Q<counter>.host`, as qpsmtpd names maildir files.
    fn unique_name(&self) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let n = self.counter.get();
        self.counter.set(n + 1);
        format!(
            "{}.P{}M{}Q{}.{}",
            now.as_secs(),
            std::process::id(),
            now.subsec_micros(),
            n,
            self.host
        )
    }
}

/// qpsmtpd's `tr/-A-Za-z0-9+_.,@=/_/c` for path components built from addresses.
/// A name that is only dots would climb out of the maildir, so it becomes `_`.
fn sanitize(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-+_.,@=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.chars().all(|c| c == '.') {
        "_".to_string()
    } else {
        clean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components_cannot_escape() {
        assert_eq!(sanitize("../../etc"), ".._.._etc");
        assert_eq!(sanitize("a b/c"), "a_b_c");
        assert_eq!(sanitize(".."), "_");
        assert_eq!(sanitize(""), "_");
    }

    /// The sub-directory pattern needs one of `%l`, `%d`, `%u`, any one alone will do;
    /// the mode is three octal digits.
    #[test]
    fn arguments() {
        use crate::plugin::testing::spec;
        let config = Config::empty();
        let load = |args: &[&str]| new(&spec("queue/maildir", args), &config).map(|_| ());
        for pattern in ["%l", "%d", "%u", "x/%d"] {
            assert!(load(&["/m", pattern]).is_ok(), "{pattern}");
        }
        let err = load(&["/m", "inbox"]).unwrap_err().to_string();
        assert!(err.contains("does not contain %l, %d or %u"), "{err}");
        assert!(load(&[]).is_err());
        assert!(load(&["/m", "%l", "750"]).is_ok());
        assert!(load(&["/m", "%l", "75"]).is_err());
        assert!(load(&["/m", "%l", "789"]).is_err());
        assert!(load(&["/m", "%l", "750", "x"]).is_err());
    }
}
