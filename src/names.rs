//! Looking up account, group and host names in a way the statically linked build survives.
//!
//! The dynamically linked build asks glibc's name service switch (NSS) like any program,
//! so accounts from LDAP or sssd and host names from systemd-resolved work. The
//! statically linked build (README "The build") has glibc copied in, and that copy can
//! answer from `files` and `dns` only: any other module `/etc/nsswitch.conf` names
//! (`systemd`, `compat`, `sss`, `ldap`, `resolve`, `mdns4_minimal`, ...) it loads from
//! the system at the moment a name reaches it, and on Debian 12 that load crashes the
//! process (SIGSEGV) instead of answering, even with the same glibc version. So the
//! static build reads `/etc/passwd` and `/etc/group` itself (what the `files` module
//! reads), and asks glibc for a host name only when `hosts:` names nothing but `files`
//! and `dns`; otherwise the lookup fails with a reason (README "Differences" 91).

use std::fs;

/// Built with glibc linked in (`-C target-feature=+crt-static`).
pub const STATIC_GLIBC: bool = cfg!(target_feature = "crt-static");

const PASSWD: &str = "/etc/passwd";
const GROUP: &str = "/etc/group";
const NSSWITCH: &str = "/etc/nsswitch.conf";

/// An account: the fields of a passwd entry the program uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The login name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
}

/// The account with this name, if the system has one.
pub fn user_by_name(name: &str) -> Result<Option<Account>, String> {
    if STATIC_GLIBC {
        return Ok(read(PASSWD)?
            .lines()
            .filter_map(passwd_entry)
            .find(|a| a.name == name));
    }
    match nix::unistd::User::from_name(name) {
        Ok(u) => Ok(u.map(|u| Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// The account with this uid, if the system has one.
pub fn user_by_uid(uid: u32) -> Result<Option<Account>, String> {
    if STATIC_GLIBC {
        return Ok(read(PASSWD)?
            .lines()
            .filter_map(passwd_entry)
            .find(|a| a.uid == uid));
    }
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(u) => Ok(u.map(|u| Account {
            name: u.name,
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        })),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// The gid of the group with this name, if the system has one.
pub fn group_by_name(name: &str) -> Result<Option<u32>, String> {
    if STATIC_GLIBC {
        return Ok(read(GROUP)?
            .lines()
            .filter_map(group_entry)
            .find(|(n, _)| *n == name)
            .map(|(_, gid)| gid));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(g) => Ok(g.map(|g| g.gid.as_raw())),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// May glibc be asked for the addresses of this host name? Always in the dynamic build
/// and for address literals (glibc parses those without NSS); in the static build only
/// when `hosts:` in `/etc/nsswitch.conf` names no module but `files` and `dns` (no such
/// line, or no file, means glibc's default, `dns files`).
pub fn host_lookup_allowed(host: &str) -> Result<(), String> {
    if !STATIC_GLIBC || host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    hosts_line_allows(host, &fs::read_to_string(NSSWITCH).unwrap_or_default())
}

/// The static build's check of [`host_lookup_allowed`], on the text of nsswitch.conf.
fn hosts_line_allows(host: &str, nsswitch: &str) -> Result<(), String> {
    let others = modules_beyond_files_dns(nsswitch, "hosts");
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "cannot look up host name {host:?}: {NSSWITCH} has `hosts:` use {}, which this \
         statically linked build cannot load; give the address instead, or list only \
         `files dns` there",
        others.join(", ")
    ))
}

fn read(path: &str) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))
}

/// One `/etc/passwd` line: `name:password:uid:gid:gecos:home:shell`. NIS `+`/`-` lines
/// and comments are not accounts.
fn passwd_entry(line: &str) -> Option<Account> {
    let mut f = line.split(':');
    let name = f.next()?;
    if name.is_empty() || name.starts_with(['+', '-', '#']) {
        return None;
    }
    let _password = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let gid = f.next()?.parse().ok()?;
    Some(Account {
        name: name.to_string(),
        uid,
        gid,
    })
}

/// One `/etc/group` line: `name:password:gid:members`.
fn group_entry(line: &str) -> Option<(&str, u32)> {
    let mut f = line.split(':');
    let name = f.next()?;
    if name.is_empty() || name.starts_with(['+', '-', '#']) {
        return None;
    }
    let _password = f.next()?;
    Some((name, f.next()?.parse().ok()?))
}

/// The modules the `database:` line of an nsswitch.conf names besides `files` and `dns`
/// (actions in brackets are not modules), over every line for that database.
fn modules_beyond_files_dns(text: &str, database: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let Some((db, rest)) = line.split_once(':') else {
            continue;
        };
        if db.trim() != database {
            continue;
        }
        let mut in_action = false;
        for word in rest.split_whitespace() {
            if word.starts_with('[') {
                in_action = true;
            }
            if !in_action && word != "files" && word != "dns" {
                found.push(word.to_string());
            }
            if word.ends_with(']') {
                in_action = false;
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let a = passwd_entry("qpsmtpd:x:104:110:qpsmtpd,,,:/var/lib/qpsmtpd:/usr/sbin/nologin");
        assert_eq!(
            a,
            Some(Account {
                name: "qpsmtpd".into(),
                uid: 104,
                gid: 110
            })
        );
        for bad in [
            "",
            "+::::::",
            "-nis::0:0:::",
            "#root:x:0:0",
            "a:x:1",
            "a:x:one:2:::",
            "a:x:1:-2:::",
        ] {
            assert_eq!(passwd_entry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn group_lines() {
        assert_eq!(group_entry("mail:x:8:alice,bob"), Some(("mail", 8)));
        assert_eq!(group_entry("mail:x:8"), Some(("mail", 8)));
        for bad in ["", "+:::", "mail:x", "mail:x:eight:"] {
            assert_eq!(group_entry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nsswitch_hosts() {
        let debian = "passwd: files systemd\nhosts:          files dns\n";
        assert!(modules_beyond_files_dns(debian, "hosts").is_empty());
        assert_eq!(modules_beyond_files_dns(debian, "passwd"), ["systemd"]);
        let resolved = "hosts: files resolve [!UNAVAIL=return] dns myhostname # local\n";
        assert_eq!(
            modules_beyond_files_dns(resolved, "hosts"),
            ["resolve", "myhostname"]
        );
        let spaced = "hosts: files mdns4_minimal [NOTFOUND=return] dns\n";
        assert_eq!(modules_beyond_files_dns(spaced, "hosts"), ["mdns4_minimal"]);
        let split_action = "hosts: files [ NOTFOUND=return ] dns\n";
        assert!(modules_beyond_files_dns(split_action, "hosts").is_empty());
        let twice = "hosts: files ldap\nhosts: files dns\n";
        assert_eq!(modules_beyond_files_dns(twice, "hosts"), ["ldap"]);
        assert!(modules_beyond_files_dns("# hosts: nis\n", "hosts").is_empty());
    }

    #[test]
    fn static_host_lookups() {
        assert!(hosts_line_allows("mx.example", "hosts: files dns\n").is_ok());
        assert!(hosts_line_allows("mx.example", "").is_ok());
        let e = hosts_line_allows("mx.example", "hosts: files resolve dns\n").unwrap_err();
        assert!(
            e.contains("\"mx.example\"") && e.contains("use resolve,") && e.contains("files dns"),
            "{e}"
        );
    }

    #[test]
    fn addresses_need_no_lookup() {
        assert!(host_lookup_allowed("192.0.2.1").is_ok());
        assert!(host_lookup_allowed("2001:db8::1").is_ok());
    }
}
