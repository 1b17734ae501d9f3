//! What STARTTLS adds to a session (`bench/run`, after the rest; `--tls-only` alone): a
//! plain EHLO+QUIT session against the same session with STARTTLS and a full handshake,
//! and with a handshake resumed from a ticket another process issued. Each session is a
//! new process on a socket as fd 0/1, so process start is included, as in production.
//! ECDSA P-256 and RSA 2048 certificates. Figures only; nothing is asserted.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use super::{Opts, spawn_inetd, which, write_config};

/// Sessions of each kind per certificate.
const SESSIONS: u32 = 30;

pub fn run(o: &Opts, ours: &Path) {
    let Some(openssl) = which("openssl") else {
        println!("\nTLS cost: openssl is not installed (apt-get install openssl)");
        return;
    };
    println!("\nTLS cost ({SESSIONS} sessions each, wall time per session including process start):");
    let keys: [(&str, &[&str]); 2] = [
        (
            "ECDSA P-256",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"],
        ),
        ("RSA 2048", &["-newkey", "rsa:2048", "-nodes"]),
    ];
    for (name, key) in keys {
        let dir = o.work.join(format!("tls-{}", name.replace(' ', "-")));
        let cfg = write_config(
            &dir,
            &[
                ("me", "bench.example.org\n".into()),
                ("plugins", "tls\nrcpt_ok\n".into()),
                ("rcpthosts", "example.org\n".into()),
                ("spool_dir", format!("{}\n", dir.join("spool").display())),
                ("logging", "logging/devnull\n".into()),
                (
                    "tls_ticket_keys",
                    format!("{}\n", dir.join("ticket.keys").display()),
                ),
                ("user", "root\n".into()),
            ],
        );
        make_cert(&openssl, &cfg.join("ssl"), key);
        let server = Server {
            bin: ours.to_path_buf(),
            cfg: cfg.clone(),
            cwd: dir,
        };
        let shared = client_config(&cfg);
        server.session(Some(&shared));
        // Interleaved, so that load from elsewhere on the machine hits all three alike.
        let mut totals = [(0.0, 0.0); 3];
        let mut resumed = 0;
        for _ in 0..SESSIONS {
            for (kind, total) in totals.iter_mut().enumerate() {
                let (wall, cpu) = measure(|| match kind {
                    0 => {
                        server.session(None);
                    }
                    // A new client config: no ticket to offer, a full handshake.
                    1 => {
                        server.session(Some(&client_config(&cfg)));
                    }
                    _ => resumed += u32::from(server.session(Some(&shared))),
                });
                total.0 += wall / f64::from(SESSIONS);
                total.1 += cpu / f64::from(SESSIONS);
            }
        }
        let [plain, fresh, again] = totals;
        println!(
            "  {name} certificate:            wall ms (+ over plain)   server CPU ms (+ over plain)\n    \
             plain EHLO+QUIT:               {:6.2}                   {:6.2}\n    \
             STARTTLS, full handshake:      {:6.2} (+{:.2})           {:6.2} (+{:.2})\n    \
             STARTTLS, resumed from ticket: {:6.2} (+{:.2})           {:6.2} (+{:.2})   ({resumed} of {SESSIONS} resumed)",
            plain.0,
            plain.1,
            fresh.0,
            fresh.0 - plain.0,
            fresh.1,
            fresh.1 - plain.1,
            again.0,
            again.0 - plain.0,
            again.1,
            again.1 - plain.1,
        );
    }
}

/// A test CA and a certificate for `mx.test` where the tls plugin looks by default.
fn make_cert(openssl: &Path, ssl: &Path, server_key: &[&str]) {
    std::fs::create_dir_all(ssl).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(openssl)
            .args(args)
            .current_dir(ssl)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    let ca = [
        "-keyout",
        "ca.key",
        "-out",
        "qpsmtpd-ca.crt",
        "-days",
        "2",
        "-subj",
        "/CN=Bench CA",
    ];
    run(&[&["req", "-x509"][..], &ec, &ca].concat());
    let csr = [
        "-keyout",
        "qpsmtpd-server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=mx.test",
    ];
    run(&[&["req"][..], server_key, &csr].concat());
    std::fs::write(
        ssl.join("ext"),
        "subjectAltName=DNS:mx.test\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "qpsmtpd-ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "qpsmtpd-server.crt",
    ]);
}

/// A rustls client trusting the bench CA.
fn client_config(cfg: &Path) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(cfg.join("ssl/qpsmtpd-ca.crt")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

struct Server {
    bin: PathBuf,
    cfg: PathBuf,
    cwd: PathBuf,
}

impl Server {
    /// Greeting, EHLO, optionally STARTTLS and EHLO again, QUIT. Whether TLS resumed.
    fn session(&self, tls: Option<&Arc<rustls::ClientConfig>>) -> bool {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--config").arg(&self.cfg).current_dir(&self.cwd);
        let (mut child, tcp) = spawn_inetd(&mut cmd);
        // The client's small writes (Finished, then EHLO) must not wait for delayed ACKs.
        tcp.set_nodelay(true).unwrap();
        let mut plain = BufReader::new(tcp.try_clone().unwrap());
        let mut w = tcp.try_clone().unwrap();
        reply(&mut plain);
        w.write_all(b"EHLO bench.example\r\n").unwrap();
        reply(&mut plain);
        let mut resumed = false;
        match tls {
            None => {
                w.write_all(b"QUIT\r\n").unwrap();
                reply(&mut plain);
            }
            Some(config) => {
                w.write_all(b"STARTTLS\r\n").unwrap();
                reply(&mut plain);
                let name = ServerName::try_from("mx.test").unwrap();
                let conn = rustls::ClientConnection::new(config.clone(), name).unwrap();
                let mut s = BufReader::new(rustls::StreamOwned::new(conn, tcp));
                s.get_mut().write_all(b"EHLO bench.example\r\n").unwrap();
                reply(&mut s);
                resumed = s.get_ref().conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
                s.get_mut().write_all(b"QUIT\r\n").unwrap();
                reply(&mut s);
            }
        }
        let _ = child.wait();
        resumed
    }
}

/// Reads one whole reply (up to the line with a space after the code).
fn reply<R: BufRead>(r: &mut R) -> String {
    let mut all = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            return all;
        }
    }
}

/// Wall time of `f` and the CPU time of the child processes it waited for, in ms.
fn measure(f: impl FnOnce()) -> (f64, f64) {
    use nix::sys::resource::{UsageWho, getrusage};
    let cpu = || {
        getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 * 1000.0 + tv.tv_usec() as f64 / 1000.0;
            t(u.user_time()) + t(u.system_time())
        })
    };
    let (c0, t0) = (cpu(), Instant::now());
    f();
    (t0.elapsed().as_secs_f64() * 1000.0, cpu() - c0)
}
