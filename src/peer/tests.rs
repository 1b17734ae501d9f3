//! Unit tests of peer.rs.

use super::*;
use std::collections::HashMap;

#[test]
fn ip_text_is_display() {
    for text in [
        "0.0.0.0",
        "1.2.3.4",
        "9.10.99.100",
        "192.168.0.255",
        "255.255.255.255",
        "::1",
        "2001:db8::5",
    ] {
        let ip: IpAddr = text.parse().unwrap();
        assert_eq!(ip_text(ip), ip.to_string());
    }
    for n in 0..=255u8 {
        let v4 = std::net::Ipv4Addr::new(n, n, 0, n);
        assert_eq!(ipv4_text(v4), v4.to_string());
    }
}

fn build(vars: &[(&str, &str)], sock: SocketFacts, flags: Overrides) -> Connection {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    connection("t", &|k| map.get(k).cloned(), &sock, &flags)
}

#[test]
fn tcpserver_variables() {
    let c = build(
        &[
            ("TCPREMOTEIP", "192.0.2.10"),
            ("TCPREMOTEPORT", "4321"),
            ("TCPLOCALIP", "192.0.2.1"),
            ("TCPLOCALPORT", "25"),
            ("TCPREMOTEHOST", "client.example\r\nX-Evil: 1"),
            ("TCPREMOTEINFO", "joe"),
        ],
        SocketFacts::default(),
        Overrides::default(),
    );
    assert_eq!(c.remote_ip, "192.0.2.10");
    assert_eq!(c.remote_port, Some(4321));
    assert_eq!(c.remote_host, "client.exampleX-Evil:1");
    assert_eq!(c.remote_info, "joe@client.exampleX-Evil:1");
    assert_eq!((c.local_ip.as_str(), c.local_port), ("192.0.2.1", Some(25)));
    assert!(!c.relay_client);
}

#[test]
fn systemd_xinetd_and_socket() {
    let c = build(
        &[("REMOTE_ADDR", "::ffff:198.51.100.7"), ("REMOTE_PORT", "999")],
        SocketFacts::default(),
        Overrides::default(),
    );
    assert_eq!((c.remote_ip.as_str(), c.remote_port), ("198.51.100.7", Some(999)));
    assert_eq!(c.remote_host, "[198.51.100.7]");
    let sock = SocketFacts {
        is_socket: true,
        peer: Some("[2001:db8::5]:1234".parse().unwrap()),
        local: Some("[2001:db8::1]:25".parse().unwrap()),
    };
    let c = build(&[("REMOTE_HOST", "203.0.113.9")], sock, Overrides::default());
    assert_eq!((c.remote_ip.as_str(), c.remote_port), ("2001:db8::5", Some(1234)));
    assert_eq!(c.local_ip, "2001:db8::1");
    assert!(c.network);
    let c = build(
        &[("REMOTE_HOST", "203.0.113.9")],
        SocketFacts::default(),
        Overrides::default(),
    );
    assert_eq!(c.remote_ip, "203.0.113.9");
}

#[test]
fn piped_defaults_flags_and_garbage() {
    let c = build(&[], SocketFacts::default(), Overrides::default());
    assert_eq!(c.remote_ip, DEFAULT_REMOTE_IP);
    assert_eq!((c.local_ip.as_str(), c.local_port), ("127.0.0.1", Some(25)));
    assert!(!c.network);
    // A super-server's variable that does not parse: a remote client of unknown
    // address, never the relaying 127.0.0.1.
    let c = build(
        &[("TCPREMOTEIP", "not an ip")],
        SocketFacts::default(),
        Overrides::default(),
    );
    assert_eq!(c.remote_ip, UNKNOWN_REMOTE_IP);
    assert_eq!((c.local_ip.as_str(), c.local_port), ("", None));
    assert!(c.network);
    let flags = Overrides {
        remote_ip: Some("203.0.113.5".into()),
        remote_host: Some("mx.example".into()),
        ..Overrides::default()
    };
    let c = build(
        &[("TCPREMOTEIP", "192.0.2.1"), ("RELAYCLIENT", "")],
        SocketFacts::default(),
        flags,
    );
    assert_eq!(
        (c.remote_ip.as_str(), c.remote_host.as_str()),
        ("203.0.113.5", "mx.example")
    );
    assert!(c.relay_client);
}

/// sslserver without `-e` sets only its own variables and hands us pipes.
#[test]
fn ucspi_ssl_variables() {
    let c = build(
        &[
            ("PROTO", "SSL"),
            ("SSLREMOTEIP", "198.51.100.20"),
            ("SSLREMOTEPORT", "40000"),
            ("SSLREMOTEHOST", "client.example"),
            ("SSLREMOTEINFO", "joe"),
            ("SSLLOCALIP", "192.0.2.1"),
            ("SSLLOCALPORT", "465"),
            ("SSLLOCALHOST", "mx.example"),
        ],
        SocketFacts::default(),
        Overrides::default(),
    );
    assert_eq!(
        (c.remote_ip.as_str(), c.remote_port),
        ("198.51.100.20", Some(40000))
    );
    assert_eq!((c.local_ip.as_str(), c.local_port), ("192.0.2.1", Some(465)));
    assert_eq!(c.remote_info, "joe@client.example");
    assert_eq!(c.local_host, "mx.example");
    assert!(c.network, "a TLS wrapper's pipes still serve a remote client");
    let c = build(&[("PROTO", "SSL")], SocketFacts::default(), Overrides::default());
    assert_eq!(c.remote_ip, UNKNOWN_REMOTE_IP);
    assert!(c.network);
    // A socket without an IP peer (a Unix socket) is no more 127.0.0.1.
    let sock = SocketFacts {
        is_socket: true,
        ..SocketFacts::default()
    };
    assert_eq!(
        build(&[], sock, Overrides::default()).remote_ip,
        UNKNOWN_REMOTE_IP
    );
}
