//! The side-by-side figure: every server up at once on loopback, then, round after round,
//! each one driven by the same closed-loop client (one ~2 KB message per connection) at
//! each concurrency in turn, so that a busy moment on a shared machine lands on all of
//! them alike. It prints msgs/s with the range over rounds, and every ratio of ours to
//! the others, each ratio taken within one round.

use std::any::Any;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use super::{greetings, percentiles, session};

/// A server under test: its name, its loopback port, how many sessions a measurement
/// drives and how many warm it up, and whatever keeps it running until dropped.
pub struct Server {
    pub name: String,
    pub port: u16,
    pub sessions: usize,
    pub warm: usize,
    // Held only for its Drop, which stops the server.
    #[allow(dead_code)]
    pub keep: Box<dyn Any>,
}

/// One measurement: a number of sessions at one concurrency.
#[derive(Clone, Copy)]
struct Load {
    rate: f64,
    p50: f64,
    failed: usize,
}

/// Sessions at `concurrency` clients, each starting the next as soon as it ends.
fn load(addr: &str, sessions: usize, concurrency: usize, body: &[u8]) -> Load {
    let next = AtomicUsize::new(0);
    let times = Mutex::new(Vec::with_capacity(sessions));
    let failed = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..concurrency {
            s.spawn(|| {
                while next.fetch_add(1, Ordering::SeqCst) < sessions {
                    match session(addr, body) {
                        Ok(d) => times.lock().unwrap().push(d.as_secs_f64()),
                        Err(_) => {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            });
        }
    });
    let wall = start.elapsed().as_secs_f64();
    let times = times.into_inner().unwrap();
    let rate = times.len() as f64 / wall;
    Load {
        rate,
        p50: percentiles(times).0,
        failed: failed.into_inner(),
    }
}

/// `loads[server][concurrency][round]`.
type Loads = Vec<Vec<Vec<Load>>>;

/// Runs the rounds and prints the table and the ratios of ours (the first server whose
/// name starts with "qpsmtpd-rs") to each other server.
pub fn run(servers: &[Server], concurrencies: &[usize], rounds: usize, greets: usize, body: &[u8]) {
    let ours = servers.iter().position(|s| s.name.starts_with("qpsmtpd-rs"));
    let pairs: Vec<(usize, usize)> = ours
        .map(|o| (0..servers.len()).filter(|&i| i != o).map(|i| (o, i)).collect())
        .unwrap_or_default();
    run_pairs(servers, concurrencies, rounds, greets, body, &pairs);
}

/// Runs the rounds and prints the table and the ratio of each pair's first server's
/// msgs/s to its second's.
pub fn run_pairs(
    servers: &[Server],
    concurrencies: &[usize],
    rounds: usize,
    greets: usize,
    body: &[u8],
    pairs: &[(usize, usize)],
) {
    let addr = |s: &Server| format!("127.0.0.1:{}", s.port);
    // Warm-up: page cache, the daemons' process pools, Haraka's JIT.
    let mut greet = Vec::new();
    for s in servers {
        let _ = load(&addr(s), s.warm, 2, body);
        greet.push(greetings(&addr(s), greets.min(s.sessions)));
    }
    let mut loads: Loads = vec![vec![Vec::new(); concurrencies.len()]; servers.len()];
    for _ in 0..rounds {
        for (ci, &c) in concurrencies.iter().enumerate() {
            for (si, s) in servers.iter().enumerate() {
                loads[si][ci].push(load(&addr(s), s.sessions, c, body));
            }
        }
    }
    print_table(servers, concurrencies, rounds, &loads, &greet);
    println!("load average after the rounds: {}", super::load_average());
    print_ratios(servers, concurrencies, &loads, pairs);
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// "median (min-max)" of a set of figures, with `prec` decimals.
fn spread(v: &[f64], prec: usize) -> String {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() < 2 {
        return format!("{:.prec$}", median(v.to_vec()));
    }
    format!("{:.prec$} ({lo:.prec$}-{hi:.prec$})", median(v.to_vec()))
}

fn print_table(
    servers: &[Server],
    concurrencies: &[usize],
    rounds: usize,
    loads: &Loads,
    greet: &[(f64, f64)],
) {
    println!(
        "msgs/s: median (range) over {rounds} round{}; session p50 in ms; greeting p50 in ms, \
         sequential",
        if rounds == 1 { "" } else { "s" }
    );
    print!("{:<26}", "target");
    for c in concurrencies {
        print!(" {:>20} {:>6}", format!("{c} clients msgs/s"), "p50");
    }
    println!(" {:>8} {:>7}", "greeting", "failed");
    for (si, s) in servers.iter().enumerate() {
        print!("{:<26}", s.name);
        let mut failed = 0;
        for l in &loads[si] {
            let rates: Vec<f64> = l.iter().map(|x| x.rate).collect();
            let p50 = median(l.iter().map(|x| x.p50 * 1e3).collect());
            failed += l.iter().map(|x| x.failed).sum::<usize>();
            print!(" {:>20} {:>6.2}", spread(&rates, 0), p50);
        }
        println!(" {:>8.2} {:>7}", greet[si].0 * 1e3, failed);
    }
}

fn print_ratios(servers: &[Server], concurrencies: &[usize], loads: &Loads, pairs: &[(usize, usize)]) {
    if pairs.is_empty() {
        return;
    }
    println!("\nratios, each taken within one round: median (range)");
    print!("{:<52}", "");
    for c in concurrencies {
        print!(" {:>20}", format!("{c} clients"));
    }
    println!();
    for &(num, den) in pairs {
        let label = format!("{} / {}", servers[num].name, servers[den].name);
        print!("{label:<52}");
        for (mine, theirs) in loads[num].iter().zip(&loads[den]) {
            let r: Vec<f64> = mine
                .iter()
                .zip(theirs)
                .filter(|(_, d)| d.rate > 0.0)
                .map(|(n, d)| n.rate / d.rate)
                .collect();
            print!(" {:>20}", spread(&r, 2));
        }
        println!();
    }
}
