use super::*;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;

#[test]
fn reply_lines_parse() {
    assert_eq!(parse_line("250-PIPELINING"), Some((250, '-', "PIPELINING")));
    assert_eq!(parse_line("550 5.1.1 no"), Some((550, ' ', "5.1.1 no")));
    assert_eq!(parse_line("250"), Some((250, ' ', "")));
    assert_eq!(parse_line("hello"), None);
    assert_eq!(parse_line("650 x"), None);
    assert_eq!(xtext("a b+c=d"), "a+20b+2Bc+3Dd");
}

/// A scripted server on loopback: sends each reply after reading one line.
fn server(script: &'static [&'static str]) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut w = s;
        let mut seen = Vec::new();
        w.write_all(b"220 hi\r\n").unwrap();
        for reply in script {
            let mut line = String::new();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            seen.push(line.trim_end().to_string());
            w.write_all(reply.as_bytes()).unwrap();
        }
        seen
    });
    (port, h)
}

fn opts() -> Options {
    Options {
        timeout: Duration::from_secs(5),
        lmtp: false,
        helo: "me.example".into(),
        tls: Tls::Off,
    }
}

fn tcp(port: u16) -> Target {
    Target::Tcp("127.0.0.1".into(), port)
}

#[test]
fn multi_line_ehlo_and_a_refusal() {
    let (port, h) = server(&[
        "250-x.example\r\n250-SIZE 100\r\n250 XCLIENT NAME ADDR\r\n",
        "550 5.1.1 no such user\r\n",
    ]);
    let mut c = Client::connect(&tcp(port), &opts()).unwrap();
    assert_eq!(c.keyword("XCLIENT"), Some("NAME ADDR"));
    assert_eq!(c.keyword("SIZE"), Some("100"));
    let r = c.command("RCPT TO:<x@y>", &[250, 251]);
    assert!(matches!(&r, Err(Error::Refused(r)) if r.code == 550 && r.text() == "5.1.1 no such user"));
    assert!(c.usable());
    drop(c);
    assert_eq!(h.join().unwrap(), vec!["EHLO me.example", "RCPT TO:<x@y>"]);
}

fn trouble(r: Result<Reply, Error>) -> Trouble {
    match r {
        Err(Error::Broken(b)) => b.trouble,
        other => panic!("not broken: {other:?}"),
    }
}

#[test]
fn silence_is_a_timeout_and_garbage_is_broken() {
    let (port, _h) = server(&["250 ok\r\n", "garbage\r\n"]);
    let mut o = opts();
    o.timeout = Duration::from_millis(300);
    let mut c = Client::connect(&tcp(port), &o).unwrap();
    assert_eq!(trouble(c.command("NOOP", &[250])), Trouble::Protocol);
    assert!(!c.usable());
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let started = std::time::Instant::now();
    let r = Client::connect(&tcp(port), &o);
    assert!(matches!(r, Err(Error::Broken(b)) if b.trouble == Trouble::Timeout));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn codes_the_command_cannot_have_break_the_connection() {
    let (port, _h) = server(&["250 x\r\n", "354 go on\r\n", "250 ok\r\n"]);
    let mut c = Client::connect(&tcp(port), &opts()).unwrap();
    assert_eq!(trouble(c.command("MAIL FROM:<a@b>", &[250])), Trouble::Protocol);
    assert!(!c.usable());
    assert_eq!(trouble(c.command("RCPT TO:<c@d>", &[250, 251])), Trouble::Closed);
    let (port, _h) = server(&["250 x\r\n", "421 4.3.2 bye\r\n"]);
    let mut c = Client::connect(&tcp(port), &opts()).unwrap();
    assert!(matches!(c.command("MAIL FROM:<a@b>", &[250]), Err(Error::Refused(r)) if r.code == 421));
    assert!(!c.usable());
}

#[test]
fn a_reply_nobody_asked_for_is_found_before_the_next_command() {
    let (port, h) = server(&["250 x\r\n", "250 ok\r\n550 stale\r\n", "250 ok\r\n"]);
    let mut c = Client::connect(&tcp(port), &opts()).unwrap();
    assert_eq!(c.command("MAIL FROM:<a@b>", &[250]).unwrap().code, 250);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        trouble(c.command("RCPT TO:<c@d>", &[250, 251])),
        Trouble::Protocol
    );
    drop(c);
    // The RCPT was never sent.
    assert_eq!(h.join().unwrap(), vec!["EHLO me.example", "MAIL FROM:<a@b>"]);
}

#[test]
fn one_deadline_bounds_a_dripping_reply() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        for b in b"220 a greeting that takes far too long to arrive\r\n" {
            if s.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut o = opts();
    o.timeout = Duration::from_millis(800);
    let started = Instant::now();
    let r = Client::connect(&tcp(port), &o);
    assert!(matches!(r, Err(Error::Broken(b)) if b.trouble == Trouble::Timeout));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
