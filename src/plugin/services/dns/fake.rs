//! A DNS server in a thread, for the resolver's unit tests: it answers each query as a
//! closure says, and can misbehave (answer late, with another ID, another question, from
//! another port, truncated). The real test server for the integration tests is
//! `tests/dns/testdns.py`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::wire::{Data, Question, rtype};

/// What the server does for one query.
#[derive(Debug, Clone)]
pub enum Act {
    /// Send these bytes from the server's socket.
    Send(Vec<u8>),
    /// Send these bytes from another socket (another source port).
    SendFromElsewhere(Vec<u8>),
    /// Wait first.
    Sleep(Duration),
}

/// A query as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The ID.
    pub id: u16,
    /// The question.
    pub question: Question,
    /// `true` over TCP.
    pub tcp: bool,
}

type Handler = dyn Fn(&Seen) -> Vec<Act> + Send + Sync;

/// The running server; stopped when dropped.
pub struct FakeServer {
    /// Its address (UDP and TCP on the same port).
    pub addr: SocketAddr,
    /// Every query it got, in order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts a server on 127.0.0.1 that answers as `handler` says, each query in its
    /// own thread (so that delays overlap, as a real server's do).
    pub fn start(handler: impl Fn(&Seen) -> Vec<Act> + Send + Sync + 'static) -> FakeServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        let handler: Arc<Handler> = Arc::new(handler);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let (h, s, st) = (handler.clone(), seen.clone(), stop.clone());
        let udp_thread = std::thread::spawn(move || serve_udp(udp, h, s, st));
        let (h, s, st) = (handler, seen.clone(), stop.clone());
        let tcp_thread = std::thread::spawn(move || serve_tcp(tcp, h, s, st));
        FakeServer {
            addr,
            seen,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// The questions it was asked, as `name/type` (`+tcp` over TCP).
    pub fn asked(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}/{}{}",
                    s.question.name,
                    s.question.rtype,
                    if s.tcp { "+tcp" } else { "" }
                )
            })
            .collect()
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        if let Ok(tcp) = TcpListener::bind(udp.local_addr().unwrap()) {
            return (udp, tcp);
        }
    }
    panic!("no port free for UDP and TCP together");
}

fn serve_udp(udp: UdpSocket, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = udp.recv_from(&mut buf) else {
            continue;
        };
        let Some(query) = read_query(&buf[..n], false) else {
            continue;
        };
        seen.lock().unwrap().push(query.clone());
        let (udp, handler) = (udp.try_clone().unwrap(), handler.clone());
        std::thread::spawn(move || {
            for act in handler(&query) {
                match act {
                    Act::Sleep(d) => std::thread::sleep(d),
                    Act::Send(bytes) => drop(udp.send_to(&bytes, from)),
                    Act::SendFromElsewhere(bytes) => {
                        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
                        let _ = other.send_to(&bytes, from);
                    }
                }
            }
        });
    }
}

fn serve_tcp(tcp: TcpListener, handler: Arc<Handler>, seen: Arc<Mutex<Vec<Seen>>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        let Ok((mut conn, _)) = tcp.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut len = [0u8; 2];
        if conn.read_exact(&mut len).is_err() {
            continue;
        }
        let mut msg = vec![0u8; u16::from_be_bytes(len) as usize];
        if conn.read_exact(&mut msg).is_err() {
            continue;
        }
        let Some(query) = read_query(&msg, true) else {
            continue;
        };
        seen.lock().unwrap().push(query.clone());
        for act in handler(&query) {
            match act {
                Act::Sleep(d) => std::thread::sleep(d),
                Act::Send(bytes) | Act::SendFromElsewhere(bytes) => {
                    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
                    framed.extend(bytes);
                    let _ = conn.write_all(&framed);
                }
            }
        }
    }
}

/// A query's ID and question (uncompressed, as ours are).
fn read_query(msg: &[u8], tcp: bool) -> Option<Seen> {
    let id = u16::from_be_bytes([*msg.first()?, *msg.get(1)?]);
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *msg.get(pos)? as usize;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(msg.get(pos + 1..pos + 1 + len)?).into_owned());
        pos += 1 + len;
    }
    let rtype = u16::from_be_bytes([*msg.get(pos + 1)?, *msg.get(pos + 2)?]);
    let class = u16::from_be_bytes([*msg.get(pos + 3)?, *msg.get(pos + 4)?]);
    let name = labels.join(".");
    Some(Seen {
        id,
        question: Question { name, rtype, class },
        tcp,
    })
}

/// A reply message: header, the question, the answers (no compression).
pub fn reply(id: u16, q: &Question, rcode: u8, truncated: bool, answers: &[(&str, Data)]) -> Vec<u8> {
    let mut out = id.to_be_bytes().to_vec();
    let flags: u16 = 0x8180 | if truncated { 0x0200 } else { 0 } | u16::from(rcode);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    push_name(&mut out, &q.name);
    out.extend_from_slice(&q.rtype.to_be_bytes());
    out.extend_from_slice(&q.class.to_be_bytes());
    for (owner, data) in answers {
        push_name(&mut out, owner);
        let (t, rdata) = encode(data);
        out.extend_from_slice(&t.to_be_bytes());
        out.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend(rdata);
    }
    out
}

/// A name in wire form, uncompressed.
pub fn push_name(out: &mut Vec<u8>, name: &str) {
    for label in name.split('.').filter(|l| !l.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
}

fn encode(data: &Data) -> (u16, Vec<u8>) {
    let name = |n: &str| {
        let mut v = Vec::new();
        push_name(&mut v, n);
        v
    };
    match data {
        Data::A(a) => (rtype::A, a.octets().to_vec()),
        Data::Aaaa(a) => (rtype::AAAA, a.octets().to_vec()),
        Data::Mx(p, x) => {
            let mut v = p.to_be_bytes().to_vec();
            v.extend(name(x));
            (rtype::MX, v)
        }
        Data::Txt(strings) => {
            let mut v = Vec::new();
            for s in strings {
                v.push(s.len() as u8);
                v.extend_from_slice(s);
            }
            (rtype::TXT, v)
        }
        Data::Ptr(n) => (rtype::PTR, name(n)),
        Data::Cname(n) => (rtype::CNAME, name(n)),
        Data::Other => (99, Vec::new()),
    }
}

/// A server answering from these records (owner, data): the records of the asked name
/// and type, NODATA when the name has others, else NXDOMAIN.
pub fn serving(records: &[(&str, Data)]) -> FakeServer {
    serving_failing(records, &[])
}

/// [`serving`], but names equal to or under one of `servfail` get `SERVFAIL`.
pub fn serving_failing(records: &[(&str, Data)], servfail: &[&str]) -> FakeServer {
    let records: Vec<(String, Data)> = records.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
    let servfail: Vec<String> = servfail.iter().map(|n| n.to_string()).collect();
    FakeServer::start(move |s| {
        let q = &s.question;
        if servfail
            .iter()
            .any(|f| q.name == *f || q.name.ends_with(&format!(".{f}")))
        {
            return vec![Act::Send(reply(s.id, q, 2, false, &[]))];
        }
        let owned: Vec<&(String, Data)> = records.iter().filter(|(n, _)| *n == q.name).collect();
        let hits: Vec<(&str, Data)> = owned
            .iter()
            .filter(|(_, d)| encode(d).0 == q.rtype)
            .map(|(n, d)| (n.as_str(), d.clone()))
            .collect();
        let rcode = if owned.is_empty() { 3 } else { 0 };
        vec![Act::Send(reply(s.id, q, rcode, false, &hits))]
    })
}

/// A config directory whose `dns_servers` is `server`, with these other files.
pub fn config_for(server: &FakeServer, files: &[(&str, &str)]) -> (tempfile::TempDir, crate::config::Config) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dns_servers"), server.addr.to_string()).unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let config = crate::config::Config::open(dir.path(), None).unwrap();
    (dir, config)
}
