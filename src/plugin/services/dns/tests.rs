//! The resolver against a server in a thread ([`super::fake`]): answers, matching and
//! anti-spoofing rules, fail-over, TCP retry, timeouts, budget, cache, parallel queries.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use super::fake::{Act, FakeServer, Seen, reply};
use super::wire::{Data, Question, rcode, rtype};
use super::*;

const SERVFAIL: u8 = 2;

fn settings(servers: &[SocketAddr], timeout_ms: u64, budget_ms: u64) -> Settings {
    Settings {
        servers: servers.to_vec(),
        timeout: Duration::from_millis(timeout_ms),
        budget: Duration::from_millis(budget_ms),
    }
}

fn dns(servers: &[SocketAddr]) -> Dns {
    Dns::with_settings(settings(servers, 1000, 10_000))
}

/// A zone: `listed.test` A 127.0.0.2 and TXT, `alias.test` CNAME to it, `empty.test`
/// exists without records, everything else NXDOMAIN.
fn zone(s: &Seen) -> Vec<u8> {
    let q = &s.question;
    let listed = [
        ("listed.test", Data::A(Ipv4Addr::new(127, 0, 0, 2))),
        (
            "listed.test",
            Data::Txt(vec![b"listed ".to_vec(), b"here".to_vec()]),
        ),
    ];
    let want = |d: &Data| match d {
        Data::A(_) => q.rtype == rtype::A,
        Data::Txt(_) => q.rtype == rtype::TXT,
        _ => false,
    };
    match q.name.as_str() {
        "listed.test" => {
            let answers: Vec<(&str, Data)> = listed.iter().filter(|(_, d)| want(d)).cloned().collect();
            reply(s.id, q, rcode::NOERROR, false, &answers)
        }
        "alias.test" => {
            let mut answers = vec![("alias.test", Data::Cname("listed.test".into()))];
            answers.extend(listed.iter().filter(|(_, d)| want(d)).cloned());
            reply(s.id, q, rcode::NOERROR, false, &answers)
        }
        "loop.test" => reply(
            s.id,
            q,
            rcode::NOERROR,
            false,
            &[("loop.test", Data::Cname("loop.test".into()))],
        ),
        "empty.test" => reply(s.id, q, rcode::NOERROR, false, &[]),
        _ => reply(s.id, q, rcode::NXDOMAIN, false, &[]),
    }
}

fn honest() -> FakeServer {
    FakeServer::start(|s| vec![Act::Send(zone(s))])
}

fn forged(s: &Seen) -> Vec<u8> {
    reply(
        s.id,
        &s.question,
        rcode::NOERROR,
        false,
        &[(&s.question.name, Data::A(Ipv4Addr::new(127, 0, 0, 2)))],
    )
}

#[test]
fn records_nxdomain_nodata_and_cname_chains() {
    let server = honest();
    let dns = dns(&[server.addr]);
    assert_eq!(
        dns.a("listed.test"),
        Answer::Records(vec![Ipv4Addr::new(127, 0, 0, 2)])
    );
    let txt = dns.txt("Listed.Test.");
    assert_eq!(txt.records()[0].text(), "listed here");
    assert_eq!(
        dns.a("alias.test"),
        Answer::Records(vec![Ipv4Addr::new(127, 0, 0, 2)])
    );
    assert_eq!(dns.a("nothing.test"), Answer::NxDomain);
    assert_eq!(dns.a("empty.test"), Answer::NoData);
    assert_eq!(dns.mx("listed.test"), Answer::NoData);
    assert_eq!(dns.a("loop.test"), Answer::NoData, "a CNAME loop ends");
}

#[test]
fn a_reply_with_another_id_is_dropped_and_the_real_one_taken() {
    let server = FakeServer::start(|s| {
        let mut wrong = forged(s);
        wrong[..2].copy_from_slice(&s.id.wrapping_add(1).to_be_bytes());
        vec![
            Act::Send(wrong),
            Act::Sleep(Duration::from_millis(30)),
            Act::Send(zone(s)),
        ]
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("spoofed.test"), Answer::NxDomain);
    assert_eq!(dns.stats().dropped, 1);
}

#[test]
fn a_reply_for_another_question_is_dropped() {
    let server = FakeServer::start(|s| {
        let other = Question {
            name: "wrong-question.test".into(),
            ..s.question.clone()
        };
        let wrong = reply(
            s.id,
            &other,
            rcode::NOERROR,
            false,
            &[("wrong-question.test", Data::A(Ipv4Addr::LOCALHOST))],
        );
        let other_type = Question {
            rtype: rtype::TXT,
            ..s.question.clone()
        };
        let wrong_type = reply(s.id, &other_type, rcode::NOERROR, false, &[]);
        vec![
            Act::Send(wrong),
            Act::Send(wrong_type),
            Act::Sleep(Duration::from_millis(30)),
            Act::Send(zone(s)),
        ]
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("spoofed.test"), Answer::NxDomain);
    assert_eq!(dns.stats().dropped, 2);
}

#[test]
fn a_reply_from_another_port_is_dropped() {
    let server = FakeServer::start(|s| {
        vec![
            Act::SendFromElsewhere(forged(s)),
            Act::Sleep(Duration::from_millis(30)),
            Act::Send(zone(s)),
        ]
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("spoofed.test"), Answer::NxDomain);
    assert_eq!(dns.stats().dropped, 1);
}

#[test]
fn garbage_and_queries_are_dropped() {
    let server = FakeServer::start(|s| {
        let mut query = wire::query(s.id, &s.question.name, s.question.rtype);
        query.truncate(20);
        vec![Act::Send(vec![0xff; 3]), Act::Send(query), Act::Send(zone(s))]
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("x.test"), Answer::NxDomain);
    assert_eq!(dns.stats().dropped, 2);
}

#[test]
fn a_truncated_reply_is_asked_again_over_tcp() {
    let server = FakeServer::start(|s| {
        if s.tcp {
            vec![Act::Send(zone(s))]
        } else {
            vec![Act::Send(reply(s.id, &s.question, rcode::NOERROR, true, &[]))]
        }
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("listed.test").records().len(), 1);
    assert_eq!(server.asked(), vec!["listed.test/1", "listed.test/1+tcp"]);
    assert_eq!(dns.stats().tcp, 1);
}

#[test]
fn a_reply_still_truncated_over_tcp_is_not_taken() {
    // RFC 1035 §4.1.1: TC says a message was cut to fit its channel; one over TCP that
    // still says so holds only part of the records: a failure, not the answer.
    let server = FakeServer::start(|s| {
        let partial = [("listed.test", Data::A(Ipv4Addr::new(127, 0, 0, 2)))];
        let answers: &[(&str, Data)] = if s.tcp { &partial } else { &[] };
        vec![Act::Send(reply(s.id, &s.question, rcode::NOERROR, true, answers))]
    });
    let dns = dns(&[server.addr]);
    assert_eq!(dns.a("listed.test"), Answer::TempFail(DnsTrouble::ServerFailure));
    assert_eq!(dns.stats().tcp, 1);
}

#[test]
fn servfail_and_silence_hand_the_question_to_the_next_server() {
    let failing = FakeServer::start(|s| vec![Act::Send(reply(s.id, &s.question, SERVFAIL, false, &[]))]);
    let silent = FakeServer::start(|_| Vec::new());
    let good = honest();
    let dns = Dns::with_settings(settings(&[failing.addr, silent.addr, good.addr], 200, 5000));
    let start = Instant::now();
    assert_eq!(dns.a("listed.test").records().len(), 1);
    assert!(
        start.elapsed() >= Duration::from_millis(200),
        "the silent server had its timeout"
    );
    assert_eq!(dns.stats().udp, 3);
    assert_eq!((failing.asked().len(), good.asked().len()), (1, 1));
    let only_failing = Dns::with_settings(settings(&[failing.addr], 200, 5000));
    assert_eq!(
        only_failing.a("listed.test"),
        Answer::TempFail(DnsTrouble::ServerFailure)
    );
}

#[test]
fn a_silent_server_times_out_and_the_budget_then_answers_at_once() {
    let silent = FakeServer::start(|_| Vec::new());
    let dns = Dns::with_settings(settings(&[silent.addr], 200, 300));
    assert_eq!(dns.a("a.test"), Answer::TempFail(DnsTrouble::Timeout));
    // 100 ms of budget left: the second question is cut by it.
    assert_eq!(dns.a("b.test"), Answer::TempFail(DnsTrouble::BudgetSpent));
    let start = Instant::now();
    assert_eq!(dns.a("c.test"), Answer::TempFail(DnsTrouble::BudgetSpent));
    // Well under the 200 ms timeout: c.test was not sent and waited for.
    assert!(start.elapsed() < Duration::from_millis(150));
    // b.test goes out when the budget still has time left when it is asked; on a loaded
    // machine a.test's wait may already have used the whole budget. c.test never does.
    let sent = dns.stats().udp;
    assert!(
        (1..=2).contains(&sent),
        "a.test (and b.test) sent, c.test not: {sent}"
    );
    // The timeout is remembered: the same question is not asked again.
    assert_eq!(dns.a("a.test"), Answer::TempFail(DnsTrouble::Timeout));
}

#[test]
fn a_plugins_limit_cuts_its_wait_and_is_not_cached() {
    let silent = FakeServer::start(|_| Vec::new());
    let dns = Dns::with_settings(settings(&[silent.addr], 5000, 10_000));
    let start = Instant::now();
    let got = dns.ask(&[("a.test", RecordType::A)], Some(Duration::from_millis(100)));
    assert_eq!(got, vec![Answer::TempFail(DnsTrouble::Timeout)]);
    assert!(start.elapsed() < Duration::from_secs(2));
    let _ = dns.ask(&[("a.test", RecordType::A)], Some(Duration::from_millis(50)));
    assert_eq!(dns.stats().udp, 2);
}

#[test]
fn each_question_is_asked_once_per_session() {
    let server = honest();
    let dns = dns(&[server.addr]);
    let names = ["listed.test", "nothing.test", "LISTED.test."];
    let first = dns.lookup_all::<Txt>(&names);
    let again = dns.lookup_all::<Txt>(&names);
    assert_eq!(first, again);
    assert_eq!(first[0], first[2]);
    assert_eq!(server.asked(), vec!["listed.test/16", "nothing.test/16"]);
    assert_eq!(dns.asked(), 6);
    let _ = dns.a("listed.test");
    assert_eq!(server.asked().len(), 3, "another type is another question");
}

#[test]
fn the_questions_of_a_batch_are_in_flight_together() {
    // The server answers nothing until it has all five questions: asked one after
    // another, the first would time out.
    let barrier = Arc::new(Barrier::new(5));
    let server = FakeServer::start(move |s| {
        barrier.wait();
        vec![Act::Send(zone(s))]
    });
    let dns = Dns::with_settings(settings(&[server.addr], 2000, 10_000));
    let names: Vec<String> = (1..=5).map(|i| format!("q{i}.test")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let answers = dns.lookup_all::<Ipv4Addr>(&names);
    assert!(answers.iter().all(|a| *a == Answer::NxDomain), "{answers:?}");
}

#[test]
fn bad_names_and_bad_settings_fail_temporarily_without_asking() {
    let server = honest();
    let dns = dns(&[server.addr]);
    for name in [
        "",
        ".",
        "a..b",
        &"x".repeat(64),
        "a b.test",
        "a\\b.test",
        "ä.test",
        &"a.".repeat(128),
    ] {
        assert_eq!(dns.a(name), Answer::TempFail(DnsTrouble::BadName), "{name:?}");
    }
    assert!(server.asked().is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dns_servers"), "not an address\n").unwrap();
    let config = crate::config::Config::open(dir.path(), None).unwrap();
    let dns = Dns::new(&config, &crate::log::Logger::silent("1"));
    assert_eq!(dns.a("listed.test"), Answer::TempFail(DnsTrouble::NotAvailable));
    let none = Dns::with_settings(settings(&[], 100, 100));
    assert_eq!(none.a("listed.test"), Answer::TempFail(DnsTrouble::NotAvailable));
}

#[test]
fn settings_from_config_items() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "dns_servers",
        "127.0.0.1:5353\n192.0.2.1\n[2001:db8::1]:53\n2001:db8::2\n[::1]\n",
    );
    write("dns_timeout", "0.25\n");
    write("dns_budget", "0\n");
    let config = crate::config::Config::open(dir.path(), None).unwrap();
    let s = Settings::read(&config, Some("nameserver 10.0.0.1\n")).unwrap();
    let servers: Vec<String> = s.servers.iter().map(ToString::to_string).collect();
    assert_eq!(
        servers,
        [
            "127.0.0.1:5353",
            "192.0.2.1:53",
            "[2001:db8::1]:53",
            "[2001:db8::2]:53",
            "[::1]:53"
        ]
    );
    assert_eq!(
        (s.timeout, s.budget),
        (Duration::from_millis(250), Duration::ZERO)
    );
    for (name, text) in [
        ("dns_servers", "127.0.0.1:0\n"),
        ("dns_servers", "example.org\n"),
        ("dns_servers", &"127.0.0.1\n".repeat(9)),
        ("dns_timeout", "0\n"),
        ("dns_timeout", "3601\n"),
        ("dns_budget", "-1\n"),
        ("dns_budget", "1.2345\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        let config = crate::config::Config::open(dir.path(), None).unwrap();
        assert!(Settings::check(&config).is_err(), "{name} {text:?}");
    }
}

#[test]
fn resolv_conf_servers_and_the_local_default() {
    let text = "# comment\nsearch example.org\nnameserver 192.0.2.53\nnameserver  2001:db8::53\n\
                nameserver fe80::1%1\nnameserver bogus\noptions timeout:1\n";
    let servers: Vec<String> = settings::resolv_conf_servers(text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(servers, ["192.0.2.53:53", "[2001:db8::53]:53", "[fe80::1%1]:53"]);
    let servers: Vec<String> = settings::resolv_conf_servers("")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(servers, ["127.0.0.1:53", "[::1]:53"]);
}

#[test]
fn seconds_with_decimals() {
    assert_eq!(settings::parse_seconds("5"), Some(Duration::from_secs(5)));
    assert_eq!(settings::parse_seconds("0.5"), Some(Duration::from_millis(500)));
    assert_eq!(settings::parse_seconds("1.25"), Some(Duration::from_millis(1250)));
    for bad in ["", ".5", "5.", "1e3", "-1", "1.2345", "0x10", "9999999"] {
        assert_eq!(settings::parse_seconds(bad), None, "{bad:?}");
    }
}

#[test]
fn listing_addresses() {
    for (a, listed) in [
        ([127, 0, 0, 2], true),
        ([127, 0, 1, 4], true),
        ([127, 0, 0, 1], false),
        ([127, 255, 255, 254], false),
        ([10, 0, 0, 2], false),
    ] {
        assert_eq!(is_listing(Ipv4Addr::from(a)), listed, "{a:?}");
    }
}

#[test]
fn printable_txt() {
    let t = Txt(vec![b"a\r\n  b\x00".to_vec(), "ü".as_bytes().to_vec()]);
    assert_eq!(t.printable(100), "a?? b???");
    assert_eq!(Txt(vec![b"abcdef".to_vec()]).printable(3), "abc");
}
