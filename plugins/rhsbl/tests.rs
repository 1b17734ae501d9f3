//! rhsbl against a DNS server in a thread: sender domain before HELO name, TXT and A
//! zones, literals and domain-less senders, arguments.

use std::net::Ipv4Addr;

use super::*;
use crate::address::Address;
use crate::connection::{Connection, Greeting};
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, Verdict, testing};
use crate::transaction::Transaction;

fn server() -> FakeServer {
    let a = |n: u8| Data::A(Ipv4Addr::new(127, 0, 0, n));
    let txt = |t: &str| Data::Txt(vec![t.as_bytes().to_vec()]);
    serving(&[
        ("spammer.example.rbl.test", a(2)),
        ("spammer.example.rbl.test", txt("spammer.example is listed")),
        ("badhelo.example.rbl.test", txt("badhelo.example is listed")),
        ("aonly.example.rbl.test", a(2)),
        ("error.example.rbl.test", a(1)),
    ])
}

fn mail(server: &FakeServer, args: &[&str], zones: &str, helo: &str, from: &str) -> Outcome {
    let (_dir, config) = config_for(server, &[("rhsbl_zones", zones)]);
    let mut chain = Chain::new();
    chain.push(
        testing::spec("rhsbl", args),
        new(&testing::spec("rhsbl", args), &config).unwrap(),
    );
    let mut conn = Connection::new("1", "192.0.2.30");
    conn.hello = Some(Greeting {
        esmtp: false,
        host: helo.into(),
    });
    let addr = Address::parse(from).unwrap();
    let args = Args::Address {
        addr: &addr,
        params: &Vec::new(),
    };
    testing::run_on(
        &chain,
        &config,
        Hook::Mail,
        args,
        conn,
        Transaction::new("1.0".into()),
    )
    .out
}

#[test]
fn the_sender_domain_and_then_the_helo_name() {
    let s = server();
    let out = mail(&s, &[], "rbl.test\n", "good.example", "<x@Spammer.Example>");
    let text = "Mail from spammer.example rejected because it spammer.example is listed";
    assert_eq!(out, Outcome::with(Verdict::Deny, text));
    let out = mail(&s, &[], "rbl.test\n", "BadHelo.example", "<x@good.example>");
    let text = "Mail from HELO badhelo.example rejected because it badhelo.example is listed";
    assert_eq!(out, Outcome::with(Verdict::Deny, text));
    let out = mail(&s, &[], "rbl.test\n", "badhelo.example", "<x@spammer.example>");
    assert!(
        out.first_msg().unwrap().starts_with("Mail from spammer.example"),
        "sender first"
    );
    assert_eq!(
        mail(&s, &[], "rbl.test\n", "good.example", "<x@good.example>"),
        Outcome::declined()
    );
}

#[test]
fn a_zones_with_their_reason_and_what_is_not_a_listing() {
    let s = server();
    let zones = "rbl.test does not support abuse@domain\n";
    let out = mail(&s, &[], zones, "h.example", "<x@aonly.example>");
    let text = "Mail from aonly.example rejected because it does not support abuse@domain";
    assert_eq!(out, Outcome::with(Verdict::Deny, text));
    assert_eq!(
        mail(&s, &[], zones, "h.example", "<x@error.example>"),
        Outcome::declined()
    );
    assert_eq!(
        mail(&s, &[], "rbl.test\n", "h.example", "<x@aonly.example>"),
        Outcome::declined(),
        "no TXT"
    );
}

#[test]
fn nothing_to_check() {
    let s = server();
    for from in ["<>", "<postmaster>", "<x@[192.0.2.1]>", "<x@[IPv6:2001:db8::1]>"] {
        assert_eq!(
            mail(&s, &[], "rbl.test\n", "[192.0.2.30]", from),
            Outcome::declined(),
            "{from}"
        );
    }
    assert_eq!(
        mail(&s, &[], "", "badhelo.example", "<x@spammer.example>"),
        Outcome::declined()
    );
    assert!(s.asked().is_empty());
}

#[test]
fn old_and_new_arguments() {
    let s = server();
    let out = mail(
        &s,
        &["disconnect"],
        "rbl.test\n",
        "h.example",
        "<x@spammer.example>",
    );
    assert_eq!(out.verdict, Verdict::DenyDisconnect);
    let out = mail(
        &s,
        &["reject_type", "temp", "dns_timeout", "2"],
        "rbl.test\n",
        "h.example",
        "<x@spammer.example>",
    );
    assert_eq!(out.verdict, Verdict::DenySoft);
    let (_dir, config) = config_for(&s, &[("rhsbl_zones", "rbl.test\n")]);
    assert!(
        new(&testing::spec("rhsbl", &["perm"]), &config).is_ok(),
        "any other single word: perm"
    );
    assert!(new(&testing::spec("rhsbl", &["reject_type", "x"]), &config).is_err());
    assert!(new(&testing::spec("rhsbl", &["timeout", "x"]), &config).is_err());
}

#[test]
fn helo_names_to_check() {
    let h = |sender: Option<&str>, helo: &str| -> Vec<(String, bool)> { hosts(sender, helo) };
    assert_eq!(
        h(Some("a.example"), "A.Example."),
        vec![("a.example".to_string(), false)]
    );
    assert_eq!(h(None, "localhost"), vec![]);
    assert_eq!(h(Some("[192.0.2.1]"), "[192.0.2.1]"), vec![]);
    assert_eq!(
        h(Some("bücher.example"), "h.example"),
        vec![("h.example".to_string(), true)]
    );
}
