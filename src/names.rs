//! Looking up account, group and host names in a way the statically linked build survives.
//!
//! The dynamically linked build asks glibc's name service switch (NSS) like any program,
//! so accounts from LDAP or sssd and host names from systemd-resolved work. The
//! statically linked build (README "The build") has glibc copied in, and that copy can
//! answer from `files` and `dns` only: any other module `/etc/nsswitch.conf` names
//! (`systemd`, `compat`, `sss`, `ldap`, `resolve`, `mdns4_minimal`, ...) it loads from
//! the system at the moment a name reaches it, and that can crash the process instead of
//! answering: on Debian 12, a passwd lookup that reaches `systemd` (a name not in
//! /etc/passwd, with `passwd: files systemd`) is a SIGSEGV, even with the same glibc
//! version. So the static build reads `/etc/passwd` and `/etc/group` itself, as glibc's
//! `files` module reads them (whatever order `passwd:` gives), and asks glibc for a host
//! name only when the `hosts` line names nothing but `files` and `dns`; otherwise the
//! lookup fails with a reason (README "Differences" 91).

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
        let text = read(PASSWD)?;
        let found = entries(&text)
            .filter_map(passwd_entry)
            .find(|(n, _, _)| *n == name.as_bytes());
        return Ok(found.map(|(_, uid, gid)| Account {
            name: name.to_string(),
            uid,
            gid,
        }));
    }
    from_nss(nix::unistd::User::from_name(name))
}

/// The account with this uid, if the system has one.
pub fn user_by_uid(uid: u32) -> Result<Option<Account>, String> {
    if STATIC_GLIBC {
        let text = read(PASSWD)?;
        let found = entries(&text)
            .filter_map(passwd_entry)
            .find(|(_, u, _)| *u == uid);
        return Ok(found.map(|(name, uid, gid)| Account {
            name: String::from_utf8_lossy(name).into_owned(),
            uid,
            gid,
        }));
    }
    from_nss(nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)))
}

/// The dynamic build's answer from NSS, as an [`Account`].
fn from_nss(answer: nix::Result<Option<nix::unistd::User>>) -> Result<Option<Account>, String> {
    match answer {
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
        let text = read(GROUP)?;
        return Ok(entries(&text)
            .filter_map(group_entry)
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, gid)| gid));
    }
    match nix::unistd::Group::from_name(name) {
        Ok(g) => Ok(g.map(|g| g.gid.as_raw())),
        Err(e) => Err(e.desc().to_string()),
    }
}

/// May glibc be asked for the addresses of this host name? Always in the dynamic build
/// and for address literals (glibc parses those without NSS); in the static build only
/// when the `hosts` line of `/etc/nsswitch.conf` names no module but `files` and `dns`
/// (no such line, or no file, means glibc's default, `dns files`).
pub fn host_lookup_allowed(host: &str) -> Result<(), String> {
    let literal = host.split('%').next().unwrap_or(host);
    if !STATIC_GLIBC || literal.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let text = match fs::read(NSSWITCH) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(format!("cannot look up host name {host:?}: {NSSWITCH}: {e}")),
    };
    hosts_line_allows(host, &text)
}

/// The static build's check of [`host_lookup_allowed`], on the bytes of nsswitch.conf.
fn hosts_line_allows(host: &str, nsswitch: &[u8]) -> Result<(), String> {
    let others = modules_beyond_files_dns(nsswitch, b"hosts");
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

fn read(path: &str) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("{path}: {e}"))
}

/// White space as C's `isspace` knows it, which glibc skips.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

fn trim_start(mut b: &[u8]) -> &[u8] {
    while let [first, rest @ ..] = b {
        if !is_space(*first) {
            break;
        }
        b = rest;
    }
    b
}

/// The lines of a passwd or group file as glibc's `files` module reads them: split at
/// `\n` only (a `\r` stays, and spoils a number it follows), leading white space skipped.
fn entries(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n').map(trim_start)
}

/// A uid or gid field: white space before it is skipped (`strtoul`), anything after it
/// makes the line no entry.
fn number(field: &[u8]) -> Option<u32> {
    std::str::from_utf8(trim_start(field)).ok()?.parse().ok()
}

/// A name field: not empty, not a comment, not a NIS `+`/`-` line.
fn name(field: &[u8]) -> Option<&[u8]> {
    match field.first() {
        None | Some(b'+' | b'-' | b'#') => None,
        Some(_) => Some(field),
    }
}

/// One `/etc/passwd` line, `name:password:uid:gid:gecos:home:shell`: name, uid, gid.
fn passwd_entry(line: &[u8]) -> Option<(&[u8], u32, u32)> {
    let mut f = line.split(|&b| b == b':');
    let name = name(f.next()?)?;
    let _password = f.next()?;
    let uid = number(f.next()?)?;
    let gid = number(f.next()?)?;
    Some((name, uid, gid))
}

/// One `/etc/group` line, `name:password:gid:members`: name, gid.
fn group_entry(line: &[u8]) -> Option<(&[u8], u32)> {
    let mut f = line.split(|&b| b == b':');
    let name = name(f.next()?)?;
    let _password = f.next()?;
    Some((name, number(f.next()?)?))
}

/// The modules the last `database` line of an nsswitch.conf names besides `files` and
/// `dns`, read as glibc reads it (nss/nss_database.c): `#` starts a comment only as a
/// line's first non-blank character; the database name runs to white space or `:`, and
/// white space and colons follow it; a module name runs to white space or `[`; an action
/// runs from `[` to `]`.
fn modules_beyond_files_dns(text: &[u8], database: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = trim_start(line);
        if line.first().is_none_or(|&b| b == b'#') {
            continue;
        }
        let end = line
            .iter()
            .position(|&b| is_space(b) || b == b':')
            .unwrap_or(line.len());
        if &line[..end] != database {
            continue;
        }
        found = modules(&line[end..]);
    }
    found.retain(|m| m != "files" && m != "dns");
    found
}

/// The module names of what follows a database name.
fn modules(mut rest: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    while let Some(&b) = rest.first() {
        if is_space(b) || b == b':' {
            rest = &rest[1..];
        } else if b == b'[' {
            let close = rest.iter().position(|&c| c == b']').map_or(rest.len(), |i| i + 1);
            rest = &rest[close..];
        } else {
            let end = rest
                .iter()
                .position(|&c| is_space(c) || c == b'[')
                .unwrap_or(rest.len());
            names.push(String::from_utf8_lossy(&rest[..end]).into_owned());
            rest = &rest[end..];
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passwd(line: &str) -> Option<(String, u32, u32)> {
        passwd_entry(trim_start(line.as_bytes()))
            .map(|(n, u, g)| (String::from_utf8_lossy(n).into_owned(), u, g))
    }

    #[test]
    fn passwd_lines() {
        let qp = Some(("qpsmtpd".to_string(), 104, 110));
        assert_eq!(
            passwd("qpsmtpd:x:104:110:qpsmtpd,,,:/var/lib/qpsmtpd:/usr/sbin/nologin"),
            qp
        );
        // glibc's files module: leading white space skipped, before the line and a number.
        assert_eq!(passwd(" \tqpsmtpd:x:104:110:::"), qp);
        assert_eq!(passwd("qpsmtpd:x: 104:\t110:::"), qp);
        assert_eq!(passwd("qpsmtpd:x:104:110"), qp);
        for bad in [
            "",
            "+::::::",
            "-nis::0:0:::",
            "#root:x:0:0",
            "a:x:1",
            "a:x:one:2:::",
            "a:x:1:-2:::",
            "a:x:1:2\r",
            "a:x:4294967296:1:::",
            "a:x:1 :2:::",
        ] {
            assert_eq!(passwd(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn passwd_files_first_entry_wins() {
        let text = b"#c\n\n qtest:x:65534:65534:::\nqtest:x:0:0:::\nj\xfcrgen:x:5:5:J\xfcrgen:/:/bin/sh\n";
        let first = entries(text)
            .filter_map(passwd_entry)
            .find(|(n, _, _)| *n == b"qtest");
        assert_eq!(first.map(|(_, u, g)| (u, g)), Some((65534, 65534)));
        let latin1 = entries(text).filter_map(passwd_entry).find(|(_, u, _)| *u == 5);
        assert_eq!(latin1.map(|(n, _, _)| n), Some(&b"j\xfcrgen"[..]));
    }

    #[test]
    fn group_lines() {
        let g = |l: &str| group_entry(trim_start(l.as_bytes())).map(|(n, gid)| (n.to_vec(), gid));
        assert_eq!(g("mail:x:8:alice,bob"), Some((b"mail".to_vec(), 8)));
        assert_eq!(g("  mail:x:8"), Some((b"mail".to_vec(), 8)));
        for bad in ["", "+:::", "mail:x", "mail:x:eight:", "mail:x:8\r"] {
            assert_eq!(g(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn nsswitch_hosts() {
        let hosts = |t: &str| modules_beyond_files_dns(t.as_bytes(), b"hosts");
        let debian = "passwd: files systemd\nhosts:          files dns\n";
        assert!(hosts(debian).is_empty());
        assert_eq!(
            modules_beyond_files_dns(debian.as_bytes(), b"passwd"),
            ["systemd"]
        );
        assert_eq!(
            hosts("hosts: files resolve [!UNAVAIL=return] dns myhostname\n"),
            ["resolve", "myhostname"]
        );
        assert_eq!(
            hosts("hosts: files mdns4_minimal [NOTFOUND=return] dns\n"),
            ["mdns4_minimal"]
        );
        assert!(hosts("hosts: files [ NOTFOUND=return ] dns\n").is_empty());
        assert!(hosts("\thosts:files\tdns\n").is_empty());
        assert!(hosts("# hosts: nis\n").is_empty());
        assert!(hosts("HOSTS: nis\n").is_empty());
        // `#` after entries is not a comment to glibc: it names modules `#` and the rest.
        assert_eq!(
            hosts("hosts: files dns # mdns4_minimal\n"),
            ["#", "mdns4_minimal"]
        );
        // No colon, and a module right after an action.
        assert_eq!(hosts("hosts files myhostname dns\n"), ["myhostname"]);
        assert_eq!(
            hosts("hosts: files dns [NOTFOUND=continue]myhostname\n"),
            ["myhostname"]
        );
        // The last line for a database is the one glibc uses.
        assert!(hosts("hosts: files systemd\nhosts: files dns\n").is_empty());
        assert_eq!(hosts("hosts: files dns\nhosts: files ldap\n"), ["ldap"]);
        // Bytes that are not UTF-8 elsewhere do not hide the line.
        let latin1 = b"# J\xfcrgen's\nhosts: files systemd dns\n";
        assert_eq!(modules_beyond_files_dns(latin1, b"hosts"), ["systemd"]);
    }

    #[test]
    fn static_host_lookups() {
        assert!(hosts_line_allows("mx.example", b"hosts: files dns\n").is_ok());
        assert!(hosts_line_allows("mx.example", b"").is_ok());
        let e = hosts_line_allows("mx.example", b"hosts: files resolve dns\n").unwrap_err();
        assert!(
            e.contains("\"mx.example\"") && e.contains("use resolve,") && e.contains("files dns"),
            "{e}"
        );
    }

    #[test]
    fn addresses_need_no_lookup() {
        assert!(host_lookup_allowed("192.0.2.1").is_ok());
        assert!(host_lookup_allowed("2001:db8::1").is_ok());
        assert!(host_lookup_allowed("fe80::1%eth0").is_ok());
    }
}
