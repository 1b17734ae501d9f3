//! fcrdns against a DNS server in a thread: each iprev result, the note it writes, IPv6,
//! the names asked together, `reject`.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::connection::Connection;
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving_failing};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, Outcome, Verdict, testing};
use crate::transaction::Transaction;

const V6_PTR: &str = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";

fn server() -> FakeServer {
    let a = |s: &str| Data::A(s.parse::<Ipv4Addr>().unwrap());
    let ptr = |s: &str| Data::Ptr(s.into());
    serving_failing(
        &[
            ("10.2.0.192.in-addr.arpa", ptr("mail.example.org")),
            ("mail.example.org", a("192.0.2.10")),
            ("20.2.0.192.in-addr.arpa", ptr("mismatch.example.com")),
            ("20.100.51.198.in-addr.arpa", ptr("mismatch.example.com")),
            ("mismatch.example.com", a("198.51.100.99")),
            ("11.2.0.192.in-addr.arpa", ptr("first.example.org")),
            ("11.2.0.192.in-addr.arpa", ptr("second.example.org")),
            ("second.example.org", a("192.0.2.11")),
            ("12.2.0.192.in-addr.arpa", ptr("bad;name(x).example")),
            ("bad;name(x).example", a("192.0.2.12")),
            ("13.2.0.192.in-addr.arpa", ptr("x.servfail.test")),
            (V6_PTR, ptr("v6host.example.org")),
            (
                "v6host.example.org",
                Data::Aaaa("2001:db8::10".parse::<Ipv6Addr>().unwrap()),
            ),
        ],
        &["40.2.0.192.in-addr.arpa", "servfail.test"],
    )
}

fn connect_on(server: &FakeServer, args: &[&str], conn: Connection) -> testing::Ran {
    let (_dir, config) = config_for(server, &[]);
    let mut chain = Chain::new();
    chain.push(
        testing::spec("fcrdns", args),
        new(&testing::spec("fcrdns", args), &config).unwrap(),
    );
    testing::run_on(
        &chain,
        &config,
        Hook::Connect,
        Args::None,
        conn,
        Transaction::new("1.0".into()),
    )
}

/// The `authentication_results` note a connection from `ip` gets.
fn iprev(server: &FakeServer, ip: &str) -> String {
    let ran = connect_on(server, &[], Connection::new("1", ip));
    assert_eq!(ran.out, Outcome::declined(), "never refuses by default");
    ran.conn
        .notes
        .get("authentication_results")
        .cloned()
        .unwrap_or_default()
}

#[test]
fn each_result() {
    let server = server();
    assert_eq!(
        iprev(&server, "192.0.2.10"),
        "iprev=pass policy.iprev=192.0.2.10 (mail.example.org)"
    );
    assert_eq!(iprev(&server, "192.0.2.20"), "iprev=fail policy.iprev=192.0.2.20");
    assert_eq!(
        iprev(&server, "198.51.100.20"),
        "iprev=fail policy.iprev=198.51.100.20",
        "the same /24 is not the same address"
    );
    assert_eq!(
        iprev(&server, "192.0.2.30"),
        "iprev=permerror policy.iprev=192.0.2.30"
    );
    assert_eq!(
        iprev(&server, "192.0.2.40"),
        "iprev=temperror policy.iprev=192.0.2.40"
    );
    assert_eq!(
        iprev(&server, "192.0.2.13"),
        "iprev=temperror policy.iprev=192.0.2.13",
        "the forward lookup failed temporarily"
    );
    assert_eq!(
        iprev(&server, "2001:db8::10"),
        "iprev=pass policy.iprev=2001:db8::10 (v6host.example.org)"
    );
    assert_eq!(
        iprev(&server, "::ffff:192.0.2.10"),
        "iprev=pass policy.iprev=192.0.2.10 (mail.example.org)"
    );
    assert_eq!(iprev(&server, "0.0.0.0"), "", "no address, nothing to say");
}

#[test]
fn every_name_is_tried_and_asked_at_once() {
    let server = server();
    assert_eq!(
        iprev(&server, "192.0.2.11"),
        "iprev=pass policy.iprev=192.0.2.11 (second.example.org)"
    );
    let asked = server.asked();
    assert_eq!(asked.len(), 5, "{asked:?}");
    assert_eq!(asked[0], "11.2.0.192.in-addr.arpa/12");
}

#[test]
fn a_name_unfit_for_a_comment_is_left_out() {
    let server = server();
    assert_eq!(iprev(&server, "192.0.2.12"), "iprev=pass policy.iprev=192.0.2.12");
}

#[test]
fn the_note_is_appended_to() {
    let server = server();
    let mut conn = Connection::new("1", "192.0.2.30");
    conn.notes
        .insert("authentication_results".into(), "spf=none".into());
    let ran = connect_on(&server, &[], conn);
    assert_eq!(
        ran.conn.notes.get("authentication_results").unwrap(),
        "spf=none; iprev=permerror policy.iprev=192.0.2.30"
    );
}

#[test]
fn reject_refuses_fail_and_permerror_never_temperror() {
    let server = server();
    let run = |args: &[&str], ip: &str| connect_on(&server, args, Connection::new("1", ip)).out;
    assert_eq!(
        run(&["reject", "1"], "192.0.2.30"),
        Outcome::with(
            Verdict::DenySoft,
            "No forward-confirmed reverse DNS for 192.0.2.30 (iprev=permerror)"
        )
    );
    assert_eq!(
        run(&["reject", "1", "reject_type", "perm"], "192.0.2.20").verdict,
        Verdict::Deny
    );
    assert_eq!(
        run(&["reject", "1", "reject_type", "perm"], "192.0.2.40"),
        Outcome::declined()
    );
    assert_eq!(run(&["reject", "1"], "192.0.2.10"), Outcome::declined());
}

#[test]
fn relay_clients_are_not_looked_up() {
    let server = server();
    let mut conn = Connection::new("1", "192.0.2.30");
    conn.relay_client = true;
    let ran = connect_on(&server, &[], conn);
    assert!(!ran.conn.notes.contains_key("authentication_results"));
    assert!(server.asked().is_empty());
}
