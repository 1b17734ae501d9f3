//! The command-line parser: any bytes as a line. The byte check, the verb split and the
//! MAIL/RCPT argument parser must never panic; a line that passes the byte check holds no
//! control character but tab, and an address that parses out of it holds none at all.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::address::{Address, forbidden};
use qpsmtpd_rs::command::{PathCommand, check_line, parse_path, split};

fuzz_target!(|data: &[u8]| {
    let checked = check_line(data);
    let line = String::from_utf8_lossy(data);
    let cmd = split(&line);
    if let Ok(text) = checked {
        assert!(!text.chars().any(|c| c != '\t' && forbidden(c)), "{text:?}");
    }
    for which in [PathCommand::Mail, PathCommand::Rcpt] {
        let Ok(args) = parse_path(which, cmd.rest) else {
            continue;
        };
        if let Some(a) = Address::parse(&args.addr) {
            assert!(
                checked.is_err() || !a.smtp_path().chars().any(forbidden),
                "{line:?}"
            );
        }
        for p in &args.params {
            assert!(
                !p.is_empty() && !p.contains([' ', '\r', '\n', '\0']),
                "{line:?}: {p:?}"
            );
        }
    }
});
