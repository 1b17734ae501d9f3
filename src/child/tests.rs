use std::io::Cursor;

use super::*;

fn sh(script: &str) -> Command {
    let mut c = Command::new("/bin/sh");
    c.arg("-c").arg(script);
    c
}

fn soon(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}

#[test]
fn feeds_two_inputs_and_reads_two_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let script = format!(
        "cat > {0}.msg; cat <&1 > {0}.env; echo warn >&2; printf Zlater >&6; exit 71",
        out.display()
    );
    let message = vec![b'x'; 300_000];
    let done = Spawn::new(sh(&script))
        .fd(0, Fd::Feed(Box::new(&message[..])))
        .fd(1, Fd::Feed(Box::new(Cursor::new(b"Fa@b\0Tc@d\0\0".to_vec()))))
        .fd(2, Fd::Read(1024))
        .fd(6, Fd::Read(1024))
        .run(soon(10.0))
        .unwrap();
    assert_eq!(done.exit, Exit::Code(71));
    assert!(done.input_complete);
    assert_eq!(done.output(2), b"warn\n");
    assert_eq!(done.output(6), b"Zlater");
    assert_eq!(std::fs::read(out.with_extension("msg")).unwrap().len(), 300_000);
    assert_eq!(
        std::fs::read(out.with_extension("env")).unwrap(),
        b"Fa@b\0Tc@d\0\0"
    );
}

#[test]
fn a_child_that_hangs_is_killed_with_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("pid");
    let script = format!("sleep 30 & echo $! > {}; sleep 30", pidfile.display());
    let started = Instant::now();
    let r = Spawn::new(sh(&script)).run(soon(0.5));
    assert!(matches!(r, Err(ChildError::TimedOut)), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert!(gone(pid), "the background sleep {pid} survived its group's kill");
}

/// A process that no longer exists (or is a zombie waiting for init).
fn gone(pid: i32) -> bool {
    for _ in 0..100 {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state.rsplit(") ").next().unwrap_or("").chars().next();
        if matches!(state, None | Some('Z' | 'X')) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_child_that_reads_nothing_is_noticed() {
    let message = vec![b'x'; 1_000_000];
    let done = Spawn::new(sh("exit 0"))
        .fd(0, Fd::Feed(Box::new(&message[..])))
        .run(soon(10.0))
        .unwrap();
    assert_eq!(done.exit, Exit::Code(0));
    assert!(!done.input_complete);
}

#[test]
fn a_small_input_left_in_the_pipe_is_noticed() {
    let run_small = |script: &str| {
        Spawn::new(sh(script))
            .fd(0, Fd::Feed(Box::new(&b"a small message\n"[..])))
            .fd(1, Fd::Feed(Box::new(&b"Fa@b\0Tc@d\0\0"[..])))
            .run(soon(10.0))
            .unwrap()
    };
    // Exits 0 at once: everything fits in the pipes, so no write failed.
    let done = run_small("sleep 0.2; exit 0");
    assert_eq!(done.exit, Exit::Code(0));
    assert!(!done.input_complete);
    // Reads the message but not the envelope.
    assert!(!run_small("cat > /dev/null").input_complete);
    assert!(run_small("cat > /dev/null; cat <&1 > /dev/null").input_complete);
}

#[test]
fn a_missing_program_is_a_spawn_error() {
    let r = Spawn::new(Command::new("/nonexistent/qmail-queue")).run(soon(1.0));
    assert!(matches!(r, Err(ChildError::Spawn(_))));
}

#[test]
fn a_flood_on_an_output_is_read_and_dropped_past_its_limit() {
    let done = Spawn::new(sh("head -c 3000000 /dev/zero >&2; echo done"))
        .fd(1, Fd::Read(100))
        .fd(2, Fd::Read(1000))
        .run(soon(10.0))
        .unwrap();
    assert_eq!(done.exit, Exit::Code(0));
    assert_eq!(done.output(2).len(), 1000);
    assert_eq!(done.output(1), b"done\n");
}

#[test]
fn a_descriptor_above_two_carries_input() {
    // checkpassword's interface: the credentials on fd 3, stdin/stdout/stderr /dev/null.
    let script = "tr '\\0' , <&3 | grep -qx 'user,pass,Y123456,' && [ ! -s /dev/stdin ]";
    let ok = Spawn::new(sh(script))
        .fd(3, Fd::Feed(Box::new(&b"user\0pass\0Y123456\0"[..])))
        .run(soon(10.0))
        .unwrap();
    assert_eq!(ok.exit, Exit::Code(0));
    let refused = Spawn::new(sh(script))
        .fd(3, Fd::Feed(Box::new(&b"user\0nope\0Y123456\0"[..])))
        .run(soon(10.0))
        .unwrap();
    assert_eq!(refused.exit, Exit::Code(1));
}

#[test]
fn requests_and_answers_take_turns() {
    let mut p = Spawn::new(sh("while read -r l; do echo \"re $l\"; done"))
        .fd(0, Fd::Requests)
        .fd(1, Fd::Read(1000))
        .start()
        .unwrap();
    for word in ["one", "two"] {
        p.send(0, format!("{word}\n").as_bytes());
        while !p.output(1).ends_with(b"\n") {
            p.step(soon(5.0)).unwrap();
        }
        assert_eq!(std::mem::take(p.output(1)), format!("re {word}\n").into_bytes());
    }
    p.close(0);
    assert_eq!(p.wait(soon(5.0)).unwrap(), Exit::Code(0));
}

#[test]
fn a_signal_exit_is_described() {
    let done = Spawn::new(sh("kill -SEGV $$")).run(soon(5.0)).unwrap();
    assert_eq!(done.exit.describe(), "killed by signal 11");
    let done = Spawn::new(sh("exit 3")).run(soon(5.0)).unwrap();
    assert_eq!(done.exit.describe(), "exited with status 3");
    assert!(!done.exit.success());
}

#[test]
fn without_a_pidfd_the_exit_is_still_seen() {
    // Kernels (or sandboxes) without pidfd_open: the wait looks every few milliseconds.
    let mut p = Spawn::new(sh("sleep 0.2; exit 4")).start().unwrap();
    p.pidfd = None;
    let started = Instant::now();
    let done = p.finish(soon(5.0)).unwrap();
    assert_eq!(done.exit, Exit::Code(4));
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn only_an_open_requests_pipe_is_writable() {
    let mut p = Spawn::new(sh("cat > /dev/null"))
        .fd(0, Fd::Requests)
        .fd(1, Fd::Read(100))
        .start()
        .unwrap();
    assert!(p.writable(0));
    // An output, and a descriptor that is not the child's at all, are never writable.
    assert!(!p.writable(1));
    assert!(!p.writable(5));
    p.send(0, b"x\n");
    p.close(0);
    while p.exit().is_none() {
        p.step(soon(5.0)).unwrap();
    }
    assert!(!p.writable(0));
    assert!(p.sent(0));
}

#[test]
fn read_waiting_takes_what_the_output_already_holds() {
    let mut p = Spawn::new(sh("echo hello; sleep 5"))
        .fd(1, Fd::Read(100))
        .start()
        .unwrap();
    // Without a step: only what read_waiting reads shows.
    let deadline = soon(5.0);
    while p.output(1).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        p.read_waiting(100);
    }
    assert_eq!(std::mem::take(p.output(1)), b"hello\n");
    assert!(!p.output_ended(1));
    p.kill();
}
