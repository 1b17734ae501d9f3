//! Builds of qpsmtpd-rs side by side (`bench/variants`, or `--variant NAME=PATH` given
//! more than once): the same sample chain served by each binary, measured in the same
//! rounds beside the floors and Postfix, then what one session of each costs: CPU, page
//! faults, instructions (callgrind), exec-to-greeting, peak RSS, and the binary's size
//! and load-time relocations.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{
    Opts, Target, callgrind, compare, cost, exec_to_greeting, make_maildir, peers, s_num, sample_chain,
    start, write_config,
};

pub fn run(o: &Opts, variants: &[(String, PathBuf)], tcpserver: &Path, floor: &Path, body: &[u8]) {
    let dir = o.work.join("variants");
    let cfg = write_config(&dir, &sample_chain(&dir));
    let floor_dir = o.work.join("floor-maildir");
    make_maildir(&floor_dir);
    let cfg_arg = vec!["--config".into(), cfg.to_string_lossy().into_owned()];
    let server = |name: String, prog: &Path, args: &[String]| {
        let t = Target::start_env(tcpserver, prog, args, &dir, &[]);
        compare::Server {
            name,
            port: t.port,
            sessions: o.sessions,
            warm: 20,
            keep: Box::new(t),
        }
    };
    let mut servers = vec![
        server("floor (no storage)".into(), floor, &[]),
        server(
            "floor (maildir+fsync)".into(),
            floor,
            &["--maildir".into(), floor_dir.to_string_lossy().into_owned()],
        ),
    ];
    if o.peers {
        match peers::Postfix::server(&o.work.join("postfix"), o.sessions) {
            Ok(server) => servers.push(server),
            Err(e) => println!("Postfix: skipped, {e}"),
        }
    }
    let first = servers.len();
    for (name, bin) in variants {
        servers.push(server(format!("qpsmtpd-rs {name}"), bin, &cfg_arg));
    }
    // Each build against the first build, and against every server that is not ours.
    let mut pairs = Vec::new();
    for v in first..servers.len() {
        if v != first {
            pairs.push((v, first));
        }
        for other in 0..first {
            pairs.push((v, other));
        }
    }
    compare::run_pairs(&servers, &o.concurrencies, o.rounds, o.greetings, body, &pairs);
    drop(servers);

    println!(
        "\nper session ({} whole sessions one at a time; instructions by callgrind; exec to \
         greeting p50; peak RSS and the pages the session wrote, its private memory):",
        o.greetings
    );
    println!(
        "  {:<16} {:>9} {:>7} {:>9} {:>8} {:>11} {:>8} {:>7} {:>8}",
        "build", "size", "relocs", "CPU ms", "faults", "instructions", "greet", "RSS", "private"
    );
    let transcript = o.work.join("session.txt");
    std::fs::write(&transcript, super::transcript_text(body)).unwrap();
    let mut first_cpu = None;
    for (name, bin) in variants {
        let mut cmd = Command::new(bin);
        cmd.arg("--config").arg(&cfg).current_dir(&dir);
        let c = cost::per_session(&mut cmd, body, o.greetings);
        first_cpu.get_or_insert(c.cpu_ms);
        let instr = callgrind(bin, &cfg, &dir, &transcript);
        let greet = exec_to_greeting(&mut cmd, o.greetings).0;
        let mem = cost::memory(&mut cmd, body);
        println!(
            "  {:<16} {:>8}K {:>7} {:>9.3} {:>8.1} {:>11} {:>6.3}ms {:>5.1}MB {:>6.2}MB",
            name,
            std::fs::metadata(bin).map(|m| m.len() / 1024).unwrap_or(0),
            relocations(bin),
            c.cpu_ms,
            c.minor_faults,
            s_num(instr),
            greet * 1e3,
            mem.peak_rss as f64 / 1024.0,
            mem.private as f64 / 1024.0
        );
    }
    start::run(&o.starts, o.greetings, first_cpu.unwrap_or(0.0));
}

/// Dynamic relocations the loader (or static-pie's self-relocation) applies at start, as
/// `readelf -r` lists them (a packed RELR table counts as its entries' words).
fn relocations(bin: &Path) -> String {
    let Ok(out) = Command::new("readelf").arg("-rW").arg(bin).output() else {
        return "?".into();
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let mut n = 0usize;
    for line in text.lines() {
        // "Relocation section '.rela.dyn' at offset 0x... contains 16003 entries:"
        if let Some(rest) = line.split(" contains ").nth(1) {
            n += rest
                .split_whitespace()
                .next()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(0);
        }
    }
    n.to_string()
}
