//! dnsbl against a DNS server in a thread: TXT and A zones, file order, what is not a
//! listing, IPv6, dnsbl_allow, RBLSMTPD, the naughty hold-back for special recipients.

use std::net::Ipv4Addr;

use super::*;
use crate::address::Address;
use crate::connection::Connection;
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, PluginError, testing};
use crate::transaction::Transaction;

const V6_NAME: &str = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2";

fn server() -> FakeServer {
    let a = |n: u8| Data::A(Ipv4Addr::new(127, 0, 0, n));
    let txt = |t: &str| Data::Txt(vec![t.as_bytes().to_vec()]);
    serving(&[
        ("10.2.0.192.one.test", a(2)),
        ("10.2.0.192.one.test", txt("listed in one\r\nInjected: yes")),
        ("10.2.0.192.two.test", a(2)),
        ("10.2.0.192.two.test", txt("listed in two")),
        ("11.2.0.192.one.test", a(2)),
        ("12.2.0.192.one.test", a(1)),
        (&format!("{V6_NAME}.one.test"), txt("v6 listed")),
    ])
}

struct Session {
    chain: Chain,
    config: crate::config::Config,
    _dir: tempfile::TempDir,
}

fn session(server: &FakeServer, args: &[&str], files: &[(&str, &str)]) -> Session {
    let (dir, config) = config_for(server, files);
    let plugin = new(&testing::spec("dnsbl", args), &config).unwrap();
    let mut chain = Chain::new();
    chain.push(testing::spec("dnsbl", args), plugin);
    Session {
        chain,
        config,
        _dir: dir,
    }
}

impl Session {
    fn connect(&self, conn: Connection) -> testing::Ran {
        testing::run_on(
            &self.chain,
            &self.config,
            Hook::Connect,
            Args::None,
            conn,
            Transaction::new("1.0".into()),
        )
    }

    fn from(&self, ip: &str) -> testing::Ran {
        self.connect(Connection::new("1", ip))
    }

    fn rcpt(&self, conn: Connection, to: &str) -> testing::Ran {
        let addr = Address::parse(to).unwrap();
        let args = Args::Address {
            addr: &addr,
            params: &Vec::new(),
        };
        testing::run_on(
            &self.chain,
            &self.config,
            Hook::Rcpt,
            args,
            conn,
            Transaction::new("1.0".into()),
        )
    }
}

#[test]
fn the_first_zone_in_file_order_that_lists_the_client_gives_the_text() {
    let server = server();
    let s = session(
        &server,
        &[],
        &[("dnsbl_zones", "none.test\ntwo.test\none.test\n")],
    );
    assert_eq!(
        s.from("192.0.2.10").out,
        Outcome::with(Verdict::Deny, "listed in two")
    );
    assert_eq!(server.asked().len(), 3, "all zones asked at once");
    let s = session(
        &server,
        &["reject_type", "temp"],
        &[("dnsbl_zones", "one.test\n")],
    );
    let out = s.from("192.0.2.10").out;
    assert_eq!(
        out,
        Outcome::with(Verdict::DenySoft, "listed in one??Injected: yes"),
        "no line break from DNS"
    );
    assert_eq!(s.from("192.0.2.30").out, Outcome::declined());
}

#[test]
fn a_txt_zone_needs_a_txt_record_an_a_zone_an_address_that_means_listed() {
    let server = server();
    let s = session(&server, &[], &[("dnsbl_zones", "one.test\n")]);
    assert_eq!(s.from("192.0.2.11").out, Outcome::declined(), "A only, no TXT");
    let s = session(
        &server,
        &[],
        &[("dnsbl_zones", "one.test:Blocked, see https://one.test/?%IP%\n")],
    );
    let out = s.from("192.0.2.11").out;
    assert_eq!(
        out,
        Outcome::with(Verdict::Deny, "Blocked, see https://one.test/?192.0.2.11")
    );
    assert_eq!(
        s.from("192.0.2.12").out,
        Outcome::declined(),
        "127.0.0.1 is an operator's error code"
    );
    let s = session(&server, &[], &[("dnsbl_zones", "one.test:\n")]);
    assert_eq!(
        s.from("192.0.2.11").out,
        Outcome::with(Verdict::Deny, "Blocked by one.test")
    );
}

#[test]
fn ipv6_clients_by_nibbles_and_mapped_ones_as_ipv4() {
    let server = server();
    let s = session(&server, &[], &[("dnsbl_zones", "one.test\n")]);
    assert_eq!(
        s.from("2001:db8::10").out,
        Outcome::with(Verdict::Deny, "v6 listed")
    );
    assert!(s.from("::ffff:192.0.2.10").out.verdict == Verdict::Deny);
    assert_eq!(
        s.from("0.0.0.0").out,
        Outcome::declined(),
        "no address, no lookup"
    );
}

#[test]
fn dnsbl_allow_prefixes_and_blocks() {
    let server = server();
    for (allow, exempt) in [
        ("192.0.2.", true),
        ("192.0.2", true),
        ("192.0.2.1", false),
        ("192.0.2.10", true),
        ("192.0.2.0/28", true),
        ("192.0.2.16/28", false),
        ("2001:db8::/32", false),
    ] {
        let s = session(
            &server,
            &[],
            &[("dnsbl_zones", "one.test\n"), ("dnsbl_allow", allow)],
        );
        assert_eq!(s.from("192.0.2.10").out == Outcome::declined(), exempt, "{allow}");
    }
    let s = session(
        &server,
        &[],
        &[("dnsbl_zones", "one.test\n"), ("dnsbl_allow", "2001:db8::/32")],
    );
    assert_eq!(s.from("2001:db8::10").out, Outcome::declined());
}

#[test]
fn rblsmtpd_empty_skips_a_text_refuses() {
    let server = server();
    let files = [
        ("dnsbl_zones", "one.test\n"),
        ("dnsbl_rejectmsg", "Ask your ISP.\n"),
    ];
    let s = session(&server, &[], &files);
    let with = |v: &str| {
        let mut conn = Connection::new("1", "192.0.2.10");
        conn.rblsmtpd = Some(v.to_string());
        conn
    };
    assert_eq!(s.connect(with("")).out, Outcome::declined());
    let out = s.connect(with("Go away %IP%")).out;
    assert_eq!(
        out,
        Outcome::with(Verdict::DenySoft, "Ask your ISP. Go away 192.0.2.10")
    );
    let out = s.connect(with("-Go away\r\n")).out;
    assert_eq!(out, Outcome::with(Verdict::Deny, "Ask your ISP. Go away??"));
    assert!(server.asked().is_empty(), "RBLSMTPD set: no lookups");
}

#[test]
fn a_deferred_refusal_is_held_back_for_special_recipients_only() {
    let server = server();
    let s = session(&server, &["reject", "naughty"], &[("dnsbl_zones", "one.test\n")]);
    let ran = s.from("192.0.2.10");
    assert_eq!(ran.out, Outcome::declined());
    let text = "listed in one??Injected: yes";
    assert_eq!(ran.conn.notes.get("naughty").map(String::as_str), Some(text));
    let ran = s.rcpt(ran.conn, "<Postmaster@example.org>");
    assert_eq!(ran.conn.notes.get("naughty"), None);
    let ran = s.rcpt(ran.conn, "<user@example.org>");
    assert_eq!(ran.conn.notes.get("naughty").map(String::as_str), Some(text));
    // Another plugin's deferral in the same note is never taken away.
    let mut conn = ran.conn;
    conn.notes.insert("naughty".into(), "badmailfrom's".into());
    let ran = s.rcpt(conn, "<abuse@example.org>");
    assert_eq!(
        ran.conn.notes.get("naughty").map(String::as_str),
        Some("badmailfrom's")
    );
}

#[test]
fn arguments_and_zone_lines_are_checked_when_loaded() {
    let server = server();
    let (_dir, config) = config_for(&server, &[("dnsbl_zones", "one.test\n")]);
    let refused = |args: &[&str]| new(&testing::spec("dnsbl", args), &config).err();
    assert_eq!(refused(&["disconnect"]), None, "the old one-argument form");
    assert!(matches!(refused(&["never"]), Some(PluginError::Args(_))));
    assert!(matches!(refused(&["timeout", "0"]), Some(PluginError::Args(_))));
    assert!(matches!(
        refused(&["timeout", "3601"]),
        Some(PluginError::Args(_))
    ));
    assert!(matches!(refused(&["retries", "2"]), Some(PluginError::Args(_))));
    assert_eq!(
        refused(&["reject", "connect", "reject_type", "temp", "timeout", "2"]),
        None
    );
    let (_dir, config) = config_for(&server, &[("dnsbl_zones", "one.test\nbad zone:x\n")]);
    let err = new(&testing::spec("dnsbl", &[]), &config).err().unwrap();
    assert!(err.to_string().contains("line 2"), "{err}");
    let (_dir, config) = config_for(&server, &[("dns_timeout", "soon")]);
    assert!(matches!(
        new(&testing::spec("dnsbl", &[]), &config),
        Err(PluginError::Config(_))
    ));
}
