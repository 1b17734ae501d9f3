//! Asking the servers: every question of a batch in flight at once over one UDP socket
//! per address family, one `poll` loop, replies matched to their query.
//!
//! A reply is taken only when it comes from the address and port the query went to,
//! carries the query's random ID and repeats its question (name, type and class);
//! anything else is dropped and the wait goes on, so a forged datagram cannot answer a
//! question for us (RFC 5452 §9.1). The source port is the kernel's random ephemeral
//! port of a socket opened for this session. A reply with TC set is asked again over TCP
//! (RFC 7766 §5). A server that answers `SERVFAIL`, `REFUSED` or garbage, or does not
//! answer within the timeout, hands the question to the next server.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use ring::rand::{SecureRandom, SystemRandom};

use super::DnsTrouble;
use super::settings::Settings;
use super::wire::{self, Reply, rcode};
use crate::io::TERMINATE;

/// Questions in flight at once; the rest of a batch waits for a free place.
pub const WINDOW: usize = 32;
/// The longest single `poll`, so that a termination signal is seen soon.
const LONGEST_WAIT: Duration = Duration::from_millis(100);

/// One question: name (checked, lower case, no final dot) and type number.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Question {
    pub name: String,
    pub rtype: u16,
}

/// What became of a question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Got {
    /// A `NOERROR` or `NXDOMAIN` reply that matched.
    Reply(Reply),
    /// No usable answer from any server.
    Failed(DnsTrouble),
    /// The batch's deadline came first.
    Cut,
}

/// Counts for tests and the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Queries sent over UDP.
    pub udp: u64,
    /// Queries sent over TCP (after a truncated UDP reply).
    pub tcp: u64,
    /// Datagrams dropped: not a reply to a query in flight (wrong source, ID or
    /// question) or unreadable.
    pub dropped: u64,
}

/// The sockets and the random source of one session.
pub struct Client {
    settings: Settings,
    udp4: Option<UdpSocket>,
    udp6: Option<UdpSocket>,
    buf: Vec<u8>,
    rng: SystemRandom,
    pub stats: Stats,
}

/// One question on its way: the tries so far (server index, ID) and when the current
/// one gives up.
struct Flight {
    q: usize,
    tries: Vec<(usize, u16)>,
    until: Instant,
}

impl Client {
    /// A client for these settings; no socket is opened until the first query.
    pub fn new(settings: Settings) -> Client {
        Client {
            settings,
            udp4: None,
            udp6: None,
            buf: Vec::new(),
            rng: SystemRandom::new(),
            stats: Stats::default(),
        }
    }

    /// Asks every question, all at once, until each has an outcome or `deadline`.
    pub fn exchange(&mut self, questions: &[Question], deadline: Instant) -> Vec<Got> {
        let mut got: Vec<Option<Got>> = vec![None; questions.len()];
        let mut waiting: VecDeque<usize> = (0..questions.len()).collect();
        let mut flights: Vec<Flight> = Vec::new();
        loop {
            while flights.len() < WINDOW {
                let Some(q) = waiting.pop_front() else { break };
                match self.launch(&questions[q], 0, &flights) {
                    Some((server, id)) => flights.push(self.flight(q, server, id)),
                    // No server configured, or none that a query could be sent to.
                    None => got[q] = Some(Got::Failed(DnsTrouble::NotAvailable)),
                }
            }
            if flights.is_empty() {
                break;
            }
            let now = Instant::now();
            if now >= deadline || TERMINATE.load(Ordering::SeqCst) {
                break;
            }
            self.expire(questions, &mut flights, &mut got, now);
            let wake = flights
                .iter()
                .map(|f| f.until)
                .min()
                .unwrap_or(deadline)
                .min(deadline);
            if self.wait(wake.saturating_duration_since(now)) {
                self.drain(questions, &mut flights, &mut got, deadline);
            }
        }
        got.into_iter().map(|g| g.unwrap_or(Got::Cut)).collect()
    }

    fn flight(&self, q: usize, server: usize, id: u16) -> Flight {
        Flight {
            q,
            tries: vec![(server, id)],
            until: Instant::now() + self.settings.timeout,
        }
    }

    /// Sends the question to the first server from `first` on that takes it; the server
    /// and the query's ID.
    fn launch(&mut self, q: &Question, first: usize, flights: &[Flight]) -> Option<(usize, u16)> {
        for server in first..self.settings.servers.len() {
            let addr = self.settings.servers[server];
            let id = self.fresh_id(flights);
            let query = wire::query(id, &q.name, q.rtype);
            let Some(socket) = self.socket(addr) else { continue };
            if socket.send_to(&query, addr).is_ok() {
                self.stats.udp += 1;
                return Some((server, id));
            }
        }
        None
    }

    /// A random ID no query in flight has.
    fn fresh_id(&self, flights: &[Flight]) -> u16 {
        loop {
            let mut b = [0u8; 2];
            if self.rng.fill(&mut b).is_err() {
                // No kernel randomness: fall back on the clock's nanoseconds.
                let n = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.subsec_nanos());
                b = (n as u16).to_be_bytes();
            }
            let id = u16::from_be_bytes(b);
            if !flights.iter().any(|f| f.tries.iter().any(|&(_, i)| i == id)) {
                return id;
            }
        }
    }

    /// The UDP socket for this server's address family, opened on first use.
    fn socket(&mut self, addr: SocketAddr) -> Option<&UdpSocket> {
        let (slot, any) = match addr {
            SocketAddr::V4(_) => (&mut self.udp4, "0.0.0.0:0"),
            SocketAddr::V6(_) => (&mut self.udp6, "[::]:0"),
        };
        if slot.is_none() {
            let socket = UdpSocket::bind(any).ok()?;
            socket.set_nonblocking(true).ok()?;
            *slot = Some(socket);
        }
        slot.as_ref()
    }

    /// Hands questions whose server has not answered in time to the next server.
    fn expire(
        &mut self,
        questions: &[Question],
        flights: &mut Vec<Flight>,
        got: &mut [Option<Got>],
        now: Instant,
    ) {
        let mut i = 0;
        while i < flights.len() {
            if flights[i].until > now {
                i += 1;
                continue;
            }
            if !self.fail_over(questions, flights, i) {
                let f = flights.swap_remove(i);
                got[f.q] = Some(Got::Failed(DnsTrouble::Timeout));
            }
        }
    }

    /// Asks the next server; `false` when there is none left.
    fn fail_over(&mut self, questions: &[Question], flights: &mut [Flight], i: usize) -> bool {
        let next = flights[i].tries.last().map_or(0, |&(s, _)| s + 1);
        match self.launch(&questions[flights[i].q], next, flights) {
            Some(try_) => {
                flights[i].tries.push(try_);
                flights[i].until = Instant::now() + self.settings.timeout;
                true
            }
            None => false,
        }
    }

    /// Waits until a socket is readable or `left` has passed; `true` if one is.
    fn wait(&self, left: Duration) -> bool {
        let mut fds: Vec<PollFd<'_>> = [&self.udp4, &self.udp6]
            .into_iter()
            .flatten()
            .map(|s| PollFd::new(s.as_fd(), PollFlags::POLLIN))
            .collect();
        let ms = left.min(LONGEST_WAIT).as_millis().max(1);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut fds, timeout) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => false,
            Err(_) => {
                std::thread::sleep(left.min(LONGEST_WAIT));
                false
            }
        }
    }

    /// Reads every datagram waiting on the sockets and settles the questions they answer.
    fn drain(
        &mut self,
        questions: &[Question],
        flights: &mut Vec<Flight>,
        got: &mut [Option<Got>],
        deadline: Instant,
    ) {
        if self.buf.len() < 65535 {
            self.buf.resize(65535, 0);
        }
        for v6 in [false, true] {
            loop {
                // A stream of datagrams to our port (forged or not) must not keep us
                // reading past the deadline.
                if Instant::now() >= deadline {
                    return;
                }
                let socket = if v6 { &self.udp6 } else { &self.udp4 };
                let Some(socket) = socket else { break };
                let (n, from) = match socket.recv_from(&mut self.buf) {
                    Ok(r) => r,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break,
                };
                let datagram = self.buf[..n].to_vec();
                self.settle(questions, flights, got, &datagram, from, deadline);
            }
        }
    }

    /// One datagram: the flight it answers, if any, and what that flight becomes.
    fn settle(
        &mut self,
        questions: &[Question],
        flights: &mut Vec<Flight>,
        got: &mut [Option<Got>],
        datagram: &[u8],
        from: SocketAddr,
        deadline: Instant,
    ) {
        let Some((i, server)) = self.match_flight(questions, flights, datagram, from) else {
            self.stats.dropped += 1;
            return;
        };
        let q = &questions[flights[i].q];
        let reply = match wire::parse(datagram) {
            Ok(r) if r.truncated => self.over_tcp(q, server, deadline.min(flights[i].until)),
            other => other.ok(),
        };
        match reply {
            Some(r) if r.rcode == rcode::NOERROR || r.rcode == rcode::NXDOMAIN => {
                let f = flights.swap_remove(i);
                got[f.q] = Some(Got::Reply(r));
            }
            _ => {
                if !self.fail_over(questions, flights, i) {
                    let f = flights.swap_remove(i);
                    got[f.q] = Some(Got::Failed(DnsTrouble::ServerFailure));
                }
            }
        }
    }

    /// The flight a datagram answers (index and server): same source address and port
    /// as a try, same ID, same question.
    fn match_flight(
        &self,
        questions: &[Question],
        flights: &[Flight],
        datagram: &[u8],
        from: SocketAddr,
    ) -> Option<(usize, usize)> {
        let (id, question) = wire::header(datagram).ok()?;
        flights.iter().enumerate().find_map(|(i, f)| {
            let q = &questions[f.q];
            let asked =
                question.name == q.name && question.rtype == q.rtype && question.class == wire::CLASS_IN;
            let server = f.tries.iter().find(|&&(s, tid)| {
                let addr = self.settings.servers[s];
                tid == id && addr.ip() == from.ip() && addr.port() == from.port()
            });
            server.filter(|_| asked).map(|&(s, _)| (i, s))
        })
    }

    /// Asks again over TCP after a truncated reply; the reply if it matches.
    fn over_tcp(&mut self, q: &Question, server: usize, until: Instant) -> Option<Reply> {
        let addr = self.settings.servers[server];
        let id = self.fresh_id(&[]);
        let query = wire::query(id, &q.name, q.rtype);
        self.stats.tcp += 1;
        let bytes = tcp_exchange(addr, &query, until).ok()?;
        let reply = wire::parse(&bytes).ok()?;
        let same = reply.id == id && reply.question.name == q.name && reply.question.rtype == q.rtype;
        // A reply over TCP that still says it is truncated holds part of the records only.
        (same && !reply.truncated).then_some(reply)
    }
}

/// One query over TCP (RFC 1035 §4.2.2: two length octets before each message), every
/// step within `until`.
fn tcp_exchange(addr: SocketAddr, query: &[u8], until: Instant) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&addr, left(until)?)?;
    stream.set_write_timeout(Some(left(until)?))?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed)?;
    let mut len = [0u8; 2];
    read_exact_until(&mut stream, &mut len, until)?;
    let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
    read_exact_until(&mut stream, &mut body, until)?;
    Ok(body)
}

fn left(until: Instant) -> io::Result<Duration> {
    let left = until.saturating_duration_since(Instant::now());
    if left.is_zero() || TERMINATE.load(Ordering::SeqCst) {
        return Err(io::Error::from(io::ErrorKind::TimedOut));
    }
    Ok(left)
}

fn read_exact_until(stream: &mut TcpStream, buf: &mut [u8], until: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        stream.set_read_timeout(Some(left(until)?.min(LONGEST_WAIT)))?;
        match stream.read(&mut buf[got..]) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof)),
            Ok(n) => got += n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
