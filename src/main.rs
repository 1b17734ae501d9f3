//! `qpsmtpd-rs`: serves one SMTP connection on stdin/stdout.
//!
//! Exit codes: 0 the session ran (whatever the client did); 1 the config or a plugin is
//! broken (the client got `421`), or serving as root was refused; 2 bad command-line flags.
//! `--check` exits 0 when the config loads, 1 when it does not.
#![deny(unsafe_code)]

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use qpsmtpd_rs::config::DEFAULT_DIR;
use qpsmtpd_rs::io::{self, Stdio, TERMINATE, Transport};
use qpsmtpd_rs::log::{self, stderr_is_safe, write_stderr_line};
use qpsmtpd_rs::peer::{self, Overrides};
use qpsmtpd_rs::server::{self, View};
use qpsmtpd_rs::startup::{self, Options};
use qpsmtpd_rs::{check, privileges};

const USAGE: &str = "usage: qpsmtpd-rs [--config DIR] [--transcript] [--remote-ip IP] [--remote-port N]
                  [--remote-host NAME] [--local-ip IP] [--local-port N] [--allow-root]
       qpsmtpd-rs --check [--config DIR] [--allow-root]
       qpsmtpd-rs --version | --help

Serves one SMTP session on stdin/stdout. Run it from tcpserver, s6-tcpserver, xinetd
or a systemd socket with Accept=yes, or pipe a transcript into it to see what your
config does. See qpsmtpd-rs(8).

  -c, --config DIR     config directory (else $QPSMTPD_CONFIG, else /etc/qpsmtpd-rs)
  -t, --transcript     show client lines as 'C: ...' and replies as 'S: ...'
      --remote-ip IP   client address for a piped session (default 127.0.0.1)
      --remote-port N  client port
      --remote-host H  client host name
      --local-ip IP    local address (default 127.0.0.1 for a piped session)
      --local-port N   local port (default 25 for a piped session)
      --allow-root     serve as root when started as root and no `user` is configured
      --check          check the config directory and plugins, print the chain, exit
  -V, --version        print the version
  -h, --help           print this help";

/// Parsed command line.
#[derive(Debug, Default)]
struct Cli {
    config: Option<PathBuf>,
    allow_root: bool,
    check: bool,
    view: View,
    overrides: Overrides,
}

fn parse_cli() -> Result<Option<Cli>, String> {
    use lexopt::prelude::*;
    let mut cli = Cli::default();
    let mut p = lexopt::Parser::from_env();
    let port = |v: std::ffi::OsString| -> Result<u16, String> {
        v.to_string_lossy()
            .parse()
            .map_err(|_| format!("not a port number: {}", v.to_string_lossy()))
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        macro_rules! value {
            () => {
                p.value().map_err(|e| e.to_string())?
            };
        }
        match arg {
            Short('c') | Long("config") => cli.config = Some(value!().into()),
            Short('t') | Long("transcript") => cli.view.transcript = true,
            Long("allow-root") => cli.allow_root = true,
            Long("check") => cli.check = true,
            Long("remote-ip") => cli.overrides.remote_ip = Some(value!().to_string_lossy().into_owned()),
            Long("remote-port") => cli.overrides.remote_port = Some(port(value!())?),
            Long("remote-host") => cli.overrides.remote_host = Some(value!().to_string_lossy().into_owned()),
            Long("local-ip") => cli.overrides.local_ip = Some(value!().to_string_lossy().into_owned()),
            Long("local-port") => cli.overrides.local_port = Some(port(value!())?),
            Short('V') | Long("version") => {
                println!("qpsmtpd-rs {}", qpsmtpd_rs::VERSION);
                return Ok(None);
            }
            Short('h') | Long("help") => {
                println!("{USAGE}");
                return Ok(None);
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    Ok(Some(cli))
}

fn main() -> ExitCode {
    let stderr_ok = stderr_is_safe();
    quiet_panics(stderr_ok);
    let cli = match parse_cli() {
        Ok(Some(cli)) => cli,
        Ok(None) => return ExitCode::SUCCESS,
        Err(e) => {
            if stderr_ok {
                write_stderr_line(&format!("qpsmtpd-rs: {e}\n{USAGE}"));
            }
            return ExitCode::from(2);
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    if cli.check {
        return check(&cli, &env);
    }
    signals::install();
    let sock = peer::probe_stdin();
    let conn = peer::connection(&peer::connection_id(), &env, &sock, &cli.overrides);
    let network = conn.network;
    let config_dir = config_dir(cli.config.clone(), &env);
    let remote = privileges::serving_remote(sock.is_socket, &env);
    if let Err(e) = privileges::drop_privileges(
        &config_dir,
        startup::qmail_control(env("QMAIL")),
        cli.allow_root,
        remote,
    ) {
        return refuse_start(&e.to_string(), stderr_ok, network);
    }
    let options = Options {
        config_dir,
        qmail_control: startup::qmail_control(env("QMAIL")),
        conn,
        sinks: None,
    };
    let mut transport = Stdio;
    let mut session = match startup::open(options) {
        Ok(session) => session,
        Err(failure) => {
            if stderr_ok && !failure.logged {
                write_stderr_line(&format!("qpsmtpd-rs: {}", failure.error));
            }
            if !failure.logged && network {
                log::syslog_fallback(&format!("qpsmtpd-rs: {}", failure.error));
            }
            let line = startup::refusal(&qpsmtpd_rs::session::hostname());
            let _ = transport.write_all(line.as_bytes(), Duration::from_secs(30));
            return ExitCode::from(1);
        }
    };
    if network {
        session.set_liveness(Box::new(|| io::peer_alive(std::io::stdin().as_fd())));
    }
    server::serve(&mut session, &mut transport, cli.view);
    if TERMINATE.load(Ordering::SeqCst) {
        return ExitCode::from(0);
    }
    ExitCode::SUCCESS
}

/// `--config DIR`, else `$QPSMTPD_CONFIG`, else the default.
fn config_dir(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    flag.or_else(|| env("QPSMTPD_CONFIG").filter(|d| !d.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// `--check`: report on stdout, problems on stderr, exit 1 on any problem.
fn check(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> ExitCode {
    let opts = check::CheckOptions {
        config_dir: config_dir(cli.config.clone(), env),
        qmail_control: startup::qmail_control(env("QMAIL")),
        allow_root: cli.allow_root,
    };
    let ok = check::run(
        &opts,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    if ok { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// A start-up failure before logging exists: the reason to stderr (unless that is the
/// client's socket) and to syslog under a super-server, `421` to the client, status 1.
fn refuse_start(reason: &str, stderr_ok: bool, network: bool) -> ExitCode {
    let line = format!("qpsmtpd-rs: {reason}");
    if stderr_ok {
        write_stderr_line(&line);
    }
    if network {
        log::syslog_fallback(&line);
    }
    let reply = startup::refusal(&qpsmtpd_rs::session::hostname());
    let _ = Stdio.write_all(reply.as_bytes(), Duration::from_secs(30));
    ExitCode::from(1)
}

/// A panic message must not go to stderr when stderr is the client's socket.
fn quiet_panics(stderr_ok: bool) {
    std::panic::set_hook(Box::new(move |info| {
        if stderr_ok {
            write_stderr_line(&format!("qpsmtpd-rs: internal error: {info}"));
        }
    }));
}

mod signals {
    use std::sync::atomic::Ordering;

    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use qpsmtpd_rs::io::TERMINATE;

    extern "C" fn on_terminate(_: nix::libc::c_int) {
        TERMINATE.store(true, Ordering::SeqCst);
    }

    /// SIGTERM, SIGINT and SIGHUP only set a flag; the blocked `poll` returns EINTR (no
    /// SA_RESTART) and the session ends with `421`, removing any spool file.
    #[allow(unsafe_code)]
    pub fn install() {
        let action = SigAction::new(
            SigHandler::Handler(on_terminate),
            SaFlags::empty(),
            SigSet::empty(),
        );
        for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
            // SAFETY: the handler only stores to an AtomicBool, which is async-signal-safe,
            // and it replaces the default action for a signal no other code handles.
            let _ = unsafe { sigaction(sig, &action) };
        }
        // With `fsize` in the config file rlimits, a write past the limit fails with EFBIG
        // (the queue plugin answers 4xx and removes its file) instead of killing us.
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        // SAFETY: SIG_IGN installs no handler code at all.
        let _ = unsafe { sigaction(Signal::SIGXFSZ, &ignore) };
    }
}
