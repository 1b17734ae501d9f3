//! What one session costs the machine: CPU time and page faults of the process, from exec
//! to exit, averaged over sessions run one after another (getrusage of the waited
//! children: no hardware counters needed, so it works in a VM; the instruction count
//! comes from callgrind instead).

use std::io::{BufReader, Read, Write};
use std::net::Shutdown;
use std::process::Command;

use nix::sys::resource::{UsageWho, getrusage};

use super::{converse, expect, socket_pair, spawn_inetd, spawn_on};

/// Per-session averages.
pub struct Cost {
    /// User + system CPU, milliseconds.
    pub cpu_ms: f64,
    pub user_ms: f64,
    pub minor_faults: f64,
    pub major_faults: f64,
    /// Sessions that did not get to the end (their figures still count).
    pub failed: usize,
}

/// The waited children's user and system seconds, minor and major faults, so far.
pub fn snapshot() -> (f64, f64, f64, f64) {
    match getrusage(UsageWho::RUSAGE_CHILDREN) {
        Ok(u) => {
            let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            (
                secs(u.user_time()),
                secs(u.system_time()),
                u.minor_page_faults() as f64,
                u.major_page_faults() as f64,
            )
        }
        Err(_) => (0.0, 0.0, 0.0, 0.0),
    }
}

/// Runs `n` whole sessions (greeting to `221`) of `cmd`, each with a socket as fd 0/1,
/// one at a time, and averages what the children used. No other child of ours may end
/// meanwhile: its usage would be counted too.
pub fn per_session(cmd: &mut Command, body: &[u8], n: usize) -> Cost {
    let before = snapshot();
    let mut failed = 0;
    for _ in 0..n {
        let (client, server) = socket_pair();
        let mut child = spawn_on(cmd, server);
        if drive(client, body).is_err() {
            failed += 1;
        }
        let _ = child.wait();
    }
    average(before, snapshot(), n, failed)
}

/// The average over `n` children from two [`snapshot`]s.
pub fn average(before: (f64, f64, f64, f64), after: (f64, f64, f64, f64), n: usize, failed: usize) -> Cost {
    let per = |a: f64, b: f64| (b - a) / n.max(1) as f64;
    Cost {
        cpu_ms: per(before.0 + before.1, after.0 + after.1) * 1e3,
        user_ms: per(before.0, after.0) * 1e3,
        minor_faults: per(before.2, after.2),
        major_faults: per(before.3, after.3),
        failed,
    }
}

fn drive(s: std::net::TcpStream, body: &[u8]) -> std::io::Result<()> {
    converse(&s, body)?;
    let _ = s.shutdown(Shutdown::Write);
    let _ = (&s).read_to_end(&mut Vec::new());
    Ok(())
}

/// Prints one row of the per-session table.
pub fn print(name: &str, c: &Cost) {
    println!(
        "  {name:<28} {:>7.3} ms CPU ({:.3} user) {:>7.1} minor faults {:>5.1} major{}",
        c.cpu_ms,
        c.user_ms,
        c.minor_faults,
        c.major_faults,
        if c.failed > 0 {
            format!("   ({} sessions failed)", c.failed)
        } else {
            String::new()
        }
    );
}

/// One session's memory, read just before QUIT (kilobytes).
pub struct Memory {
    /// Peak resident set (VmHWM): every page mapped in, shared ones included.
    pub peak_rss: u64,
    /// Pages only this process has written (smaps_rollup Private_Dirty: heap, stack,
    /// relocated data): what one more concurrent session costs the machine. Clean pages
    /// of the program and libc are the page cache's, shared by every session.
    pub private: u64,
    /// Resident pages of the program file itself (shared with every other session).
    pub binary: u64,
}

/// Memory of one whole session of `cmd` with `body` as its message.
pub fn memory(cmd: &mut Command, body: &[u8]) -> Memory {
    let (mut child, s) = spawn_inetd(cmd);
    let pid = child.id();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    let ok = (|| -> std::io::Result<()> {
        expect(&mut r, "220")?;
        w.write_all(
            b"EHLO bench.example\r\nMAIL FROM:<bench@example.net>\r\nRCPT TO:<user@example.org>\r\nDATA\r\n",
        )?;
        for code in ["250", "250", "250", "354"] {
            expect(&mut r, code)?;
        }
        w.write_all(body)?;
        expect(&mut r, "250")
    })();
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .filter(|l| l.starts_with(name))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum()
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    // Sum the Rss lines of the mappings of the program file.
    let mut binary = 0;
    let mut in_exe = false;
    for line in smaps.lines() {
        let first = line.split_whitespace().next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            in_exe = line.ends_with(exe.to_string_lossy().as_ref());
        } else if in_exe && line.starts_with("Rss:") {
            binary += line
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    let m = Memory {
        peak_rss: field(&status, "VmHWM:"),
        private: field(&rollup, "Private_Dirty:"),
        binary,
    };
    let _ = w.write_all(b"QUIT\r\n");
    let _ = w.shutdown(Shutdown::Write);
    let _ = r.read_to_end(&mut Vec::new());
    let _ = child.wait();
    if let Err(e) = ok {
        eprintln!("session for memory failed: {e}");
    }
    m
}

/// Prints one row of the memory table.
pub fn print_memory(name: &str, m: &Memory) {
    println!(
        "  {name:<28} {:>5.1} MB peak RSS: {:>5.2} MB written by the session (private), {:>5.2} MB \
         of the program file (page cache)",
        m.peak_rss as f64 / 1024.0,
        m.private as f64 / 1024.0,
        m.binary as f64 / 1024.0
    );
}
