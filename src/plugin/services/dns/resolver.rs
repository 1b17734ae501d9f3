//! The session's resolver: a cache for the session's lifetime, a time budget for the
//! whole session, and batches of questions asked together.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::client::{Client, Got, Question, Stats};
use super::settings::Settings;
use super::wire::{Data, Reply, rcode};
use super::{Answer, DnsTrouble, Mx, Ptr, Rdata, Record, RecordType, Txt, normal_name, reverse_name};
use crate::config::Config;
use crate::io::TERMINATE;
use crate::log::{Level, Logger};

/// Answers kept at most; later ones are not cached.
pub const MAX_CACHE: usize = 1024;
/// CNAME records followed from the name asked, at most.
pub const MAX_CNAMES: usize = 8;

/// The session's resolver.
pub struct Dns {
    /// Questions asked in this session (cached or not).
    asked: Cell<u64>,
    inner: RefCell<Inner>,
}

struct Inner {
    /// `None` when the settings are invalid: every lookup fails temporarily.
    client: Option<Client>,
    timeout: Duration,
    budget: Duration,
    spent: Duration,
    cache: HashMap<(String, RecordType), Answer<Rdata>>,
}

impl std::fmt::Debug for Dns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dns")
            .field("asked", &self.asked.get())
            .finish_non_exhaustive()
    }
}

impl Dns {
    /// Made on the first lookup of a session (see [`crate::plugin::Services`]): reads
    /// `dns_servers` (else `/etc/resolv.conf`), `dns_timeout` and `dns_budget`. Opens
    /// no socket yet.
    pub fn new(config: &Config, log: &Logger) -> Dns {
        match Settings::read(config, None) {
            Ok(settings) => Dns::with_settings(settings),
            Err(e) => {
                log.log(
                    Level::Error,
                    format_args!("dns: {e}; every lookup fails temporarily"),
                );
                Dns::unavailable()
            }
        }
    }

    /// A resolver with these settings.
    pub fn with_settings(settings: Settings) -> Dns {
        let inner = Inner {
            timeout: settings.timeout,
            budget: settings.budget,
            client: Some(Client::new(settings)),
            spent: Duration::ZERO,
            cache: HashMap::new(),
        };
        Dns {
            asked: Cell::new(0),
            inner: RefCell::new(inner),
        }
    }

    /// A resolver that answers every lookup with `TempFail(NotAvailable)`.
    pub fn unavailable() -> Dns {
        let inner = Inner {
            client: None,
            timeout: Duration::ZERO,
            budget: Duration::ZERO,
            spent: Duration::ZERO,
            cache: HashMap::new(),
        };
        Dns {
            asked: Cell::new(0),
            inner: RefCell::new(inner),
        }
    }

    /// How many questions the plugins of this session have asked.
    pub fn asked(&self) -> u64 {
        self.asked.get()
    }

    /// Queries sent and replies dropped so far.
    pub fn stats(&self) -> Stats {
        self.inner
            .borrow()
            .client
            .as_ref()
            .map(|c| c.stats)
            .unwrap_or_default()
    }

    /// The per-query timeout (`dns_timeout`).
    pub fn timeout(&self) -> Duration {
        self.inner.borrow().timeout
    }

    /// Time the session has spent waiting for DNS answers.
    pub fn spent(&self) -> Duration {
        self.inner.borrow().spent
    }

    /// Looks up one name.
    pub fn lookup<R: Record>(&self, name: &str) -> Answer<R> {
        self.lookup_all::<R>(&[name])
            .pop()
            .unwrap_or(Answer::TempFail(DnsTrouble::NotAvailable))
    }

    /// Looks up several names at once (the questions are in flight together, so five
    /// DNSBL zones cost about one round trip); the answers in the order of `names`.
    pub fn lookup_all<R: Record>(&self, names: &[&str]) -> Vec<Answer<R>> {
        let questions: Vec<(&str, RecordType)> = names.iter().map(|n| (*n, R::TYPE)).collect();
        self.ask(&questions, None)
            .into_iter()
            .map(Answer::typed)
            .collect()
    }

    /// The general form: questions of any types, asked together, answered in order.
    /// `limit` bounds this call's wait (a plugin's own `timeout`); questions it cuts
    /// short answer `TempFail(Timeout)` and are not cached. Each distinct question is
    /// asked once per session; later asks get the cached answer.
    pub fn ask(&self, questions: &[(&str, RecordType)], limit: Option<Duration>) -> Vec<Answer<Rdata>> {
        self.asked.set(self.asked.get() + questions.len() as u64);
        let mut inner = self.inner.borrow_mut();
        let mut out: Vec<Option<Answer<Rdata>>> = vec![None; questions.len()];
        let mut todo: Vec<(String, RecordType)> = Vec::new();
        let mut slot: Vec<usize> = vec![usize::MAX; questions.len()];
        for (i, (name, rtype)) in questions.iter().enumerate() {
            match normal_name(name) {
                Err(t) => out[i] = Some(Answer::TempFail(t)),
                Ok(name) => match inner.cache.get(&(name.clone(), *rtype)) {
                    Some(hit) => out[i] = Some(hit.clone()),
                    None => {
                        let key = (name, *rtype);
                        slot[i] = todo.iter().position(|k| *k == key).unwrap_or_else(|| {
                            todo.push(key);
                            todo.len() - 1
                        });
                    }
                },
            }
        }
        let answers = inner.resolve(&todo, limit);
        for (i, s) in slot.iter().enumerate() {
            if let Some(answer) = answers.get(*s) {
                out[i] = Some(answer.clone());
            }
        }
        out.into_iter()
            .map(|a| a.unwrap_or(Answer::TempFail(DnsTrouble::NotAvailable)))
            .collect()
    }

    /// The IPv4 addresses of a name.
    pub fn a(&self, name: &str) -> Answer<Ipv4Addr> {
        self.lookup(name)
    }

    /// The IPv6 addresses of a name.
    pub fn aaaa(&self, name: &str) -> Answer<Ipv6Addr> {
        self.lookup(name)
    }

    /// The mail exchangers of a domain.
    pub fn mx(&self, domain: &str) -> Answer<Mx> {
        self.lookup(domain)
    }

    /// The TXT records of a name.
    pub fn txt(&self, name: &str) -> Answer<Txt> {
        self.lookup(name)
    }

    /// The names of an address (its PTR records, under [`reverse_name`]).
    pub fn ptr(&self, ip: IpAddr) -> Answer<Ptr> {
        self.lookup(&reverse_name(ip, None))
    }
}

impl Inner {
    /// Asks the questions not in the cache, within the budget and `limit`; caches what
    /// is final.
    fn resolve(&mut self, todo: &[(String, RecordType)], limit: Option<Duration>) -> Vec<Answer<Rdata>> {
        if todo.is_empty() {
            return Vec::new();
        }
        let left = self.budget.saturating_sub(self.spent);
        let Some(client) = self.client.as_mut() else {
            return vec![Answer::TempFail(DnsTrouble::NotAvailable); todo.len()];
        };
        if left.is_zero() || TERMINATE.load(Ordering::SeqCst) {
            return vec![Answer::TempFail(DnsTrouble::BudgetSpent); todo.len()];
        }
        let start = Instant::now();
        let limited = limit.is_some_and(|l| l < left);
        let deadline = start + limit.map_or(left, |l| l.min(left));
        let questions: Vec<Question> = todo
            .iter()
            .map(|(name, rtype)| Question {
                name: name.clone(),
                rtype: rtype.number(),
            })
            .collect();
        let got = client.exchange(&questions, deadline);
        self.spent += start.elapsed();
        if TERMINATE.load(Ordering::SeqCst) {
            self.spent = self.budget;
        }
        let cut = if limited {
            DnsTrouble::Timeout
        } else {
            DnsTrouble::BudgetSpent
        };
        let mut answers = Vec::with_capacity(todo.len());
        for ((name, rtype), got) in todo.iter().zip(got) {
            let answer = match got {
                Got::Reply(reply) => answer_from(&reply, name, *rtype),
                Got::Failed(trouble) => Answer::TempFail(trouble),
                Got::Cut => {
                    answers.push(Answer::TempFail(cut));
                    continue;
                }
            };
            if self.cache.len() < MAX_CACHE {
                self.cache.insert((name.clone(), *rtype), answer.clone());
            }
            answers.push(answer);
        }
        answers
    }
}

/// The answer a reply gives to `name`/`rtype`: the records owned by the name, or by the
/// end of a chain of at most [`MAX_CNAMES`] CNAMEs from it (RFC 1034 §3.6.2).
pub fn answer_from(reply: &Reply, name: &str, rtype: RecordType) -> Answer<Rdata> {
    if reply.rcode == rcode::NXDOMAIN {
        return Answer::NxDomain;
    }
    if reply.rcode != rcode::NOERROR {
        return Answer::TempFail(DnsTrouble::ServerFailure);
    }
    let mut owner = name.to_string();
    for _ in 0..=MAX_CNAMES {
        let records: Vec<Rdata> = reply
            .answers
            .iter()
            .filter(|r| r.owner == owner)
            .filter_map(|r| rdata(&r.data, rtype))
            .collect();
        if !records.is_empty() {
            return Answer::Records(records);
        }
        let next = reply.answers.iter().find_map(|r| match &r.data {
            Data::Cname(target) if r.owner == owner => Some(target.clone()),
            _ => None,
        });
        match next {
            Some(target) => owner = target,
            None => break,
        }
    }
    Answer::NoData
}

/// The record as plugins see it, if it is of the type asked.
fn rdata(data: &Data, rtype: RecordType) -> Option<Rdata> {
    match (data, rtype) {
        (Data::A(a), RecordType::A) => Some(Rdata::A(*a)),
        (Data::Aaaa(a), RecordType::Aaaa) => Some(Rdata::Aaaa(*a)),
        (Data::Mx(preference, exchange), RecordType::Mx) => Some(Rdata::Mx(Mx {
            preference: *preference,
            exchange: exchange.clone(),
        })),
        (Data::Txt(strings), RecordType::Txt) => Some(Rdata::Txt(Txt(strings.clone()))),
        (Data::Ptr(host), RecordType::Ptr) => Some(Rdata::Ptr(Ptr(host.clone()))),
        _ => None,
    }
}
