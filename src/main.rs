//! `qpsmtpd-rs`: serves one SMTP connection on stdin/stdout.
//!
//! Exit codes: 0 the session ran (whatever the client did); 1 the config or a plugin is
//! broken (the client got `421`), or serving as root was refused; 2 bad command-line flags.
//! `--check` exits 0 when the config loads, 1 when it does not.
#![deny(unsafe_code)]
// The entry point is ours, not std's: see `main` below.
#![cfg_attr(not(test), no_main)]

use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::Duration;

use qpsmtpd_rs::config::DEFAULT_DIR;
use qpsmtpd_rs::io::{Stdio, Transport};
use qpsmtpd_rs::log::{self, stderr_is_safe, write_stderr_line};
use qpsmtpd_rs::peer::{self, Overrides};
use qpsmtpd_rs::server::{self, View};
use qpsmtpd_rs::startup::{self, Options};
use qpsmtpd_rs::{check, privileges};

#[path = "main/signals.rs"]
mod signals;
#[path = "main/ucspi_tls.rs"]
mod ucspi_tls;

const USAGE: &str = "usage: qpsmtpd-rs [--config DIR] [--transcript] [--remote-ip IP] [--remote-port N]
                  [--remote-host NAME] [--local-ip IP] [--local-port N] [--allow-root]
                  [--implicit-tls]
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
      --implicit-tls   start TLS before the greeting (port 465; automatic when the
                       local port is 465); needs the tls plugin
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
    implicit_tls: bool,
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
            Long("implicit-tls") => cli.implicit_tls = true,
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

/// The process entry point, in place of std's `lang_start`.
///
/// Why: before `main`, std asks glibc for the main thread's stack bounds to place a guard
/// page, and glibc finds them by reading and sscanf-parsing /proc/self/maps: about 95,000
/// instructions (a tenth of a whole session under callgrind) plus a kernel walk of the
/// address space, on every connection. The rest of what std did there is done here: fds
/// 0-2 are kept open, SIGPIPE is caught by a handler that does nothing (writes to a gone
/// client return EPIPE; children start with the default action, as exec resets a caught
/// signal), stdout is flushed and a panic ends the process with status 101. A stack overflow now ends in a plain
/// SIGSEGV instead of std's message.
// `no_mangle` is unsafe only because two items could export the same symbol; this is the
// program's one `main` and std's own is not built with `no_main`.
#[cfg(not(test))]
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: std::ffi::c_int, _argv: *const *const std::ffi::c_char) -> std::ffi::c_int {
    // std::env::args() still works: on glibc std records argv from .init_array.
    standard_fds_open();
    signals::catch_sigpipe();
    let status = std::panic::catch_unwind(run).unwrap_or(101);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    std::ffi::c_int::from(status)
}

/// A super-server may start us with fd 0, 1 or 2 closed; a file opened later would take
/// that number and receive protocol or log output. Each closed one gets /dev/null, as std
/// does at start-up.
#[cfg_attr(test, allow(dead_code))]
fn standard_fds_open() {
    use std::os::fd::IntoRawFd;
    fn closed(fd: impl AsFd) -> bool {
        nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD) == Err(nix::errno::Errno::EBADF)
    }
    let closed = [
        closed(std::io::stdin()),
        closed(std::io::stdout()),
        closed(std::io::stderr()),
    ];
    for _ in closed.iter().filter(|c| **c) {
        // Each open takes the lowest free number: the closed ones, in order.
        if let Ok(null) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
        {
            let _ = null.into_raw_fd();
        }
    }
}

#[cfg_attr(test, allow(dead_code))]
fn run() -> u8 {
    let stderr_ok = stderr_is_safe();
    quiet_panics(stderr_ok);
    let cli = match cli_or_status(stderr_ok) {
        Ok(cli) => cli,
        Err(status) => return status,
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
    // Started as root: the TLS files are opened before the switch (a key only root may
    // read), and read only if the client asks for TLS.
    let mut tls_files = None;
    let qmail_control = startup::qmail_control(env("QMAIL"));
    let opened = match privileges::drop_privileges(
        &config_dir,
        qmail_control.clone(),
        cli.allow_root,
        remote,
        &mut |config| tls_files = qpsmtpd_rs::tls::preopen::preopen(config),
    ) {
        Ok((_, opened)) => opened,
        Err(e) => return refuse_start(&e.to_string(), false, stderr_ok, network),
    };
    let options = Options {
        config_dir,
        qmail_control,
        conn,
        sinks: None,
    };
    let mut session = match startup::open_with(options, opened) {
        Ok(session) => session,
        Err(failure) => return refuse_start(&failure.error.to_string(), failure.logged, stderr_ok, network),
    };
    session.set_tls_preopened(tls_files);
    // After the switch from root and the plugins' loading: nothing started from now on
    // gains privileges, unless a plugin may need a set-id program (README Differences 35).
    startup::forbid_new_privileges(session.chain());
    let tls = server::TlsOptions {
        implicit: cli.implicit_tls,
        ucspi: ucspi_tls::take_fds(&env),
        already: ucspi_tls::done_by_super_server(&env),
    };
    let mut transport = Stdio {
        socket: sock.is_socket,
    };
    // A session ended by SIGTERM has already answered 421; it still exits 0.
    server::serve_tls(&mut session, &mut transport, cli.view, tls);
    session.end_for_exit();
    0
}

/// The command line, or the exit status: 0 after `--help` or `--version`, 2 for bad flags
/// (with the usage on stderr, unless that is the client's socket).
fn cli_or_status(stderr_ok: bool) -> Result<Cli, u8> {
    match parse_cli() {
        Ok(Some(cli)) => Ok(cli),
        Ok(None) => Err(0),
        Err(e) => {
            if stderr_ok {
                write_stderr_line(&format!("qpsmtpd-rs: {e}\n{USAGE}"));
            }
            Err(2)
        }
    }
}

/// `--config DIR`, else `$QPSMTPD_CONFIG`, else the default.
fn config_dir(flag: Option<PathBuf>, env: &dyn Fn(&str) -> Option<String>) -> PathBuf {
    flag.or_else(|| env("QPSMTPD_CONFIG").filter(|d| !d.is_empty()).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR))
}

/// `--check`: report on stdout, problems on stderr, exit 1 on any problem.
fn check(cli: &Cli, env: &dyn Fn(&str) -> Option<String>) -> u8 {
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
    if ok { 0 } else { 1 }
}

/// A session that cannot start: the reason to stderr (unless that is the client's socket)
/// and to syslog under a super-server, unless the configured logging has it already;
/// `421` to the client; status 1.
fn refuse_start(reason: &str, logged: bool, stderr_ok: bool, network: bool) -> u8 {
    let line = format!("qpsmtpd-rs: {reason}");
    if stderr_ok && !logged {
        write_stderr_line(&line);
    }
    if network && !logged {
        log::syslog_fallback(&line);
    }
    let reply = startup::refusal(&qpsmtpd_rs::host::hostname());
    let mut stdio = Stdio::default();
    let _ = stdio.write_all(reply.as_bytes(), Duration::from_secs(30));
    stdio.hang_up();
    1
}

/// A panic message must not go to stderr when stderr is the client's socket.
fn quiet_panics(stderr_ok: bool) {
    std::panic::set_hook(Box::new(move |info| {
        if stderr_ok {
            write_stderr_line(&format!("qpsmtpd-rs: internal error: {info}"));
        }
    }));
}
