//! What starting a process costs on this machine, apart from anything a server does: the
//! C program bench/start.c, which returns at once, built by bench/run with glibc (linked
//! in as static-pie, as the shipped server is) and, when musl-gcc is installed, with musl
//! (static). Each is spawned and waited for one at a time; the figures are the waited
//! children's getrusage, as for whole sessions ([super::cost]). The difference between
//! the two is what the C library's own start-up costs every process (glibc asks the CPU
//! for its features and cache sizes with CPUID, which traps to the hypervisor on a
//! virtual machine).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use super::cost::{self, Cost};

/// Spawns `path` `n` times, one after another, and averages what the children used.
fn measure(path: &PathBuf, n: usize) -> Cost {
    let before = cost::snapshot();
    let mut failed = 0;
    for _ in 0..n {
        let ok = Command::new(path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            failed += 1;
        }
    }
    cost::average(before, cost::snapshot(), n, failed)
}

/// Prints one row per probe, then how much of a session's CPU (`session_ms`, the sample
/// chain's) the glibc start costs beyond the musl one, when both were built.
pub fn run(probes: &[(String, PathBuf)], n: usize, session_ms: f64) {
    if probes.is_empty() {
        return;
    }
    println!("\nprocess start alone (bench/start.c, which returns at once; spawned {n} times; getrusage):");
    let costs: Vec<(&str, Cost)> = probes
        .iter()
        .map(|(name, path)| (name.as_str(), measure(path, n)))
        .collect();
    for (name, c) in &costs {
        cost::print(name, c);
    }
    let find = |prefix: &str| costs.iter().find(|(name, _)| name.starts_with(prefix));
    if let (Some((_, glibc)), Some((_, musl)), true) = (find("glibc"), find("musl"), session_ms > 0.0) {
        let extra = glibc.cpu_ms - musl.cpu_ms;
        println!(
            "  glibc's start over musl's: {extra:.3} ms CPU per process, {:.0}% of a qpsmtpd-rs sample session's {session_ms:.3} ms",
            extra / session_ms * 100.0
        );
    }
}
