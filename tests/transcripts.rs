//! Runs every `tests/transcripts/**/*.smtp` twice: in-process (the session over a
//! scripted transport) and through the real binary with a TCP socket as fd 0/1 (or a
//! pipe for `! pipe` transcripts). A run that executes no transcript fails.
//!
//! Two switches make the run shorter for the mutation test (tests/mutants/run), never
//! in CI: `QPSMTPD_RS_TRANSCRIPTS_IN_PROCESS=1` skips the runs through the binary, and
//! `QPSMTPD_RS_TRANSCRIPTS_SKIP=dns,tls` skips the transcripts under those folders.

use crate::support::transcript::{self, Transcript};
use crate::support::{TestDir, binary_command, dns, root, run_in_process, run_over_socket, verify};

#[test]
fn transcripts() {
    let top = root().join("tests/transcripts");
    let skipped = skipped_folders();
    let files: Vec<_> = transcript::all(&top)
        .into_iter()
        .filter(|p| !skipped.iter().any(|d| p.starts_with(top.join(d))))
        .collect();
    let in_process_only = std::env::var("QPSMTPD_RS_TRANSCRIPTS_IN_PROCESS").is_ok_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut runs = 0;
    for path in &files {
        let mut t = match Transcript::load(path) {
            Ok(t) => t,
            Err(e) => {
                failures.push(e);
                continue;
            }
        };
        let Ok(dns) = dns::for_transcript(&mut t) else {
            continue;
        };
        let dir = TestDir::new(&t.config);
        let mut run = run_in_process(&t, &dir);
        if let Some(dns) = &dns {
            run.dns_log = dns.settled_log();
            dns.clear_log();
        }
        runs += 1;
        if let Err(e) = verify(&t, &dir, &run, "in-process") {
            failures.push(e);
        }
        if t.in_process_only || in_process_only {
            continue;
        }
        let dir = TestDir::new(&t.config);
        let mut run = run_over_socket(&t, binary_command(&dir), false);
        if let Some(dns) = &dns {
            run.dns_log = dns.settled_log();
        }
        runs += 1;
        if let Err(e) = verify(&t, &dir, &run, "binary") {
            failures.push(e);
        }
    }
    assert!(runs > 0, "no transcript ran");
    eprintln!("{runs} transcript runs from {} files", files.len());
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The folders named in `QPSMTPD_RS_TRANSCRIPTS_SKIP` (comma-separated).
fn skipped_folders() -> Vec<String> {
    std::env::var("QPSMTPD_RS_TRANSCRIPTS_SKIP")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}
