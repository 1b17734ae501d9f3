//! Differential test against Perl qpsmtpd: every transcript marked `! differential` runs
//! through Perl qpsmtpd (Debian's package, started by `tests/oracle/qpsmtpd-tcpserver`)
//! with the same config directory, and the reply codes must equal the transcript's,
//! except where a line says `[perl NNN]`: a deliberate fix that the README lists.

use std::path::Path;
use std::process::Command;

use crate::support::transcript::{self, Expected, Transcript};
use crate::support::{TestDir, dns, required, root, run_over_socket};

const PERL_LIB: &str = "/usr/share/perl5/Qpsmtpd/TcpServer.pm";
const PERL_PLUGINS: &str = "/usr/share/qpsmtpd/plugins";

/// Reply codes, one per reply (a multi-line reply counts once, by its last line).
fn codes<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<String> {
    lines
        .filter(|l| l.as_bytes().get(3) != Some(&b'-'))
        .map(|l| l.get(..3).unwrap_or(l).to_string())
        .collect()
}

/// The codes Perl should give: the transcript's, or the `[perl NNN]` annotation.
fn perl_codes(expected: &[&Expected]) -> Vec<String> {
    expected
        .iter()
        .filter(|e| e.text.as_bytes().get(3) != Some(&b'-'))
        .map(|e| e.perl_code.clone().unwrap_or_else(|| e.code().to_string()))
        .collect()
}

#[test]
fn reply_codes_match_perl_qpsmtpd() {
    if !Path::new(PERL_LIB).exists() {
        assert!(
            !required(),
            "Perl qpsmtpd is required (QPSMTPD_RS_REQUIRE_ALL=1) but {PERL_LIB} is missing"
        );
        eprintln!("SKIPPED: Perl qpsmtpd is not installed (apt-get install qpsmtpd)");
        return;
    }
    let oracle = root().join("tests/oracle/qpsmtpd-tcpserver");
    let mut compared = 0;
    let mut failures = Vec::new();
    for path in transcript::all(&root().join("tests/transcripts")) {
        let mut t = Transcript::load(&path).unwrap();
        if !t.differential {
            continue;
        }
        let Ok(_dns) = dns::for_transcript(&mut t) else {
            continue;
        };
        t.config.push(("plugin_dirs".into(), PERL_PLUGINS.into()));
        if !t.env.iter().any(|(k, _)| k == "TCPREMOTEIP") {
            // Perl's inetd mode would look the peer up in DNS.
            t.env.push(("TCPREMOTEIP".into(), "127.0.0.1".into()));
        }
        let dir = TestDir::new(&t.config);
        let mut cmd = Command::new("perl");
        cmd.arg(&oracle)
            .env("QPSMTPD_CONFIG", dir.config())
            .env("HOME", dir.path())
            .current_dir(dir.path());
        let run = run_over_socket(&t, cmd, true);
        let want = perl_codes(&t.expected());
        let got = codes(run.lines.iter().map(String::as_str));
        compared += 1;
        if want != got {
            failures.push(format!(
                "{}:\n  expected codes {want:?}\n  Perl gave      {got:?}\n--- Perl replies ---\n{}\n--- Perl log ---\n{}",
                path.display(),
                run.lines.join("\n"),
                run.log.join("\n")
            ));
        }
    }
    assert!(compared > 0, "no transcript is marked ! differential");
    eprintln!("{compared} transcripts compared with Perl qpsmtpd");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
