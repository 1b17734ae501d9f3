//! The other servers a user could pick, brought up privately on loopback for one run:
//! Postfix (smtpd → cleanup → queue with its fsync, then the discard transport) and Haraka
//! (two cluster workers, rcpt_to.in_host_list, queue/discard, nothing on disk). Each one
//! that cannot be brought up here is skipped with the reason; the benchmark goes on.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Haraka release the figures are taken with; installed by npm into target/.
pub const HARAKA: &str = "3.3.4";

/// A free loopback port (free when asked; the servers bind it a moment later).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Waits until something on `port` answers a connection with a 220 greeting.
fn wait_greeting(port: u16, secs: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut r = BufReader::new(&s);
            let mut line = String::new();
            if r.read_line(&mut line).is_ok() && line.starts_with("220") {
                let _ = (&s).write_all(b"QUIT\r\n");
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// A private Postfix instance: its own config directory, queue and data directory under
/// `dir`, smtpd on 127.0.0.1:`port`; stopped when dropped.
pub struct Postfix {
    etc: PathBuf,
    queue: PathBuf,
    pub port: u16,
}

impl Postfix {
    /// A Postfix instance in `dir` as a row of the comparison, or why there is none.
    pub fn server(dir: &Path, sessions: usize) -> Result<super::compare::Server, String> {
        let p = Postfix::start(dir)?;
        Ok(super::compare::Server {
            name: format!("Postfix {}", p.version()),
            port: p.port,
            sessions,
            // Its smtpd and cleanup processes are reused: start a few of each.
            warm: 100,
            keep: Box::new(p),
        })
    }

    pub fn start(dir: &Path) -> Result<Postfix, String> {
        let postfix = Path::new("/usr/sbin/postfix");
        if !postfix.exists() {
            return Err("not installed (apt-get install postfix)".into());
        }
        if !nix::unistd::geteuid().is_root() {
            return Err("a private instance needs root to start".into());
        }
        let owner = nix::unistd::User::from_name("postfix")
            .ok()
            .flatten()
            .ok_or("no postfix account")?;
        let (etc, queue, data) = (dir.join("etc"), dir.join("queue"), dir.join("data"));
        for d in [&etc, &queue, &data] {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        // The master's lock and the TLS caches live here, written as the mail owner.
        nix::unistd::chown(&data, Some(owner.uid), None).map_err(|e| e.to_string())?;
        let port = free_port();
        let log = dir.join("maillog");
        let main_cf = format!(
            "compatibility_level = 3.6\n\
             queue_directory = {queue}\n\
             data_directory = {data}\n\
             myhostname = bench.example.org\n\
             # The test recipient's domain is relayed (not local: no mailbox lookup), like\n\
             # qpsmtpd's rcpthosts; loopback is not a relay client.\n\
             mydestination =\n\
             relay_domains = example.org\n\
             mynetworks = 10.1.2.0/24\n\
             inet_interfaces = 127.0.0.1\n\
             inet_protocols = ipv4\n\
             default_transport = discard\n\
             relay_transport = discard\n\
             # tcpserver -H: no name lookups for the others either.\n\
             smtpd_peername_lookup = no\n\
             maillog_file = {log}\n\
             maillog_file_prefixes = {dir}\n\
             biff = no\n",
            queue = queue.display(),
            data = data.display(),
            log = log.display(),
            dir = dir.display(),
        );
        // Only the services an accepted, discarded message passes through; no chroot.
        let master_cf = format!(
            "127.0.0.1:{port} inet n - n - - smtpd\n\
             cleanup unix n - n - 0 cleanup\n\
             qmgr unix n - n 300 1 qmgr\n\
             rewrite unix - - n - - trivial-rewrite\n\
             bounce unix - - n - 0 bounce\n\
             defer unix - - n - 0 bounce\n\
             trace unix - - n - 0 bounce\n\
             verify unix - - n - 1 verify\n\
             proxymap unix - - n - - proxymap\n\
             error unix - - n - - error\n\
             retry unix - - n - - error\n\
             discard unix - - n - - discard\n\
             anvil unix - - n - 1 anvil\n\
             scache unix - - n - 1 scache\n\
             postlog unix-dgram n - n - 1 postlogd\n"
        );
        std::fs::write(etc.join("main.cf"), main_cf).map_err(|e| e.to_string())?;
        std::fs::write(etc.join("master.cf"), master_cf).map_err(|e| e.to_string())?;
        let pf = Postfix { etc, queue, port };
        // Postfix reports its errors to the log file, not to a non-terminal stderr.
        let started = Command::new(postfix)
            .arg("-c")
            .arg(&pf.etc)
            .arg("start")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if !started.success() || !wait_greeting(port, 20) {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            let last: Vec<&str> = tail.lines().rev().take(3).collect();
            return Err(format!("did not start: {}", last.join(" / ")));
        }
        Ok(pf)
    }

    /// `mail_version`, as postconf tells it.
    pub fn version(&self) -> String {
        Command::new("/usr/sbin/postconf")
            .arg("-c")
            .arg(&self.etc)
            .args(["-h", "mail_version"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.queue.join("pid/master.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        let master = self.master_pid();
        let _ = Command::new("/usr/sbin/postfix")
            .arg("-c")
            .arg(&self.etc)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        // `postfix stop` signals the master; its children end with it.
        if let Some(pid) = master {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Haraka in cluster mode with two workers, installed by npm into `cache` when missing.
pub struct Haraka {
    child: Child,
    pub port: u16,
}

impl Haraka {
    pub fn start(cache: &Path, dir: &Path) -> Result<Haraka, String> {
        let node = super::which("node").ok_or("node is not installed (apt-get install nodejs npm)")?;
        let bin = install(cache)?;
        let cfg = dir.join("config");
        let core_cfg = cache.join("node_modules/Haraka/config");
        std::fs::create_dir_all(&cfg).map_err(|e| e.to_string())?;
        std::fs::create_dir_all(dir.join("plugins")).map_err(|e| e.to_string())?;
        // Haraka reads some settings only from its own files: start from its defaults.
        for entry in std::fs::read_dir(&core_cfg).map_err(|e| e.to_string())? {
            let entry = entry.map_err(|e| e.to_string())?;
            if entry.path().is_file() {
                let _ = std::fs::copy(entry.path(), cfg.join(entry.file_name()));
            }
        }
        let port = free_port();
        let files = [
            ("smtp.ini", format!("listen=127.0.0.1:{port}\nnodes=2\n")),
            // The rDNS answer is given (tcpserver -H and Postfix look nothing up either):
            // no query leaves the machine and none is timed.
            (
                "plugins",
                "bench_rdns\nrcpt_to.in_host_list\nqueue/discard\n".into(),
            ),
            ("host_list", "example.org\n".into()),
            ("me", "bench.example.org\n".into()),
            ("log.ini", "[main]\nlevel=warn\n".into()),
        ];
        for (name, text) in files {
            std::fs::write(cfg.join(name), text).map_err(|e| e.to_string())?;
        }
        std::fs::write(
            dir.join("plugins/bench_rdns.js"),
            "exports.hook_lookup_rdns = (next) => next(OK, 'localhost')\n",
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("haraka.log")).map_err(|e| e.to_string())?;
        let child = Command::new(node)
            .arg(bin)
            .arg("-c")
            .arg(dir)
            // queue/discard accepts every message only when told to.
            .env("YES_REALLY_DO_DISCARD", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| e.to_string())?;
        let h = Haraka { child, port };
        if !wait_greeting(port, 30) {
            return Err(format!("did not start; see {}", dir.join("haraka.log").display()));
        }
        Ok(h)
    }
}

use std::os::unix::process::CommandExt;

impl Drop for Haraka {
    fn drop(&mut self) {
        // The cluster master and its workers are one process group, ours.
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Haraka's launcher in `cache`, installing it there first (npm, pinned release).
fn install(cache: &Path) -> Result<PathBuf, String> {
    let bin = cache.join("node_modules/Haraka/bin/haraka");
    if bin.exists() {
        return Ok(bin);
    }
    let npm = super::which("npm").ok_or("npm is not installed (apt-get install npm)")?;
    std::fs::create_dir_all(cache).map_err(|e| e.to_string())?;
    println!("(installing Haraka {HARAKA} with npm into {})", cache.display());
    let out = Command::new(npm)
        .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
        .arg(cache)
        .arg(format!("Haraka@{HARAKA}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() || !bin.exists() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(format!("npm install Haraka@{HARAKA} failed: {last}"));
    }
    Ok(bin)
}
