//! The durability promise read from the system calls: the `250` to the final dot is
//! written to the client only after the message is safe. For queue/maildir, either the
//! message file is fsync'd, linked into `new/`, and `new/` is fsync'd (two syncs), or,
//! on ext4 with a journal and XFS, the file's pages are written with sync_file_range,
//! it is linked into `new/` and the file is fsync'd (one flush: schemes.rs checks which
//! file systems get which); for queue/qmail-queue, the
//! program has exited 0 and we have reaped it. The binary runs under strace (`-f -y`, so
//! every descriptor is shown with the file or socket it refers to) and the test reads the
//! order of the calls in the trace: no timing is involved. strace records each thread's
//! calls in the order they happen, and a call that another process's call interrupts is
//! split into its `<unfinished ...>` start and its `<... resumed>` end, which are matched
//! here, so "ended before the reply began" is read exactly.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use qpsmtpd_rs::durable::Scheme;

use crate::support::{TestDir, binary, root, spawn_inetd, tool};

/// queue/maildir's scheme on each kind of file system, on loop-mounted images.
mod schemes;

/// The calls traced. `?` lets strace skip a name this architecture lacks.
const CALLS: &str = "fsync,fdatasync,sync_file_range,?sync_file_range2,write,writev,sendto,sendmsg,linkat,?link,renameat2,?renameat,?rename,\
                     wait4,waitid,execve,clone,clone3,?fork,?vfork";

fn cfg(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// One system call in the trace: who made it, where its line starts and ends (line
/// numbers in the trace), and its text with an interrupted call's two halves joined.
#[derive(Debug)]
struct Call {
    pid: u32,
    start: usize,
    end: usize,
    text: String,
}

impl Call {
    fn name(&self) -> &str {
        self.text.split('(').next().unwrap_or("")
    }

    /// The return value (after the last ` = `).
    fn result(&self) -> &str {
        self.text
            .rsplit_once(" = ")
            .map_or("", |(_, r)| r.split_whitespace().next().unwrap_or(""))
    }
}

/// A parsed `strace -f -tt -o` trace: the calls, and the line where each process exited.
struct Trace {
    calls: Vec<Call>,
    exits: Vec<(u32, usize, String)>,
    text: String,
}

impl Trace {
    fn parse(text: String) -> Trace {
        let mut calls = Vec::new();
        let mut exits = Vec::new();
        let mut pending: Vec<(u32, usize, String)> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            // `PID HH:MM:SS.micro rest`; strace pads the pid to a common width.
            let Some((pid, after)) = line.trim_start().split_once(' ') else {
                continue;
            };
            let Some((_time, rest)) = after.trim_start().split_once(' ') else {
                continue;
            };
            let Ok(pid) = pid.parse::<u32>() else { continue };
            if let Some(status) = rest.strip_prefix("+++ ") {
                exits.push((pid, i, status.trim_end_matches(" +++").to_string()));
            } else if let Some(head) = rest.strip_suffix(" <unfinished ...>") {
                pending.push((pid, i, head.to_string()));
            } else if let Some(tail) = rest.strip_prefix("<... ") {
                let Some(at) = pending.iter().position(|(p, _, _)| *p == pid) else {
                    continue;
                };
                let (_, start, head) = pending.remove(at);
                let tail = tail.split_once(" resumed>").map_or(tail, |(_, t)| t);
                calls.push(Call {
                    pid,
                    start,
                    end: i,
                    text: format!("{head}{tail}"),
                });
            } else if !rest.starts_with("---") {
                calls.push(Call {
                    pid,
                    start: i,
                    end: i,
                    text: rest.to_string(),
                });
            }
        }
        calls.sort_by_key(|c| c.start);
        Trace { calls, exits, text }
    }

    /// The first call that matches.
    fn find(&self, what: &str, f: impl Fn(&Call) -> bool) -> &Call {
        self.calls
            .iter()
            .find(|c| f(c))
            .unwrap_or_else(|| panic!("no {what} in the trace:\n{}", self.text))
    }

    /// The write to the client (fd 1, the socket) that starts with `start`.
    fn reply(&self, start: &str) -> &Call {
        self.find(&format!("write of {start:?} to the client"), |c| {
            let to_client = ["write(1<", "writev(1<", "sendto(1<", "sendmsg(1<"]
                .iter()
                .any(|call| c.text.starts_with(call))
                && (c.text.contains("<socket:[") || c.text.contains("<TCP"));
            to_client && c.text.contains(&format!(", \"{start}"))
        })
    }
}

/// Runs one session that sends a message, under strace; returns the reply to the dot and
/// the trace.
fn traced_session(dir: &TestDir) -> Option<(String, Trace)> {
    let strace = tool("strace")?;
    let trace_file = dir.path().join("trace");
    let mut cmd = Command::new(strace);
    cmd.args(["-f", "-y", "-tt", "-q", "-s", "256", "-e", "signal=none", "-e"])
        .arg(format!("trace={CALLS}"))
        .arg("-o")
        .arg(&trace_file)
        .arg("--")
        .arg(binary())
        .arg("--config")
        .arg(dir.config())
        .current_dir(dir.path())
        .env_remove("QPSMTPD_CONFIG");
    let (mut child, client) = spawn_inetd(cmd);
    client.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = client.try_clone().unwrap();
    let mut r = BufReader::new(client);
    let mut expect = |code: &str| -> String {
        loop {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(code), "expected {code}, got {line:?}");
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    };
    expect("220");
    w.write_all(b"HELO c.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@example.org>\r\nDATA\r\n")
        .unwrap();
    for code in ["250", "250", "250", "354"] {
        expect(code);
    }
    w.write_all(b"Message-Id: <durable@b.example>\r\nSubject: durable\r\n\r\nbody\r\n.\r\n")
        .unwrap();
    let reply = expect("");
    w.write_all(b"QUIT\r\n").unwrap();
    expect("221");
    // strace exits with the traced program, after writing the last line.
    let status = child.wait().unwrap();
    assert!(status.success(), "strace or the server failed: {status:?}");
    let text = std::fs::read_to_string(&trace_file).unwrap();
    Some((reply, Trace::parse(text)))
}

/// The test directory as strace shows paths (symbolic links resolved).
fn real(dir: &TestDir) -> PathBuf {
    std::fs::canonicalize(dir.path()).unwrap()
}

fn quoted(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The file system's scheme, as the library detects it for a file in `dir` (not
/// remembered: tests mount different file systems on the same loop device in turn).
fn scheme_of(dir: &Path) -> Scheme {
    let probe = dir.join(".scheme-probe");
    let file = std::fs::File::create(&probe).unwrap();
    let (scheme, why) = qpsmtpd_rs::durable::detect(&file);
    eprintln!("{}: {scheme:?} ({why})", dir.display());
    std::fs::remove_file(&probe).unwrap();
    scheme
}

/// Wherever the test directory is, the message is durable before the `250`, by the
/// scheme its file system gets.
#[test]
fn maildir_file_and_new_directory_are_synced_before_the_250() {
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/maildir"),
        ("rcpthosts", "example.org"),
        ("logging", "logging/devnull"),
    ]));
    let scheme = scheme_of(dir.path());
    assert_maildir_order(&dir, &real(&dir).join("maildir"), scheme);
}

/// Sends one message through queue/maildir (configured to deliver to `maildir`) under
/// strace and checks the order of the calls for `scheme`.
fn assert_maildir_order(dir: &TestDir, maildir: &Path, scheme: Scheme) {
    let Some((reply, trace)) = traced_session(dir) else {
        return;
    };
    assert_eq!(reply, "250 2.0.0 Queued! <durable@b.example>");
    let message = dir.messages();
    let [message] = message.as_slice() else {
        panic!("expected one delivered message: {message:?}")
    };
    let name = message.file_name().unwrap().to_string_lossy().into_owned();
    let tmp_file = quoted(&maildir.join("tmp").join(&name));
    let new_file = quoted(&maildir.join("new").join(&name));
    let new_dir = quoted(&maildir.join("new"));
    let is_sync = |c: &Call| matches!(c.name(), "fsync" | "fdatasync");
    let is_range = |c: &Call| c.name().starts_with("sync_file_range");
    let is_new_dir_sync = |c: &Call| is_sync(c) && c.text.contains(&format!("<{new_dir}>"));

    // The file is settled before the link (fsync for two syncs, sync_file_range for one).
    let settled = trace.find("fsync or sync_file_range of the message file", |c| {
        let wanted = match scheme {
            Scheme::TwoSyncs => is_sync(c),
            Scheme::OneFlush => is_range(c),
        };
        wanted && c.text.contains(&format!("<{tmp_file}>")) && c.result() == "0"
    });
    let linked = trace.find("link of the message into new/", |c| {
        matches!(c.name(), "linkat" | "link" | "renameat2" | "renameat" | "rename")
            && c.text.contains(&format!("\"{new_file}\""))
            && c.result() == "0"
    });
    // After the link: new/ synced (two syncs), or the same descriptor fsync'd (one flush;
    // its tmp/ name is gone by then, so it is found by number).
    let fd = settled.text.split(['(', '<']).nth(1).unwrap_or("").to_string();
    let durable = trace.find("the sync after the link", |c| {
        let wanted = match scheme {
            Scheme::TwoSyncs => is_new_dir_sync(c),
            Scheme::OneFlush => c.name() == "fsync" && c.text.starts_with(&format!("fsync({fd}<")),
        };
        wanted && c.result() == "0" && c.start > linked.end
    });
    let ok = trace.reply("250 2.0.0 Queued! ");
    let order = format!(
        "{scheme:?}: file settled at line {}, linked at {}, synced at {}, 250 written at {}",
        settled.end + 1,
        linked.end + 1,
        durable.end + 1,
        ok.start + 1
    );
    assert!(settled.end < linked.start, "settled after the link: {order}");
    assert!(durable.end < ok.start, "250 before the last sync: {order}");
    assert!(
        [settled, linked, durable, ok].iter().all(|c| c.pid == ok.pid),
        "one process does it all: {order}"
    );
    match scheme {
        Scheme::OneFlush => {
            let extra = trace.calls.iter().find(|c| is_new_dir_sync(c));
            assert!(extra.is_none(), "one flush, yet new/ was synced: {extra:?}");
        }
        Scheme::TwoSyncs => {
            let extra = trace.calls.iter().find(|c| is_range(c));
            assert!(extra.is_none(), "two syncs, yet sync_file_range: {extra:?}");
        }
    }
}

#[test]
fn qmail_queue_has_exited_and_been_reaped_before_the_250() {
    let program = root().join("tests/fixtures/programs/qmail-queue");
    let line = format!("queue/qmail-queue {}", program.display());
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", &line),
        ("rcpthosts", "example.org"),
        ("logging", "logging/devnull"),
    ]));
    let Some((reply, trace)) = traced_session(&dir) else {
        return;
    };
    assert!(reply.starts_with("250 2.0.0 Queued! "), "{reply}");
    let program = quoted(&std::fs::canonicalize(&program).unwrap());
    let exec = trace.find("execve of the queue program", |c| {
        c.name() == "execve" && c.text.contains(&format!("\"{program}\"")) && c.result() == "0"
    });
    let pid = exec.pid;
    assert!(
        reply.contains(&format!(" qp {pid} ")),
        "the reply names another process than {pid}: {reply}"
    );
    let (_, exited, status) = trace
        .exits
        .iter()
        .find(|(p, _, _)| *p == pid)
        .unwrap_or_else(|| panic!("process {pid} did not exit by itself (killed?):\n{}", trace.text));
    assert_eq!(status, "exited with 0");
    let reaped = trace.find("wait for the queue program's exit status 0", |c| match c.name() {
        "wait4" => c.result() == pid.to_string() && c.text.contains("WIFEXITED(s) && WEXITSTATUS(s) == 0"),
        "waitid" => {
            c.result() == "0"
                && c.text.contains(&format!("si_pid={pid},"))
                && c.text.contains("si_code=CLD_EXITED")
                && c.text.contains("si_status=0,")
        }
        _ => false,
    });
    let ok = trace.reply("250 2.0.0 Queued! ");
    let order = format!(
        "program exited at line {}, reaped at {}, 250 written at {}",
        exited + 1,
        reaped.end + 1,
        ok.start + 1
    );
    assert!(*exited < reaped.end, "{order}");
    assert!(
        reaped.end < ok.start,
        "250 before the program was reaped: {order}"
    );
    assert_eq!(reaped.pid, ok.pid, "{order}");
}

/// The trace reader: pids padded to a common width, a call split by another process's
/// call into its start and its end, exit lines.
#[test]
fn the_trace_reader_joins_split_calls_whatever_the_pid_width() {
    let text = "\
999   10:00:00.000001 execve(\"/bin/x\", [\"x\"], 0x1 /* 1 var */) = 0
999   10:00:00.000002 wait4(1000,  <unfinished ...>
1000  10:00:00.000003 fsync(3</tmp/f>) = 0
1000  10:00:00.000004 +++ exited with 0 +++
999   10:00:00.000005 <... wait4 resumed>[{WIFEXITED(s) && WEXITSTATUS(s) == 0}], 0, NULL) = 1000
999   10:00:00.000006 write(1<socket:[1]>, \"250 ok\\r\\n\", 8) = 8
"
    .to_string();
    let trace = Trace::parse(text);
    let names: Vec<(u32, &str, usize, usize)> = trace
        .calls
        .iter()
        .map(|c| (c.pid, c.name(), c.start, c.end))
        .collect();
    assert_eq!(
        names,
        [
            (999, "execve", 0, 0),
            (999, "wait4", 1, 4),
            (1000, "fsync", 2, 2),
            (999, "write", 5, 5)
        ]
    );
    assert_eq!(trace.calls[1].result(), "1000");
    assert!(trace.calls[1].text.contains("WEXITSTATUS(s) == 0"));
    assert_eq!(trace.exits, [(1000, 3, "exited with 0".to_string())]);
    assert_eq!(trace.reply("250 ").start, 5);
}
