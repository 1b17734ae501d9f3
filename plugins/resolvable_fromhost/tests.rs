//! resolvable_fromhost against a DNS server in a thread: MX then A/AAAA, null MX, refused
//! networks, a temporary DNS failure never a 5xx, the notes, the round trips.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;
use crate::address::Address;
use crate::connection::Connection;
use crate::plugin::services::dns::fake::{FakeServer, config_for, serving_failing};
use crate::plugin::services::dns::wire::Data;
use crate::plugin::{Chain, testing};
use crate::transaction::Transaction;

fn server() -> FakeServer {
    let a = |s: &str| Data::A(s.parse::<Ipv4Addr>().unwrap());
    let mx = |p: u16, x: &str| Data::Mx(p, x.into());
    serving_failing(
        &[
            ("example.org", mx(10, "mail.example.org")),
            ("mail.example.org", a("192.0.2.10")),
            ("backup.example", mx(20, "mail.example.org")),
            ("backup.example", mx(10, "nxhost.example.org")),
            ("nomx.example.org", a("192.0.2.11")),
            (
                "v6only.example.org",
                Data::Aaaa("2001:db8::12".parse::<Ipv6Addr>().unwrap()),
            ),
            ("nullmx.example.org", mx(0, ".")),
            ("badmx.example.org", mx(10, "nxhost.example.org")),
            ("privmx.example.org", mx(10, "priv.example.org")),
            ("priv.example.org", a("10.1.2.3")),
            ("priva.example.org", a("127.0.0.5")),
            ("mxfail.example.org", mx(10, "mx.servfail.test")),
            ("ipmx.example.org", mx(10, "192.0.2.25")),
            ("txtonly.example.org", Data::Txt(vec![b"v=spf1 -all".to_vec()])),
        ],
        &["servfail.test", "servfail.example.org"],
    )
}

struct Session {
    chain: Chain,
    config: crate::config::Config,
    _dir: tempfile::TempDir,
}

fn session(server: &FakeServer, args: &[&str], files: &[(&str, &str)]) -> Session {
    let (dir, config) = config_for(server, files);
    let plugin = new(&testing::spec("resolvable_fromhost", args), &config).unwrap();
    let mut chain = Chain::new();
    chain.push(testing::spec("resolvable_fromhost", args), plugin);
    Session {
        chain,
        config,
        _dir: dir,
    }
}

impl Session {
    fn mail(&self, from: &str) -> testing::Ran {
        let addr = Address::parse(from).unwrap();
        let args = Args::Address {
            addr: &addr,
            params: &Vec::new(),
        };
        testing::run_on(
            &self.chain,
            &self.config,
            Hook::Mail,
            args,
            Connection::new("1", "192.0.2.30"),
            Transaction::new("1.0".into()),
        )
    }

    fn out(&self, from: &str) -> Outcome {
        self.mail(from).out
    }

    fn note(&self, from: &str) -> String {
        let ran = self.mail(from);
        ran.txn
            .notes
            .get("resolvable_fromhost")
            .cloned()
            .unwrap_or_default()
    }
}

const TEMP: &str = "Temporary address resolution failure (#4.4.3)";

#[test]
fn mx_then_a_or_aaaa() {
    let server = server();
    let s = session(&server, &[], &[]);
    for (from, note) in [
        ("<a@example.org>", "mx"),
        ("<a@backup.example>", "mx"),
        ("<a@nomx.example.org>", "a"),
        ("<a@v6only.example.org>", "a"),
        ("<a@ipmx.example.org>", "mx"),
        ("<a@[192.0.2.1]>", "ip"),
        ("<a@[IPv6:2001:db8::1]>", "ip"),
        ("<>", "null"),
    ] {
        let ran = s.mail(from);
        assert_eq!(ran.out, Outcome::declined(), "{from}");
        assert_eq!(ran.txn.notes.get("resolvable_fromhost").unwrap(), note, "{from}");
    }
    assert_eq!(
        s.mail("<a@example.org>")
            .txn
            .notes
            .get("resolvable_fromhost_host")
            .unwrap(),
        "example.org"
    );
}

#[test]
fn definite_failures_follow_reject_type() {
    let server = server();
    let s = session(&server, &[], &[]);
    let soft = |t: &str| Outcome::with(Verdict::DenySoft, t);
    assert_eq!(
        s.out("<a@badmx.example.org>"),
        soft("FQDN required in the envelope sender (#4.1.8)")
    );
    assert_eq!(
        s.out("<postmaster>"),
        soft("FQDN required in the envelope sender (#4.1.8)")
    );
    assert_eq!(
        s.out("<a@nodns.example.org>"),
        soft("Sender domain does not exist (#4.1.8)")
    );
    assert_eq!(
        s.out("<a@txtonly.example.org>"),
        soft("Sender domain has no MX or address records (#4.1.8)")
    );
    assert_eq!(
        s.note("<a@badmx.example.org>"),
        "invalid MX for badmx.example.org"
    );
    assert_eq!(s.note("<postmaster>"), "unparsable host");
    let s = session(&server, &["reject_type", "perm"], &[]);
    assert_eq!(
        s.out("<a@nodns.example.org>"),
        Outcome::with(Verdict::Deny, "Sender domain does not exist (#5.1.8)")
    );
    let s = session(&server, &["reject_type", "disconnect"], &[]);
    assert_eq!(s.out("<a@badmx.example.org>").verdict, Verdict::DenyDisconnect);
}

#[test]
fn a_null_mx_is_refused_for_good() {
    let server = server();
    for args in [&[][..], &["reject_type", "perm"], &["reject_type", "temp"]] {
        let s = session(&server, args, &[]);
        assert_eq!(
            s.out("<a@nullmx.example.org>"),
            Outcome::with(Verdict::Deny, "Sender address has null MX (#5.7.27)"),
            "{args:?}"
        );
    }
    let s = session(&server, &["reject_type", "temp_disconnect"], &[]);
    assert_eq!(s.out("<a@nullmx.example.org>").verdict, Verdict::DenyDisconnect);
    let s = session(&server, &["reject", "0"], &[]);
    assert_eq!(s.out("<a@nullmx.example.org>"), Outcome::declined());
    assert_eq!(s.note("<a@nullmx.example.org>"), "null MX");
}

#[test]
fn a_temporary_dns_failure_is_never_a_5xx() {
    let server = server();
    for args in [&[][..], &["reject_type", "perm"], &["reject_type", "hard"]] {
        let s = session(&server, args, &[]);
        for from in ["<a@servfail.example.org>", "<a@mxfail.example.org>"] {
            assert_eq!(
                s.out(from),
                Outcome::with(Verdict::DenySoft, TEMP),
                "{args:?} {from}"
            );
        }
    }
    let s = session(&server, &["reject_type", "disconnect"], &[]);
    assert_eq!(
        s.out("<a@servfail.example.org>").verdict,
        Verdict::DenySoftDisconnect
    );
}

#[test]
fn refused_networks_for_exchangers_addresses_and_literals() {
    let server = server();
    let s = session(&server, &[], &[]);
    assert_eq!(
        s.out("<a@privmx.example.org>"),
        Outcome::declined(),
        "no list, nothing refused"
    );
    let list = "# networks\n10.0.0.0/8 private\n127.0.0.0/8\nfc00::/7\n192.0.2.1\n";
    let s = session(&server, &[], &[("invalid_resolvable_fromhost", list)]);
    assert_eq!(
        s.out("<a@privmx.example.org>"),
        Outcome::with(Verdict::DenySoft, "FQDN required in the envelope sender (#4.1.8)")
    );
    assert_eq!(
        s.out("<a@priva.example.org>"),
        Outcome::with(
            Verdict::DenySoft,
            "Sender domain resolves only to refused addresses (#4.1.8)"
        )
    );
    assert_eq!(s.out("<a@[192.0.2.1]>").verdict, Verdict::DenySoft);
    assert_eq!(s.out("<a@[IPv6:fd00::1]>").verdict, Verdict::DenySoft);
    assert_eq!(s.out("<a@example.org>"), Outcome::declined());
}

#[test]
fn a_bad_line_or_argument_is_a_start_up_error() {
    let server = server();
    let (_dir, config) = config_for(&server, &[("invalid_resolvable_fromhost", "10.0.0.0/33\n")]);
    assert!(new(&testing::spec("resolvable_fromhost", &[]), &config).is_err());
    let (_dir, config) = config_for(&server, &[]);
    for args in [
        &["reject_type", "x"][..],
        &["timeout", "x"],
        &["policy", "x"],
        &["reject"],
    ] {
        assert!(
            new(&testing::spec("resolvable_fromhost", args), &config).is_err(),
            "{args:?}"
        );
    }
}

#[test]
fn reject_0_logs_reject_naughty_defers() {
    let server = server();
    let s = session(&server, &["reject", "0"], &[]);
    assert_eq!(s.out("<a@badmx.example.org>"), Outcome::declined());
    let s = session(&server, &["reject", "naughty"], &[]);
    let ran = s.mail("<a@badmx.example.org>");
    assert_eq!(ran.out, Outcome::declined());
    assert_eq!(
        ran.conn.notes.get("naughty").unwrap(),
        "FQDN required in the envelope sender (#4.1.8)"
    );
    assert_eq!(ran.conn.notes.get("naughty_reject_type").unwrap(), "soft");
}

#[test]
fn at_most_two_round_trips() {
    let server = server();
    let s = session(&server, &[], &[]);
    assert_eq!(s.out("<a@backup.example>"), Outcome::declined());
    let asked = server.asked();
    // MX, A, AAAA of the domain, then A and AAAA of both exchangers.
    assert_eq!(asked.len(), 7, "{asked:?}");
}

#[test]
fn a_refused_address_with_a_failed_lookup_beside_it_defers() {
    use crate::plugin::services::dns::fake::{Act, reply};
    use crate::plugin::services::dns::wire::rtype;
    // The MX lookup (or the AAAA lookup) fails; the A record is in a refused network.
    // The failed lookup might have found a usable exchanger or address: a DNS failure,
    // so 4xx even with reject_type perm (README Differences 83).
    let server = FakeServer::start(|s| {
        let q = &s.question;
        let failing = match q.name.as_str() {
            "mxfail.example" => rtype::MX,
            _ => rtype::AAAA,
        };
        let answer = if q.rtype == failing {
            reply(s.id, q, 2, false, &[])
        } else if q.rtype == rtype::A {
            reply(
                s.id,
                q,
                0,
                false,
                &[(&q.name, Data::A(Ipv4Addr::new(127, 0, 0, 5)))],
            )
        } else {
            reply(s.id, q, 0, false, &[])
        };
        vec![Act::Send(answer)]
    });
    let list = ("invalid_resolvable_fromhost", "127.0.0.0/8\n");
    let s = session(&server, &["reject_type", "perm"], &[list]);
    for from in ["<a@mxfail.example>", "<a@aaaafail.example>"] {
        assert_eq!(s.out(from), Outcome::with(Verdict::DenySoft, TEMP), "{from}");
    }
}
