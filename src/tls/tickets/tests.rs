//! Ticket-key files: creation, rotation, refused files.

use super::*;
use std::fs;

#[test]
fn tickets_survive_the_process_and_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let day = Duration::from_secs(86400);
    let a = TicketKeys::load(&path, day, None).unwrap().0;
    let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let ticket = a.encrypt(b"session state").unwrap();
    // Another process reads the same file and accepts the ticket.
    let b = TicketKeys::load(&path, day, None).unwrap().0;
    assert_eq!(b.decrypt(&ticket).unwrap(), b"session state");
    assert!(b.decrypt(&ticket[..ticket.len() - 1]).is_none());
    // Age the key past one period: the next process rotates but still accepts it.
    let text = fs::read_to_string(&path).unwrap();
    let aged: String = text
        .lines()
        .map(|l| {
            let (created, rest) = l.split_once(' ').unwrap();
            format!("{} {rest}\n", created.parse::<u64>().unwrap() - 86400 - 10)
        })
        .collect();
    fs::write(&path, aged).unwrap();
    let c = TicketKeys::load(&path, day, None).unwrap().0;
    assert_eq!(c.keys.len(), 2);
    assert_eq!(c.decrypt(&ticket).unwrap(), b"session state");
    assert_ne!(c.encrypt(b"x").unwrap()[..NAME_LEN], ticket[..NAME_LEN]);
}

/// The directory belongs to the service user: what it leaves at the file's path
/// (a FIFO, a symlink to another file, a symlinked lock file) must neither hang the
/// session (a FIFO blocks open(2) for ever) nor be followed.
#[test]
fn a_fifo_or_symlinks_in_the_key_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let hour = Duration::from_secs(3600);
    // A FIFO: refused at once (run with a watchdog, since the bug was a hang).
    let fifo = dir.path().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || {
        let _ = tx.send(TicketKeys::load(&path, hour, None).map(|_| ()));
    });
    let e = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("opening a FIFO as the key file hangs")
        .unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(TicketKeys::check_file(&fifo, None).is_err());
    // A symlink to a file of valid keys: not followed.
    let real = dir.path().join("real");
    TicketKeys::load(&real, hour, None).unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let e = TicketKeys::load(&link, hour, None).unwrap_err();
    assert!(e.to_string().contains("symbolic link"), "{e}");
    assert!(TicketKeys::check_file(&link, None).is_err());
    // A symlinked lock file: no file is made where it points.
    let keys = dir.path().join("keys");
    let target = dir.path().join("made-through-the-lock-symlink");
    std::os::unix::fs::symlink(&target, dir.path().join("keys.lock")).unwrap();
    assert!(TicketKeys::load(&keys, hour, None).is_err());
    assert!(!target.exists());
}

#[test]
fn a_key_from_the_far_future_is_dropped_not_added_up() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    let hour = Duration::from_secs(3600);
    TicketKeys::load(&path, hour, None).unwrap();
    // A damaged line whose time would overflow when the period is added to it.
    let text = fs::read_to_string(&path).unwrap();
    let (_, rest) = text.lines().next().unwrap().split_once(' ').unwrap();
    fs::write(&path, format!("{} {rest}\n{text}", u64::MAX)).unwrap();
    let keys = TicketKeys::load(&path, hour, None).unwrap().0;
    assert_eq!(keys.keys.len(), 1);
}

#[test]
fn a_file_others_can_read_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    TicketKeys::load(&path, Duration::from_secs(3600), None).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let e = TicketKeys::load(&path, Duration::from_secs(3600), None).unwrap_err();
    assert!(e.to_string().contains("0600"), "{e}");
}
