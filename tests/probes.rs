//! Third-party probes through the real binary under tcpserver: nmap's smtp-open-relay
//! script, and the published SMTP smuggling payloads sent by a raw client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::clients::{tcpserver, wait_listening};
use crate::support::{TestDir, tool};

/// Our name (`me`), and the domain nmap tries to relay to when it is not ours.
const ME: &str = "mx.test";
const ELSEWHERE: &str = "elsewhere.example";

/// A server for example.org and for our own name, with the relay plugin (relayclients).
fn relay_config(relayclients: Option<&str>) -> Vec<(String, String)> {
    let mut lines = vec![
        ("me", ME),
        ("plugins", "relay"),
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("rcpthosts", "example.org"),
    ];
    if let Some(r) = relayclients {
        lines.push(("relayclients", r));
    }
    lines
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// nmap's smtp-open-relay script against 127.0.0.1:port, trying to relay to `domain`;
/// its verbose report. The script runs only on ports nmap takes for SMTP: a services
/// file in a private data directory names the test port so (nmap's own scripts are
/// still found in its default directory), which avoids a slow version scan.
fn nmap_open_relay(nmap: &Path, port: u16, domain: &str, scratch: &Path) -> String {
    let data = scratch.join("nmap-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("nmap-services"), format!("smtp\t{port}/tcp\t0.5\n")).unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg(nmap)
        .args(["-vv", "-Pn", "-sT", "-p", &port.to_string(), "--datadir"])
        .arg(&data)
        .args([
            "--script",
            "smtp-open-relay",
            "--script-args",
            &format!("smtp-open-relay.domain={domain},smtp-open-relay.ip=127.0.0.1"),
            "127.0.0.1",
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("smtp-open-relay"),
        "the script did not run: {report}"
    );
    report
}

/// The recipients nmap got accepted (`MAIL FROM:<...> -> RCPT TO:<...>` lines).
fn accepted(report: &str) -> Vec<String> {
    report
        .lines()
        .filter_map(|l| l.split_once("-> RCPT TO:<"))
        .map(|(_, to)| to.trim_end().trim_end_matches('>').to_string())
        .collect()
}

/// nmap's open-relay script with our own name as its domain (the routed forms
/// `relaytest%ME@[127.0.0.1]`, `ME!relaytest@ME`, `"relaytest@ME"@[127.0.0.1]`, ...) and
/// with an outside domain, from a client that may not relay: nothing routed is taken.
/// The only combinations it lists with our own name are plain deliveries to our own
/// mailbox `relaytest@ME` (with a source route, which RFC 5321 §4.1.2 says to drop);
/// with an outside domain every test fails. And the probe would notice: with
/// relayclients letting 127.0.0.1 relay, it reports an open relay.
#[test]
fn nmap_smtp_open_relay_finds_no_relay_for_a_client_that_may_not_relay() {
    let (Some(nmap), Some(tcpserver_bin)) = (tool("nmap"), tool("tcpserver")) else {
        return;
    };
    let dir = TestDir::new(&relay_config(None));
    let server = tcpserver(&tcpserver_bin, &dir, &[]);
    wait_listening(server.port);

    let own = nmap_open_relay(&nmap, server.port, ME, dir.path());
    let local = format!("relaytest@{ME}");
    for to in accepted(&own) {
        let mailbox = to.rsplit_once(':').map_or(to.as_str(), |(_, m)| m);
        assert_eq!(mailbox, local, "a routed recipient was accepted: {to}\n{own}");
        assert!(to == local || to.starts_with('@'), "{to}\n{own}");
    }
    let own_lines = accepted(&own);
    assert!(
        own_lines.len() <= 6 && !own.contains('%') && !own.contains('!'),
        "{own}"
    );

    let outside = nmap_open_relay(&nmap, server.port, ELSEWHERE, dir.path());
    assert!(
        outside.contains("Server doesn't seem to be an open relay, all tests failed"),
        "{outside}"
    );
    drop(server);

    // The same probe sees relaying where it is allowed.
    let dir = TestDir::new(&relay_config(Some("127.0.0.1")));
    let server = tcpserver(&tcpserver_bin, &dir, &[]);
    let relaying = nmap_open_relay(&nmap, server.port, ELSEWHERE, dir.path());
    assert!(relaying.contains("Server is an open relay"), "{relaying}");
    assert!(
        accepted(&relaying).contains(&format!("relaytest@{ELSEWHERE}")),
        "{relaying}"
    );
}

/// Reads one whole reply; returns its last line.
fn reply(reader: &mut BufReader<TcpStream>) -> String {
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return line;
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return line;
        }
    }
}

/// The published SMTP smuggling end-of-data sequences (SEC Consult, 2023, and the
/// variants of their scanner), each sent by a raw client under tcpserver inside one
/// message followed by a second, spoofed transaction and the real end of data: each
/// ends as one refused message or one message, never two; the spoofed commands are
/// never answered as commands and the spoofed sender is never an envelope sender.
#[test]
fn smtp_smuggling_payloads_give_one_message_or_a_refusal_never_two() {
    let Some(tcpserver_bin) = tool("tcpserver") else {
        return;
    };
    let payloads: [&[u8]; 16] = [
        b"\n.\r\n",
        b"\n.\n",
        b"\r.\r\n",
        b"\r\n.\r",
        b"\r\n\x00.\r\n",
        b"\n.\r",
        b"\r.\n",
        b"\r.\r",
        b"\r\n.\n",
        b"\r\n.\x00\r\n",
        b"\r\n\x00.\x00\r\n",
        b"\r\n.\r\r\n",
        b"\r\r\n.\r\r\n",
        b"\n\n.\n\n",
        b"\r\n .\r\n",
        b"\r\n\t.\r\n",
    ];
    let dir = TestDir::new(&[
        ("plugins".to_string(), "relay".to_string()),
        ("plugins".to_string(), "rcpt_ok".to_string()),
        ("plugins".to_string(), "queue/maildir $DIR/maildir".to_string()),
        ("rcpthosts".to_string(), "example.org".to_string()),
    ]);
    let server = tcpserver(&tcpserver_bin, &dir, &[]);
    let mut before = 0;
    for payload in payloads {
        let case = format!("{payload:?}");
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        assert!(reply(&mut reader).starts_with("220"), "{case}");
        writer
            .write_all(b"EHLO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
            .unwrap();
        for code in ["250", "250", "250", "354"] {
            let line = reply(&mut reader);
            assert!(line.starts_with(code), "{case}: {line}");
        }
        let mut message = b"Subject: first\r\n\r\nhello".to_vec();
        message.extend_from_slice(payload);
        message.extend_from_slice(
            b"MAIL FROM:<ceo@smuggled.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n\
              Subject: smuggled\r\n\r\nspoofed\r\n.\r\nQUIT\r\n",
        );
        let _ = writer.write_all(&message);
        let _ = writer.shutdown(Shutdown::Write);
        let mut rest = String::new();
        let _ = reader.read_to_string(&mut rest);
        // What came back after the 354: at most one answer to one message, and nothing
        // that answers the smuggled MAIL, RCPT or DATA.
        let answers: Vec<&str> = rest.lines().collect();
        assert!(!rest.contains("smuggled.example"), "{case}: {rest}");
        assert!(!answers.iter().any(|l| l.starts_with("354")), "{case}: {rest}");
        let queued = answers.iter().filter(|l| l.starts_with("250")).count();
        assert!(queued <= 1, "{case}: {rest}");
        let messages = dir.messages();
        assert_eq!(messages.len(), before + queued, "{case}: {rest}");
        before = messages.len();
        // A message taken is the first one, with everything up to the real end of data
        // as its body (a line such as " ." is text): never the spoofed one.
        for m in &messages {
            let text = String::from_utf8_lossy(&std::fs::read(m).unwrap()).into_owned();
            let header = text.split("\n\n").next().unwrap_or("");
            assert!(header.contains("Subject: first"), "{case}: {text}");
            assert!(!header.contains("smuggled"), "{case}: {text}");
        }
    }
    drop(server);
}
