//! Running unprivileged, and resource limits.
//!
//! A super-server may start qpsmtpd-rs as root: xinetd without `user`, a systemd unit
//! without `User=`, `tcpserver` without `-u`/`-g`. Then, before any client input is read
//! and before any plugin is loaded, the process switches to the account named by the
//! config files `user` and `group`: supplementary groups first (those listed after the
//! first line of `group`, else none), then the group, then the user, in that order,
//! because each step needs the privilege the next one gives up. Serving as root is
//! refused unless `user` says `root` or `--allow-root` is given.
//!
//! Only `user` and `group` are read as root, and the TLS certificate, key and ticket-key
//! files are opened (not read) just before the switch by the caller's `before_switch`, so
//! that keys only root may read work (see [`crate::tls::preopen`]); everything else (every
//! other config file, log files, the spool) is read after the switch, with the rights the
//! session runs with. Started as any other user, none of this runs: the super-server already
//! chose the account, and the start-up stays one `geteuid` call dearer.
//!
//! `rlimits` sets resource limits (`setrlimit(2)`, soft and hard alike, so a plugin cannot
//! raise them again) for every session, whoever started it; see [`apply_limits`].

use std::fmt;
use std::path::{Path, PathBuf};

use nix::sys::resource::{RLIM_INFINITY, Resource, rlim_t, setrlimit};
use nix::unistd::{Gid, Uid, geteuid, setgid, setgroups, setuid};

use crate::config::{Config, ConfigError, Entry};
use crate::names::{self, Account as Passwd};

/// The config file naming the account to run as when started as root.
pub const USER_FILE: &str = "user";
/// The config file naming its group (first line) and supplementary groups (the rest).
pub const GROUP_FILE: &str = "group";
/// The config file with resource limits, one `resource value` per line.
pub const RLIMITS_FILE: &str = "rlimits";

/// The account a session started as root switches to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The user name (or the number as written).
    pub user: String,
    /// Its uid.
    pub uid: Uid,
    /// The group.
    pub gid: Gid,
    /// Supplementary groups (empty unless `group` lists more than one).
    pub groups: Vec<Gid>,
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}, gid {}", self.user, self.uid, self.gid)?;
        if self.groups.is_empty() {
            write!(f, ", no supplementary groups)")
        } else {
            let list: Vec<String> = self.groups.iter().map(|g| g.to_string()).collect();
            write!(f, ", supplementary groups {})", list.join(","))
        }
    }
}

/// What `user` and `group` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `user` is not set.
    Unset,
    /// `user` is `root` (or uid 0): stay root, deliberately.
    Root,
    /// Switch to this account.
    Account(Account),
}

/// What [`drop_privileges`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Not started as root: nothing to do.
    Unprivileged,
    /// Switched to this account.
    Dropped(Account),
    /// Still root, because `user` says `root` or `--allow-root` was given.
    StayedRoot,
    /// Still root: a session on a pipe run by hand, serving no remote client.
    LocalDebug,
}

/// Why the process cannot serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivError {
    /// `user`, `group` or `rlimits` is unreadable or wrong.
    Config(ConfigError),
    /// Started as root with no account to switch to.
    RootRefused,
    /// A system call failed.
    Call {
        /// The call and its argument.
        what: String,
        /// The reason.
        errno: nix::Error,
    },
}

impl fmt::Display for PrivError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PrivError::Config(e) => write!(f, "config error: {e}"),
            PrivError::RootRefused => write!(
                f,
                "refusing to serve as root: name an unprivileged account in the config file \
                 `{USER_FILE}` (and `{GROUP_FILE}`), let the super-server start qpsmtpd-rs as \
                 that user, or pass --allow-root"
            ),
            PrivError::Call { what, errno } => write!(f, "{what} failed: {}", errno.desc()),
        }
    }
}

impl From<ConfigError> for PrivError {
    fn from(e: ConfigError) -> PrivError {
        PrivError::Config(e)
    }
}

/// Did a super-server start this process for a remote client? fd 0 is a socket, or the
/// UCSPI or systemd variables are set (a TLS wrapper may hand over pipes). Otherwise it is
/// a transcript piped in by hand.
pub fn serving_remote(stdin_is_socket: bool, env: &dyn Fn(&str) -> Option<String>) -> bool {
    stdin_is_socket
        || ["TCPREMOTEIP", "TCP6REMOTEIP", "REMOTE_ADDR", "PROTO"]
            .iter()
            .any(|v| env(v).is_some())
}

/// The switch, done when started as root: reads `user` and `group` from the config
/// directory and becomes that account, or refuses (see the module docs). Just before the
/// switch, `before_switch` gets the config (to open files only root may read). Costs one
/// `geteuid` call when not started as root.
///
/// When the process stays root, the config it opened is handed back with the outcome:
/// root is the serving account, so the session can use it instead of listing the
/// directory again (see [`Config::read_by_serving_account`]).
pub fn drop_privileges(
    config_dir: &Path,
    qmail_control: Option<PathBuf>,
    allow_root: bool,
    remote: bool,
    before_switch: &mut dyn FnMut(&Config),
) -> Result<(Outcome, Option<Config>), PrivError> {
    if !geteuid().is_root() {
        return Ok((Outcome::Unprivileged, None));
    }
    let config = Config::open(config_dir, qmail_control)?;
    match target(&config)? {
        Target::Account(account) => {
            before_switch(&config);
            become_account(&account)?;
            Ok((Outcome::Dropped(account), None))
        }
        Target::Root => Ok((Outcome::StayedRoot, Some(config))),
        Target::Unset if allow_root => Ok((Outcome::StayedRoot, Some(config))),
        Target::Unset if !remote => Ok((Outcome::LocalDebug, Some(config))),
        Target::Unset => Err(PrivError::RootRefused),
    }
}

/// Reads `user` and `group` and looks the names up.
pub fn target(config: &Config) -> Result<Target, ConfigError> {
    let user_lines = config.lines(USER_FILE)?;
    let Some(user_entry) = user_lines.entries().first() else {
        return Ok(Target::Unset);
    };
    let name = user_entry.text.as_str();
    // No name-service lookup (NSS, /etc/passwd) for the one account every system has.
    if name == "root" || name == "0" {
        return Ok(Target::Root);
    }
    let (passwd, uid) = user_id(user_entry)?;
    if uid.is_root() {
        return Ok(Target::Root);
    }
    let group_lines = config.lines(GROUP_FILE)?;
    let mut gids = Vec::new();
    for entry in group_lines.entries() {
        gids.push(group_id(entry).map_err(|reason| invalid(entry, reason))?);
    }
    let gid = match (gids.first(), &passwd) {
        (Some(g), _) => *g,
        (None, Some(u)) => Gid::from_raw(u.gid),
        (None, None) => {
            return Err(invalid(
                user_entry,
                format!("uid {name} has no passwd entry: name its group in `{GROUP_FILE}`"),
            ));
        }
    };
    if gid.as_raw() == 0 {
        let entry = group_lines.entries().first().unwrap_or(user_entry);
        return Err(invalid(
            entry,
            "the group is root (gid 0); name an unprivileged group".into(),
        ));
    }
    let groups = gids.iter().skip(1).copied().collect();
    Ok(Target::Account(Account {
        user: name.to_string(),
        uid,
        gid,
        groups,
    }))
}

/// The `user` entry's account (if the system knows it) and uid: a name, or a number
/// without a passwd entry.
fn user_id(entry: &Entry) -> Result<(Option<Passwd>, Uid), ConfigError> {
    let name = entry.text.as_str();
    let looked_up = |e: String| invalid(entry, format!("cannot look up user {name:?}: {e}"));
    let passwd = match names::user_by_name(name).map_err(looked_up)? {
        Some(u) => Some(u),
        None => match name.parse::<u32>() {
            Ok(n) => names::user_by_uid(n).ok().flatten(),
            Err(_) => return Err(invalid(entry, format!("no such user {name:?}"))),
        },
    };
    let uid = match (&passwd, name.parse::<u32>()) {
        (Some(u), _) => Uid::from_raw(u.uid),
        (None, Ok(n)) => Uid::from_raw(n),
        (None, Err(_)) => return Err(invalid(entry, format!("no such user {name:?}"))),
    };
    Ok((passwd, uid))
}

/// A config entry that is wrong, with its file and line.
fn invalid(entry: &Entry, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: entry.file.clone(),
        line: entry.line,
        reason,
    }
}

/// A group name or number.
fn group_id(entry: &Entry) -> Result<Gid, String> {
    let name = entry.text.as_str();
    match names::group_by_name(name) {
        Ok(Some(gid)) => Ok(Gid::from_raw(gid)),
        Ok(None) => name
            .parse::<u32>()
            .map(Gid::from_raw)
            .map_err(|_| format!("no such group {name:?}")),
        Err(e) => Err(format!("cannot look up group {name:?}: {e}")),
    }
}

/// setgroups, setgid, setuid, in that order (each needs the privilege the next gives up),
/// then makes sure root cannot be had back.
pub fn become_account(account: &Account) -> Result<(), PrivError> {
    let call = |what: String| move |errno| PrivError::Call { what, errno };
    setgroups(&account.groups).map_err(call(format!("setgroups({:?})", account.groups)))?;
    setgid(account.gid).map_err(call(format!("setgid({})", account.gid)))?;
    setuid(account.uid).map_err(call(format!("setuid({})", account.uid)))?;
    if setuid(Uid::from_raw(0)).is_ok() || geteuid().is_root() {
        return Err(PrivError::Call {
            what: format!("giving up root for uid {}", account.uid),
            errno: nix::Error::EPERM,
        });
    }
    Ok(())
}

/// Makes sure no program started from now on gains privileges through a set-id bit or
/// file capabilities (`PR_SET_NO_NEW_PRIVS`: inherited, and cannot be undone). For after
/// the switch from root; see `startup::forbid_new_privileges` for when.
pub fn forbid_new_privileges() -> Result<(), PrivError> {
    nix::sys::prctl::set_no_new_privs().map_err(|errno| PrivError::Call {
        what: "prctl(PR_SET_NO_NEW_PRIVS)".into(),
        errno,
    })
}

/// One line of `rlimits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The resource's name as written in the file (`as`, `nofile`, ...).
    pub name: &'static str,
    /// The resource.
    pub resource: Resource,
    /// The limit (soft and hard), [`RLIM_INFINITY`] for `unlimited`.
    pub value: rlim_t,
    /// Where it was configured.
    pub entry: Entry,
}

/// The resources `rlimits` may set: name, resource, and whether the value is in bytes
/// (and so may carry a `k`, `m` or `g` suffix).
const RESOURCES: &[(&str, Resource, bool)] = &[
    ("as", Resource::RLIMIT_AS, true),
    ("core", Resource::RLIMIT_CORE, true),
    ("cpu", Resource::RLIMIT_CPU, false),
    ("data", Resource::RLIMIT_DATA, true),
    ("fsize", Resource::RLIMIT_FSIZE, true),
    ("memlock", Resource::RLIMIT_MEMLOCK, true),
    ("nofile", Resource::RLIMIT_NOFILE, false),
    ("nproc", Resource::RLIMIT_NPROC, false),
    ("stack", Resource::RLIMIT_STACK, true),
];

/// Reads `rlimits`: `resource value` per line, e.g. `as 512m`, `nofile 64`, `core 0`.
pub fn limits(config: &Config) -> Result<Vec<Limit>, ConfigError> {
    let lines = config.lines(RLIMITS_FILE)?;
    let mut out = Vec::with_capacity(lines.entries().len());
    for entry in lines.entries() {
        out.push(parse_limit(entry).map_err(|reason| ConfigError::Invalid {
            path: entry.file.clone(),
            line: entry.line,
            reason,
        })?);
    }
    Ok(out)
}

fn parse_limit(entry: &Entry) -> Result<Limit, String> {
    let mut words = entry.text.split_whitespace();
    let (Some(key), Some(value), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!("expected `resource value`, not {:?}", entry.text));
    };
    let lower = key.to_ascii_lowercase();
    let key = lower.strip_prefix("rlimit_").unwrap_or(&lower);
    let Some(&(name, resource, bytes)) = RESOURCES.iter().find(|(n, _, _)| *n == key) else {
        let known: Vec<&str> = RESOURCES.iter().map(|(n, _, _)| *n).collect();
        return Err(format!("unknown resource {key:?} (known: {})", known.join(", ")));
    };
    let value = parse_value(value, bytes).ok_or_else(|| {
        let unit = if bytes { " (bytes; k, m, g allowed)" } else { "" };
        format!("{name}: {value:?} is not a number{unit} or `unlimited`")
    })?;
    Ok(Limit {
        name,
        resource,
        value,
        entry: entry.clone(),
    })
}

fn parse_value(s: &str, bytes: bool) -> Option<rlim_t> {
    if s.eq_ignore_ascii_case("unlimited") || s.eq_ignore_ascii_case("infinity") {
        return Some(RLIM_INFINITY);
    }
    let (digits, shift) = match s.as_bytes().last()?.to_ascii_lowercase() {
        b'k' if bytes => (&s[..s.len() - 1], 10),
        b'm' if bytes => (&s[..s.len() - 1], 20),
        b'g' if bytes => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: rlim_t = digits.parse().ok()?;
    n.checked_mul(1 << shift).filter(|v| *v != RLIM_INFINITY)
}

/// Sets the limits in `rlimits`, soft and hard alike. Raising a hard limit needs root;
/// started unprivileged, a value above the inherited hard limit is an error naming the
/// line, never silently ignored.
pub fn apply_limits(config: &Config) -> Result<Vec<Limit>, ConfigError> {
    let limits = limits(config)?;
    for limit in &limits {
        setrlimit(limit.resource, limit.value, limit.value).map_err(|e| ConfigError::Invalid {
            path: limit.entry.file.clone(),
            line: limit.entry.line,
            reason: format!("setrlimit {} failed: {}", limit.name, e.desc()),
        })?;
    }
    Ok(limits)
}

/// `as 512m` → `512M`, for `--check`.
pub fn show_value(value: rlim_t) -> String {
    if value == RLIM_INFINITY {
        return "unlimited".into();
    }
    for (shift, suffix) in [(30, "G"), (20, "M"), (10, "K")] {
        if value != 0 && value.is_multiple_of(1 << shift) {
            return format!("{}{suffix}", value >> shift);
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests;
