//! The Dovecot auth-protocol reader of auth/auth_dovecot: the real plugin, through the
//! chain, asks a Unix-socket server that sends the fuzz input as its whole side of the
//! conversation (handshake and answer) and then closes. Whatever it sends: no panic, the
//! call ends, the verdict is `OK`, `DENYSOFT` or `DECLINED` with our own text, and a user
//! name Dovecot gives back is kept only if it is a valid name (no control character).

#![no_main]

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use qpsmtpd_rs::auth::valid_name;
use qpsmtpd_rs::config::Config;
use qpsmtpd_rs::connection::Connection;
use qpsmtpd_rs::log::Logger;
use qpsmtpd_rs::plugin::{Args, Chain, Env, Hook, PluginSpec, Verdict, registry};
use qpsmtpd_rs::transaction::Transaction;

struct Server {
    path: PathBuf,
    work: Mutex<SyncSender<Vec<u8>>>,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("qpsmtpd-rs-fuzz-dovecot.{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("auth-client");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).expect("bind");
        let (tx, rx) = sync_channel::<Vec<u8>>(1);
        std::thread::spawn(move || {
            for data in rx {
                let Ok((mut stream, _)) = listener.accept() else {
                    return;
                };
                let _ = stream.write_all(&data);
                let _ = stream.shutdown(Shutdown::Write);
                let _ = stream.read_to_end(&mut Vec::new());
            }
        });
        Server {
            path,
            work: Mutex::new(tx),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    let spec = PluginSpec {
        name: "auth/auth_dovecot".into(),
        args: vec![
            "socket".into(),
            server.path.to_string_lossy().into_owned(),
            "timeout".into(),
            "5".into(),
        ],
        file: std::rc::Rc::from(std::path::Path::new("plugins")),
        line: 1,
        log_adjust: None,
    };
    let config = Config::empty();
    let plugin = registry::build(&spec, &config).expect("plugin");
    let mut chain = Chain::new();
    chain.push(spec, plugin);
    server
        .work
        .lock()
        .expect("lock")
        .send(data.to_vec())
        .expect("server");
    let log = Logger::silent("fuzz");
    let env = Env {
        config: &config,
        log: &log,
        me: "mx.example.com",
    };
    let mut conn = Connection::new("fuzz", "192.0.2.1");
    let mut txn = Transaction::new("fuzz.0".into());
    let mut replies = Vec::new();
    let args = Args::Auth {
        mechanism: "plain",
        user: "good@example.com",
        password: Some("good_pass"),
        digest: None,
        ticket: None,
    };
    let out = chain.run(Hook::AuthPlain, &mut conn, &mut txn, env, &mut replies, args);
    assert!(
        matches!(out.verdict, Verdict::Ok | Verdict::DenySoft | Verdict::Declined),
        "{out:?}"
    );
    assert!(out.msg.iter().all(|m| m.starts_with("auth_dovecot")), "{out:?}");
    if let Some(name) = conn.notes.get("authuser") {
        assert!(valid_name(name), "{name:?}");
    }
    assert!(replies.is_empty());
});
