use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::clock::FIXED_TIME_ITEM;
use super::dns::{Answer, DnsTrouble, Mx, Txt, reverse_name};
use super::store::StoreError;
use super::*;
use crate::plugin::testing::{self, spec};
use crate::plugin::{Args, Chain, Context, Hook, Outcome, Plugin};

/// A plugin that does what `uses` says with the services, and records how many questions
/// the resolver it was given had been asked before its own, and the times it read.
struct User {
    uses: &'static str,
    seen: Rc<RefCell<Vec<String>>>,
}

impl Plugin for User {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::Helo]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        let mut seen = self.seen.borrow_mut();
        if self.uses.contains("dns") {
            seen.push(format!("asked {}", cx.dns().asked()));
            let _ = cx.dns().a("example.org");
        }
        if self.uses.contains("clock") {
            let secs = cx.now().duration_since(UNIX_EPOCH).unwrap().as_secs();
            seen.push(format!("now {secs}"));
        }
        Outcome::declined()
    }
}

fn chain_of(uses: &[&'static str]) -> (Chain, Rc<RefCell<Vec<String>>>) {
    let seen = Rc::new(RefCell::new(Vec::new()));
    let mut chain = Chain::new();
    for (i, u) in uses.iter().enumerate() {
        let plugin = User {
            uses: u,
            seen: seen.clone(),
        };
        chain.push(spec(&format!("user{i}"), &[]), Box::new(plugin));
    }
    (chain, seen)
}

fn helo(chain: &Chain, config: &Config) {
    let args = Args::Hello {
        host: "client.example",
        extra: &[],
    };
    testing::run_chain(chain, config, Hook::Helo, args);
}

#[test]
fn a_session_whose_plugins_ask_nothing_makes_no_resolver_and_no_store() {
    let (chain, seen) = chain_of(&["", "clock"]);
    helo(&chain, &Config::empty());
    assert!(!chain.services().dns_started() && !chain.services().store_started());
    assert_eq!(seen.borrow().len(), 1);
}

#[test]
fn all_plugins_of_a_session_share_one_resolver() {
    let (chain, seen) = chain_of(&["dns", "dns"]);
    // A server that never answers, asked once: the answer (a timeout) is cached.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = silent.local_addr().unwrap().to_string();
    std::fs::write(dir.path().join("dns_servers"), server).unwrap();
    std::fs::write(dir.path().join("dns_timeout"), "0.05").unwrap();
    let config = Config::open(dir.path(), None).unwrap();
    helo(&chain, &config);
    helo(&chain, &config);
    assert!(chain.services().dns_started());
    assert_eq!(*seen.borrow(), vec!["asked 0", "asked 1", "asked 2", "asked 3"]);
}

#[test]
fn the_clock_is_fixed_by_the_config_item_for_tests() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FIXED_TIME_ITEM), "1700000000\n").unwrap();
    let config = Config::open(dir.path(), None).unwrap();
    let (chain, seen) = chain_of(&["clock", "clock"]);
    helo(&chain, &config);
    assert_eq!(*seen.borrow(), vec!["now 1700000000", "now 1700000000"]);
}

#[test]
fn the_clock_is_the_systems_without_the_item_or_with_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(FIXED_TIME_ITEM), "yesterday\n").unwrap();
    let log = crate::log::Logger::silent("1");
    for config in [Config::empty(), Config::open(dir.path(), None).unwrap()] {
        let before = SystemTime::now();
        let now = Clock::from_config(&config, &log).now();
        assert!(now >= before && now <= SystemTime::now() + Duration::from_secs(1));
    }
}

#[test]
fn a_harness_may_set_the_clock_before_first_use_only() {
    let (chain, seen) = chain_of(&["clock"]);
    let fixed = UNIX_EPOCH + Duration::from_secs(42);
    assert!(chain.services().set_clock(Clock::Fixed(fixed)));
    helo(&chain, &Config::empty());
    assert!(!chain.services().set_clock(Clock::System));
    assert_eq!(*seen.borrow(), vec!["now 42"]);
}

#[test]
fn a_resolver_with_invalid_settings_and_no_store_fail_temporarily() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dns_servers"), "nameserver 192.0.2.53\n").unwrap();
    let config = Config::open(dir.path(), None).unwrap();
    let log = crate::log::Logger::silent("1");
    let services = Services::default();
    let dns = services.dns(&config, &log);
    let unavailable = DnsTrouble::NotAvailable;
    assert_eq!(dns.a("example.org"), Answer::TempFail(unavailable));
    assert_eq!(dns.mx("example.org"), Answer::<Mx>::TempFail(unavailable));
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    assert!(dns.ptr(ip).is_temporary());
    let answers = dns.lookup_all::<Txt>(&["a.example", "", &"x".repeat(64)]);
    let troubles: Vec<_> = answers.into_iter().map(|a| a.is_temporary()).collect();
    // A name that cannot be asked fails at once, and not temporarily: it will not have
    // records later either (README Differences 88).
    assert_eq!(troubles, vec![true, false, false]);
    assert_eq!(dns.txt(""), Answer::TempFail(DnsTrouble::BadName));
    let store = services.store(&config, &log);
    assert_eq!(store.get("test:x"), Err(StoreError::NotAvailable));
    assert_eq!(
        store.add("test:x", 1, Duration::from_secs(60)),
        Err(StoreError::NotAvailable)
    );
}

#[test]
fn reverse_names() {
    let v4: IpAddr = "192.0.2.1".parse().unwrap();
    assert_eq!(reverse_name(v4, None), "1.2.0.192.in-addr.arpa");
    assert_eq!(reverse_name(v4, Some("zen.example.")), "1.2.0.192.zen.example");
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(reverse_name(mapped, Some("zen.example")), "1.2.0.192.zen.example");
    let v6: IpAddr = "2001:db8::567:89ab".parse().unwrap();
    assert_eq!(
        reverse_name(v6, None),
        "b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
    );
}

#[test]
fn answers() {
    let a: Answer<u8> = Answer::Records(vec![1, 2]);
    assert_eq!(a.records(), &[1, 2]);
    assert_eq!(a.map(|n| n * 2), Answer::Records(vec![2, 4]));
    assert!(Answer::<u8>::NxDomain.records().is_empty());
    assert!(!Answer::<u8>::NoData.is_temporary());
    let txt = Txt(vec![b"v=spf1 ".to_vec(), b"-all".to_vec()]);
    assert_eq!(txt.text(), "v=spf1 -all");
}
