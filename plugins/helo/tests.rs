//! helo against a DNS server in a thread: each policy's tests, texts and verdicts, the
//! notes, a temporary DNS failure never a 5xx, X-HELO.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::connection::{Connection, Greeting};
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving_failing};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, Verdict, testing};
use crate::transaction::Transaction;

fn server() -> FakeServer {
    let a = |s: &str| Data::A(s.parse::<Ipv4Addr>().unwrap());
    let ptr = |s: &str| Data::Ptr(s.into());
    serving_failing(
        &[
            ("mail.example.org", a("192.0.2.10")),
            (
                "mail.example.org",
                Data::Aaaa("2001:db8::10".parse::<Ipv6Addr>().unwrap()),
            ),
            ("10.2.0.192.in-addr.arpa", ptr("mail.example.org")),
            ("20.2.0.192.in-addr.arpa", ptr("other.example.com")),
            ("20.100.51.198.in-addr.arpa", ptr("other.example.com")),
            ("txtonly.example.org", Data::Txt(vec![b"x".to_vec()])),
            (
                "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
                ptr("mail.example.org"),
            ),
        ],
        &["helo-servfail.example.org", "40.2.0.192.in-addr.arpa"],
    )
}

struct Session {
    chain: Chain,
    config: crate::config::Config,
    _dir: tempfile::TempDir,
}

fn session(server: &FakeServer, args: &[&str], files: &[(&str, &str)]) -> Session {
    let (dir, config) = config_for(server, files);
    let plugin = new(&testing::spec("helo", args), &config).unwrap();
    let mut chain = Chain::new();
    chain.push(testing::spec("helo", args), plugin);
    Session {
        chain,
        config,
        _dir: dir,
    }
}

impl Session {
    fn helo_conn(&self, conn: Connection, host: &str) -> testing::Ran {
        let args = Args::Hello { host, extra: &[] };
        testing::run_on(
            &self.chain,
            &self.config,
            Hook::Helo,
            args,
            conn,
            Transaction::new("1.0".into()),
        )
    }

    fn helo(&self, ip: &str, host: &str) -> Outcome {
        self.helo_conn(Connection::new("1", ip), host).out
    }
}

fn refused(text: &str) -> Outcome {
    Outcome::with(Verdict::DenyDisconnect, text)
}

#[test]
fn badhelo_names_and_patterns_every_line_counts() {
    let server = server();
    let s = session(
        &server,
        &[],
        &[("badhelo", "^foo\\d+$\nspammer.example\n!\\.(example|org)$\n")],
    );
    assert_eq!(
        s.helo("192.0.2.30", "SPAMMER.Example"),
        refused("I do not believe you are SPAMMER.Example.")
    );
    assert_eq!(
        s.helo("192.0.2.30", "foo42"),
        refused("Your HELO hostname is not allowed")
    );
    assert_eq!(
        s.helo("192.0.2.30", "host.other"),
        refused("Your HELO hostname is not allowed"),
        "a negated pattern refuses what does not match"
    );
    assert_eq!(s.helo("192.0.2.30", "good.example"), Outcome::declined());
    assert!(server.asked().is_empty(), "lenient asks no DNS");
}

#[test]
fn an_invalid_pattern_is_a_start_up_error() {
    let server = server();
    let (_dir, config) = config_for(&server, &[("badhelo", "(unclosed\n")]);
    assert!(new(&testing::spec("helo", &[]), &config).is_err());
    let (_dir, config) = config_for(&server, &[]);
    for args in [
        &["policy", "paranoid"][..],
        &["reject_type", "x"],
        &["timeout", "0"],
        &["x", "1"],
    ] {
        assert!(new(&testing::spec("helo", args), &config).is_err(), "{args:?}");
    }
}

#[test]
fn lenient_localhost_literals_and_plain_addresses() {
    let server = server();
    let s = session(&server, &[], &[]);
    assert_eq!(
        s.helo("192.0.2.30", "localhost"),
        refused("You are not localhost")
    );
    assert_eq!(s.helo("127.0.0.1", "LocalHost"), Outcome::declined());
    assert_eq!(s.helo("::1", "localhost"), Outcome::declined());
    assert_eq!(
        s.helo("192.0.2.30", "[192.0.2.99]"),
        refused("Forged IPs not accepted here")
    );
    assert_eq!(s.helo("192.0.2.30", "[192.0.2.30]"), Outcome::declined());
    assert_eq!(s.helo("::ffff:192.0.2.30", "[192.0.2.30]"), Outcome::declined());
    assert_eq!(
        s.helo("2001:db8::30", "[IPv6:2001:db8::99]"),
        refused("Forged IPs not accepted here")
    );
    assert_eq!(s.helo("2001:db8::30", "[IPv6:2001:DB8::30]"), Outcome::declined());
    let plain = refused("Plain IP is invalid HELO hostname (RFC 2821)");
    assert_eq!(s.helo("192.0.2.30", "192.0.2.30"), plain);
    assert_eq!(s.helo("2001:db8::30", "2001:db8::30"), plain);
    assert_eq!(s.helo("192.0.2.30", "mailhost"), Outcome::declined());
}

#[test]
fn reject_and_reject_type() {
    let server = server();
    let s = session(&server, &["reject_type", "temp"], &[]);
    assert_eq!(
        s.helo("192.0.2.30", "localhost"),
        Outcome::with(Verdict::DenySoft, "You are not localhost")
    );
    let s = session(&server, &["reject", "0"], &[]);
    assert_eq!(s.helo("192.0.2.30", "localhost"), Outcome::declined());
    let s = session(&server, &["reject", "naughty"], &[]);
    let ran = s.helo_conn(Connection::new("1", "192.0.2.30"), "localhost");
    assert_eq!(ran.out, Outcome::declined());
    assert_eq!(ran.conn.notes.get("naughty").unwrap(), "You are not localhost");
    assert_eq!(ran.conn.notes.get("naughty_reject_type").unwrap(), "disconnect");
}

#[test]
fn relay_clients_are_not_checked() {
    let server = server();
    let s = session(&server, &["policy", "strict"], &[]);
    let mut conn = Connection::new("1", "192.0.2.30");
    conn.relay_client = true;
    assert_eq!(s.helo_conn(conn, "localhost").out, Outcome::declined());
    assert!(server.asked().is_empty());
}

#[test]
fn rfc_names_must_exist_and_the_client_must_have_reverse_dns() {
    let server = server();
    let s = session(&server, &["policy", "rfc"], &[]);
    assert_eq!(
        s.helo("192.0.2.10", "mailhost"),
        refused("HELO name is not fully qualified. Read RFC 2821")
    );
    assert_eq!(
        s.helo("192.0.2.10", "mail_host.example.org"),
        refused("HELO name contains invalid FQDN characters. Read RFC 1035")
    );
    assert_eq!(
        s.helo("192.0.2.10", "nx.example.org"),
        refused("HELO hostname does not exist")
    );
    assert_eq!(
        s.helo("192.0.2.10", "txtonly.example.org"),
        refused("HELO hostname did not resolve")
    );
    assert_eq!(
        s.helo("192.0.2.10", "x.helo-servfail.example.org"),
        Outcome::declined(),
        "a forward lookup that fails temporarily is skipped"
    );
    assert_eq!(
        s.helo("192.0.2.30", "mail.example.org"),
        refused("no rDNS for 192.0.2.30")
    );
    assert_eq!(s.helo("192.0.2.10", "mail.example.org"), Outcome::declined());
    assert_eq!(s.helo("192.0.2.10", "[192.0.2.10]"), Outcome::declined());
    assert_eq!(s.helo("2001:db8::10", "[IPv6:2001:db8::10]"), Outcome::declined());
}

#[test]
fn a_reverse_lookup_that_fails_temporarily_refuses_temporarily() {
    let server = server();
    let s = session(&server, &["policy", "rfc"], &[]);
    assert_eq!(
        s.helo("192.0.2.40", "mail.example.org"),
        Outcome::with(
            Verdict::DenySoftDisconnect,
            "error getting reverse DNS for 192.0.2.40"
        )
    );
    let s = session(&server, &["policy", "rfc", "reject_type", "perm"], &[]);
    assert_eq!(
        s.helo("192.0.2.40", "mail.example.org").verdict,
        Verdict::DenySoft
    );
}

#[test]
fn rfc_asks_name_and_reverse_together() {
    let server = server();
    let s = session(&server, &["policy", "rfc"], &[]);
    let ran = s.helo_conn(Connection::new("1", "192.0.2.10"), "mail.example.org");
    assert_eq!(ran.out, Outcome::declined());
    let mut asked = server.asked();
    asked.sort();
    assert_eq!(
        asked,
        [
            "10.2.0.192.in-addr.arpa/12",
            "mail.example.org/1",
            "mail.example.org/28"
        ]
    );
    assert_eq!(ran.conn.notes.get("helo_forward_match").unwrap(), "1");
    assert_eq!(ran.conn.notes.get("helo_reverse_match").unwrap(), "1");
}

#[test]
fn strict_needs_a_forward_or_reverse_match_and_no_literal() {
    let server = server();
    let s = session(&server, &["policy", "strict"], &[]);
    assert_eq!(s.helo("192.0.2.10", "mail.example.org"), Outcome::declined());
    assert_eq!(
        s.helo("192.0.2.20", "mail.example.org"),
        Outcome::declined(),
        "same /24 as an address of the name"
    );
    assert_eq!(
        s.helo("198.51.100.20", "mail.example.org"),
        refused("That HELO hostname fails FCrDNS")
    );
    assert_eq!(
        s.helo("2001:db8::10", "mail.example.org"),
        Outcome::declined(),
        "an AAAA record matches"
    );
    assert_eq!(
        s.helo("192.0.2.10", "[192.0.2.10]"),
        refused("RFC 2821 allows an address literal, but we do not")
    );
    assert_eq!(
        s.helo("2001:db8::10", "[IPv6:2001:db8::10]"),
        refused("RFC 2821 allows an address literal, but we do not")
    );
}

#[test]
fn data_post_puts_one_x_helo_on_top() {
    let server = server();
    let s = session(&server, &["reject", "0"], &[]);
    let mut conn = Connection::new("1", "192.0.2.30");
    conn.hello = Some(Greeting {
        esmtp: true,
        host: "client.example\r\nInjected: yes".into(),
    });
    let mut txn = Transaction::new("1.0".into());
    txn.header.add("Subject", "t", None);
    txn.header.add("X-HELO", "forged.example", None);
    let ran = testing::run_on(&s.chain, &s.config, Hook::DataPost, Args::None, conn, txn);
    assert_eq!(ran.out, Outcome::declined());
    let fields: Vec<String> = ran.txn.header.fields().map(|f| f.name.to_string()).collect();
    assert_eq!(fields, ["X-HELO", "Subject"]);
    let value = ran.txn.header.get("X-HELO").unwrap().into_owned();
    assert!(value.contains("client.example"), "{value:?}");
    assert!(!value.contains('\r'), "{value:?}");
}
