//! The account to serve as, limits and the privilege switch.

use super::*;
use std::fs;

fn config(files: &[(&str, &str)]) -> (tempfile::TempDir, Config) {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        fs::write(d.path().join(name), text).unwrap();
    }
    let c = Config::open(d.path(), None).unwrap();
    (d, c)
}

#[test]
fn limit_values() {
    assert_eq!(parse_value("64", false), Some(64));
    assert_eq!(parse_value("512m", true), Some(512 << 20));
    assert_eq!(parse_value("2G", true), Some(2 << 30));
    assert_eq!(parse_value("8k", false), None);
    assert_eq!(parse_value("unlimited", false), Some(RLIM_INFINITY));
    assert_eq!(parse_value("-1", true), None);
    assert_eq!(parse_value("m", true), None);
    assert_eq!(parse_value("99999999999999999999g", true), None);
    assert_eq!(show_value(512 << 20), "512M");
    assert_eq!(show_value(1000), "1000");
    assert_eq!(show_value(0), "0");
}

#[test]
fn rlimits_file() {
    let (_d, c) = config(&[("rlimits", "# limits\nas 256m\nRLIMIT_NOFILE 64\ncore 0\n")]);
    let l = limits(&c).unwrap();
    let got: Vec<(&str, rlim_t)> = l.iter().map(|l| (l.name, l.value)).collect();
    assert_eq!(got, [("as", 256 << 20), ("nofile", 64), ("core", 0)]);
    assert_eq!(l[1].entry.line, 3);
    for bad in ["as", "as 1 2", "files 10", "nofile lots", "cpu 10m"] {
        let (_d, c) = config(&[("rlimits", bad)]);
        let e = limits(&c).unwrap_err().to_string();
        assert!(e.contains("rlimits, line 1: "), "{bad}: {e}");
    }
}

#[test]
fn user_and_group_lookup() {
    let (_d, c) = config(&[]);
    assert_eq!(target(&c).unwrap(), Target::Unset);
    let (_d, c) = config(&[("user", "root\n")]);
    assert_eq!(target(&c).unwrap(), Target::Root);
    let (_d, c) = config(&[("user", "0\n")]);
    assert_eq!(target(&c).unwrap(), Target::Root);
    // Every Debian system has nobody (65534) and the group nogroup.
    let (_d, c) = config(&[("user", "nobody\n")]);
    let Target::Account(a) = target(&c).unwrap() else {
        panic!()
    };
    assert_eq!(
        (a.uid.as_raw(), a.gid.as_raw(), a.groups.len()),
        (65534, 65534, 0)
    );
    let (_d, c) = config(&[("user", "nobody\n"), ("group", "nogroup\n4242\n")]);
    let Target::Account(a) = target(&c).unwrap() else {
        panic!()
    };
    assert_eq!(a.groups, [Gid::from_raw(4242)]);
    let (_d, c) = config(&[("user", "54321\n"), ("group", "54321\n")]);
    let Target::Account(a) = target(&c).unwrap() else {
        panic!()
    };
    assert_eq!((a.uid.as_raw(), a.gid.as_raw()), (54321, 54321));
    let (_d, c) = config(&[("user", "54321\n")]);
    assert!(target(&c).unwrap_err().to_string().contains("no passwd entry"));
    let (_d, c) = config(&[("user", "no-such-user-here\n")]);
    assert!(
        target(&c)
            .unwrap_err()
            .to_string()
            .contains("user, line 1: no such user")
    );
    let (_d, c) = config(&[("user", "nobody\n"), ("group", "no-such-group-here\n")]);
    assert!(
        target(&c)
            .unwrap_err()
            .to_string()
            .contains("group, line 1: no such group")
    );
    let (_d, c) = config(&[("user", "nobody\n"), ("group", "root\n")]);
    assert!(target(&c).unwrap_err().to_string().contains("gid 0"));
}

#[test]
fn remote_or_local() {
    let none = |_: &str| None;
    assert!(!serving_remote(false, &none));
    assert!(serving_remote(true, &none));
    let tcp = |k: &str| (k == "TCPREMOTEIP").then(|| "192.0.2.1".to_string());
    assert!(serving_remote(false, &tcp));
}
