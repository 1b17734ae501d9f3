//! uribl against a DNS server in a thread: registrable domains, addresses, masks,
//! actions, the whitelist, what is not a listing.

use std::net::Ipv4Addr;

use super::*;
use crate::connection::Connection;
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, testing};
use crate::transaction::{Spool, Transaction};

fn server() -> FakeServer {
    let a = |n: u8| Data::A(Ipv4Addr::new(127, 0, 0, n));
    serving(&[
        ("example.com.uribl.test", a(2)),
        (
            "example.com.uribl.test",
            Data::Txt(vec![b"example.com is listed".to_vec()]),
        ),
        ("10.2.0.192.uribl.test", a(4)),
        ("example.co.uk.uribl.test", a(2)),
        ("errorcode.net.uribl.test", a(1)),
        ("example.net.multi.test", a(8)),
    ])
}

/// The end of DATA for a message with this body; the outcome and the header block.
fn data_post(server: &FakeServer, args: &[&str], files: &[(&str, &str)], body: &str) -> (Outcome, String) {
    let (dir, config) = config_for(server, files);
    let mut chain = Chain::new();
    chain.push(
        testing::spec("uribl", args),
        new(&testing::spec("uribl", args), &config).unwrap(),
    );
    let mut txn = Transaction::new("1.1".into());
    txn.header.push_line(b"Subject: t\n");
    let mut spool = Spool::new(dir.path(), 1 << 20);
    spool.write(b"\n").unwrap();
    spool.write(body.as_bytes()).unwrap();
    txn.body = Some(spool);
    let ran = testing::run_on(
        &chain,
        &config,
        Hook::DataPost,
        Args::None,
        Connection::new("1", "192.0.2.30"),
        txn,
    );
    (
        ran.out,
        String::from_utf8_lossy(ran.txn.header.as_bytes()).into_owned(),
    )
}

#[test]
fn the_registrable_domain_of_a_uri_is_looked_up() {
    let s = server();
    let zones = [("uribl_zones", "uribl.test\n")];
    let (out, header) = data_post(
        &s,
        &["action", "deny"],
        &zones,
        "visit http://www.Example.com/offer now\n",
    );
    assert_eq!(
        out,
        Outcome::with(Verdict::Deny, "example.com in uribl.test: example.com is listed")
    );
    assert!(!header.contains(HEADER));
    assert_eq!(
        s.asked(),
        ["example.com.uribl.test/1", "example.com.uribl.test/16"]
    );
    let (out, _) = data_post(
        &s,
        &["action", "denysoft"],
        &zones,
        "mail me at a@shop.example.co.uk\n",
    );
    assert_eq!(
        out,
        Outcome::with(Verdict::DenySoft, "example.co.uk in uribl.test: 127.0.0.2")
    );
}

#[test]
fn addresses_and_the_default_action_add_a_header() {
    let s = server();
    let (out, header) = data_post(
        &s,
        &[],
        &[("uribl_zones", "uribl.test\n")],
        "see http://192.0.2.10/x\n",
    );
    assert_eq!(out, Outcome::declined());
    assert!(
        header.starts_with("X-URIBL-Match: 10.2.0.192 in uribl.test: 127.0.0.4\n"),
        "{header}"
    );
}

#[test]
fn masks_select_lists_and_zone_actions_win() {
    let s = server();
    let body = "see http://192.0.2.10/x and http://shop.example.net/\n";
    let (out, _) = data_post(&s, &[], &[("uribl_zones", "uribl.test 2 deny\n")], body);
    assert_eq!(out, Outcome::declined(), "127.0.0.4 & 2 = 0");
    let (out, _) = data_post(&s, &[], &[("uribl_zones", "uribl.test 2,4 deny\n")], body);
    assert_eq!(out.verdict, Verdict::Deny);
    let (out, _) = data_post(
        &s,
        &["action", "deny"],
        &[("uribl_zones", "multi.test -1 log\n")],
        body,
    );
    assert_eq!(out, Outcome::declined(), "the zone's action");
}

#[test]
fn whitelisted_unknown_and_error_answers_are_no_match() {
    let s = server();
    let zones = ("uribl_zones", "uribl.test deny\n");
    let files = [zones, ("uribl_whitelist_domains", "example.com\n")];
    let (out, _) = data_post(&s, &["action", "deny"], &files, "http://www.example.com/\n");
    assert_eq!(out, Outcome::declined());
    let (out, _) = data_post(
        &s,
        &["action", "deny"],
        &[zones],
        "http://errorcode.net/ notes.txt\n",
    );
    assert_eq!(out, Outcome::declined(), "127.0.0.1 is an operator's error code");
    assert!(s.asked().contains(&"errorcode.net.uribl.test/1".to_string()));
    assert!(
        !s.asked().iter().any(|q| q.contains("notes.txt")),
        "txt is no top-level domain"
    );
}

#[test]
fn the_public_suffix_list_from_the_config() {
    let s = server();
    let files = [
        ("uribl_zones", "uribl.test\n"),
        ("public_suffix_list", "com\n*.example.com\n"),
    ];
    let (out, _) = data_post(&s, &["action", "deny"], &files, "http://a.b.example.com/\n");
    assert_eq!(
        out,
        Outcome::declined(),
        "b.example.com is a public suffix under *.example.com"
    );
    assert!(s.asked().contains(&"a.b.example.com.uribl.test/1".to_string()));
}

#[test]
fn arguments_and_zone_lines_are_checked_when_loaded() {
    let s = server();
    let (_dir, config) = config_for(&s, &[("uribl_zones", "uribl.test 2,8 deny\n")]);
    let ok = |args: &[&str]| new(&testing::spec("uribl", args), &config).is_ok();
    assert!(ok(&[
        "action",
        "log",
        "timeout",
        "5",
        "check-headers",
        "1",
        "mask",
        "8"
    ]));
    assert!(!ok(&["action", "reject"]) && !ok(&["timeout", "0"]) && !ok(&["colour", "red"]));
    for bad in [
        "uribl.test 0x10\n",
        "uribl.test 2 reject\n",
        "uribl.test 2 deny extra\n",
    ] {
        let (_dir, config) = config_for(&s, &[("uribl_zones", bad)]);
        assert!(new(&testing::spec("uribl", &[]), &config).is_err(), "{bad:?}");
    }
}
