//! queue/maildir's sync scheme on real file systems: each test makes a file system in an
//! image file (or a tmpfs), mounts it inside the test directory, checks that the library
//! detects the scheme expected there, and reads the calls' order under strace. Needs root
//! and loop devices (CI has both). Without root or a tool the test says why and is skipped,
//! unless QPSMTPD_RS_REQUIRE_ALL=1; a kernel without loop devices or without the file
//! system's driver is skipped with a loud line either way (no package can add it).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use qpsmtpd_rs::durable::Scheme;

use super::{assert_maildir_order, cfg, scheme_of};
use crate::queue::{Talk, files_in};
use crate::support::{TestDir, required, tool};

/// A file system mounted for one test; unmounted, and its loop device detached, on drop.
struct Mounted {
    point: PathBuf,
    image: Option<PathBuf>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.point).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Busy (a process still running in it): detach it now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(&self.point).status();
        }
        // mount -o loop sets autoclear, so this finds nothing unless that failed.
        let Some(image) = &self.image else { return };
        let Ok(out) = Command::new("losetup").arg("-j").arg(image).output() else {
            return;
        };
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((device, _)) = line.split_once(':') {
                let _ = Command::new("losetup").arg("-d").arg(device).status();
            }
        }
    }
}

/// Skips (returns None) with a reason, or fails when nothing may be skipped.
fn skip(why: &str) -> Option<Mounted> {
    assert!(!required(), "{why} (QPSMTPD_RS_REQUIRE_ALL=1)");
    eprintln!("SKIPPED: {why}");
    None
}

fn run(what: &str, cmd: &mut Command) -> Result<(), String> {
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{what} did not start: {e}")),
    }
}

/// Makes an image of `size` bytes with `mkfs ARGS`, and mounts it on `DIR/fs` via a loop
/// device.
fn mount_image(dir: &TestDir, mkfs: &str, args: &[&str], size: u64) -> Option<Mounted> {
    if !nix::unistd::geteuid().is_root() {
        return skip("loop mounts need root");
    }
    let mkfs_path = tool(mkfs)?;
    tool("mount")?;
    tool("losetup")?;
    let image = dir.path().join("fs.img");
    let point = dir.path().join("fs");
    std::fs::create_dir(&point).unwrap();
    // Sparse: only what the file system writes takes space.
    std::fs::File::create(&image).unwrap().set_len(size).unwrap();
    if let Err(e) = run(mkfs, Command::new(mkfs_path).args(args).arg(&image)) {
        return skip(&e);
    }
    let mounted = run(
        "mount -o loop",
        Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&point),
    );
    let guard = Mounted {
        point,
        image: Some(image),
    };
    match mounted {
        Ok(()) => Some(guard),
        Err(e) => {
            drop(guard);
            let fs = mkfs.trim_start_matches("mkfs.");
            match kernel_lacks(fs) {
                // What the kernel offers is not a package tests/run can install: said
                // loudly, but not a failure even when every tool is required.
                Some(lack) => {
                    eprintln!("SKIPPED: {lack} ({e})");
                    None
                }
                None => skip(&format!("mount failed: {e}")),
            }
        }
    }
}

/// What this kernel cannot do that a loop mount of `fs` needs: no loop devices, or no
/// driver for `fs` (built in or loaded: /proc/filesystems lists it after the mount tried).
fn kernel_lacks(fs: &str) -> Option<String> {
    if !std::path::Path::new("/dev/loop-control").exists() {
        return Some("this kernel has no loop devices (/dev/loop-control)".to_string());
    }
    let known = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    let listed = known.lines().any(|l| l.split_whitespace().last() == Some(fs));
    (!listed).then(|| format!("this kernel has no {fs} driver (/proc/filesystems)"))
}

fn mount_tmpfs(dir: &TestDir) -> Option<Mounted> {
    if !nix::unistd::geteuid().is_root() {
        return skip("mounting a tmpfs needs root");
    }
    let point = dir.path().join("fs");
    std::fs::create_dir(&point).unwrap();
    let mounted = run(
        "mount -t tmpfs",
        Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=16m,mode=700", "tmpfs"])
            .arg(&point),
    );
    let guard = Mounted { point, image: None };
    match mounted {
        Ok(()) => Some(guard),
        Err(e) => {
            drop(guard);
            skip(&e)
        }
    }
}

/// A test directory whose queue/maildir delivers to `DIR/fs/maildir`.
fn maildir_on_mount() -> TestDir {
    TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/fs/maildir"),
        ("rcpthosts", "example.org"),
        ("logging", "logging/devnull"),
    ]))
}

/// The detection on the mounted file system, then the calls of one delivery.
fn check(dir: &TestDir, mounted: &Mounted, expected: Scheme) {
    assert_eq!(scheme_of(&mounted.point), expected, "detected scheme");
    let maildir = std::fs::canonicalize(&mounted.point).unwrap().join("maildir");
    assert_maildir_order(dir, &maildir, expected);
}

const MIB: u64 = 1024 * 1024;

/// A file system made by `mkfs ARGS` on an image of `size` bytes gets `expected`.
fn image_case(mkfs: &str, args: &[&str], size: u64, expected: Scheme) {
    let dir = maildir_on_mount();
    let Some(mounted) = mount_image(&dir, mkfs, args, size) else {
        return;
    };
    check(&dir, &mounted, expected);
}

#[test]
fn ext4_with_a_journal_gets_one_flush() {
    // mkfs.ext4's defaults, as users have them: with a journal.
    image_case("mkfs.ext4", &["-q", "-F"], 64 * MIB, Scheme::OneFlush);
}

#[test]
fn ext4_without_a_journal_keeps_two_syncs() {
    let args = ["-q", "-F", "-O", "^has_journal"];
    image_case("mkfs.ext4", &args, 64 * MIB, Scheme::TwoSyncs);
}

#[test]
fn ext2_keeps_two_syncs() {
    image_case("mkfs.ext2", &["-q", "-F"], 64 * MIB, Scheme::TwoSyncs);
}

#[test]
fn xfs_gets_one_flush() {
    // 300 MiB is the smallest XFS that current mkfs.xfs makes; the image is sparse.
    image_case("mkfs.xfs", &["-q", "-f"], 320 * MIB, Scheme::OneFlush);
}

#[test]
fn tmpfs_keeps_two_syncs() {
    let dir = maildir_on_mount();
    let Some(mounted) = mount_tmpfs(&dir) else {
        return;
    };
    check(&dir, &mounted, Scheme::TwoSyncs);
}

/// The guard really undoes the mount: nothing of the image stays mounted or attached.
#[test]
fn the_mount_guard_unmounts_and_detaches() {
    let dir = maildir_on_mount();
    let Some(mounted) = mount_image(&dir, "mkfs.ext4", &["-q", "-F"], 64 * MIB) else {
        return;
    };
    let point = std::fs::canonicalize(&mounted.point).unwrap();
    let image = mounted.image.clone().unwrap();
    assert!(is_mounted(&point), "not mounted: {}", point.display());
    drop(mounted);
    assert!(!is_mounted(&point), "still mounted: {}", point.display());
    let out = Command::new("losetup").arg("-j").arg(&image).output().unwrap();
    assert!(out.stdout.is_empty(), "still attached: {:?}", out);
}

fn is_mounted(point: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    let point = point.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&point))
}

/// Where the one-flush scheme applies, a failure still leaves nothing: a full journaled
/// ext4 gives the client a 451 (the write fails, as delayed allocation reserves the
/// blocks at write time) and leaves no file in `tmp/` or `new/`.
#[test]
fn a_full_journaled_ext4_gives_451_and_leaves_nothing_behind() {
    let dir = maildir_on_mount();
    let Some(mounted) = mount_image(&dir, "mkfs.ext4", &["-q", "-F"], 64 * MIB) else {
        return;
    };
    assert_eq!(scheme_of(&mounted.point), Scheme::OneFlush, "detected scheme");
    let maildir = mounted.point.join("maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    fill(&mounted.point.join("filler"));
    let mut message = b"Subject: too big for what is left\n\n".to_vec();
    for i in 0..4000 {
        message.extend_from_slice(format!("line {i:05} of a message for a full disk\n").as_bytes());
    }
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["x@example.org"]);
    let reply = t.data(&message);
    assert!(reply.starts_with("451 4.3.0 queue error ("), "{reply}");
    t.quit();
    let left = files_in(&maildir);
    assert!(left.is_empty(), "files left in the maildir: {left:?}");
}

/// Writes `path` until the file system has no room left (root's reserved blocks too).
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    // Big writes first, then, once delayed allocation has given back what it reserved
    // too much of, small ones.
    for chunk in [1 << 20, 4096, 512] {
        let block = vec![0u8; chunk];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

/// The choice is logged once per file system per process, at LOGDEBUG, with its reason:
/// two recipients' maildirs on one journaled ext4 give one log line, and both copies.
#[test]
fn the_choice_is_logged_once_per_file_system() {
    let dir = TestDir::new(&cfg(&[
        ("plugins", "rcpt_ok"),
        ("plugins", "queue/maildir $DIR/fs/users %l"),
        ("rcpthosts", "example.org"),
    ]));
    let Some(_mounted) = mount_image(&dir, "mkfs.ext4", &["-q", "-F"], 64 * MIB) else {
        return;
    };
    let mut t = Talk::start(&dir);
    t.envelope("a@example.net", &["bob@example.org", "carol@example.org"]);
    let reply = t.data(b"Subject: twice\n\nHi.\n");
    assert!(reply.starts_with("250 2.0.0 Queued!"), "{reply}");
    let log = t.quit();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("maildir sync:")).collect();
    let [line] = lines.as_slice() else {
        panic!("expected one line about the sync scheme:\n{log}")
    };
    assert!(
        line.contains("maildir sync: one flush (sync_file_range"),
        "{line}"
    );
    assert!(line.contains("with the journal /proc/fs/jbd2/loop"), "{line}");
    assert_eq!(dir.messages().len(), 2, "{log}");
}
