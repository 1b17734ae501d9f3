//! Publishing a written file into a maildir's `new/` durably, with as few disk flushes as
//! the file system allows (README "Performance", "One flush or two syncs").
//!
//! Two schemes, chosen per device:
//!
//! - **Two syncs** (any file system): fsync the file in `tmp/`, link it into `new/`,
//!   unlink `tmp/`, fsync `new/`. Each fsync is a journal commit or a cache flush.
//! - **One flush** (ext4 with a jbd2 journal, XFS): write the file's pages and wait for
//!   them with sync_file_range (blocks allocated, nothing committed, no cache flush),
//!   link into `new/`, unlink `tmp/`, then fsync the file. On these file systems the link
//!   logs the file's inode in the same transaction as the new directory entry, so the
//!   file's fsync commits the entry too, and the commit's cache flush makes the data
//!   written before it durable. Because the data was on the device before the link, a
//!   crash can never leave a name in `new/` for an empty or partial file.
//!
//! Anything else, or any doubt (ext2/3/4 without a journal, btrfs, tmpfs, NFS, FUSE,
//! overlayfs, a detection error) gets two syncs.

#[allow(unsafe_code)]
mod range;

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;

/// `statfs(2)` `f_type` of XFS.
pub const XFS_MAGIC: u64 = 0x5846_5342;
/// `statfs(2)` `f_type` shared by ext2, ext3 and ext4.
pub const EXT_MAGIC: u64 = 0xEF53;

/// Where the kernel lists mounted jbd2 journals, one entry `<device>-<journal inode>`.
const JBD2_DIR: &str = "/proc/fs/jbd2";
/// Block devices by `major:minor`, each a symbolic link ending in the device's name.
const SYS_DEV_BLOCK: &str = "/sys/dev/block";

/// How a file is made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// sync_file_range before the link, fsync of the file after it.
    OneFlush,
    /// fsync of the file before the link, fsync of `new/` after it.
    TwoSyncs,
}

impl Scheme {
    /// The words the log uses.
    pub fn describe(self) -> &'static str {
        match self {
            Scheme::OneFlush => "one flush (sync_file_range, link, fsync of the file)",
            Scheme::TwoSyncs => "two syncs (fsync of the file, link, fsync of new/)",
        }
    }
}

/// The scheme for one file, why, and whether this is the first file on its device in
/// this process (so the caller logs the choice once).
#[derive(Clone, Debug)]
pub struct Choice {
    /// The scheme.
    pub scheme: Scheme,
    /// Why: the file system and the journal found, or what was not found.
    pub why: String,
    /// First file on this device in this process.
    pub first: bool,
}

/// A failed step (`fsync`, `link`: the words the 451 and the log use) and its error.
pub type Failure = (&'static str, io::Error);

/// A file system as the scheme is remembered for it: `st_dev` and `statfs` type.
type FsKey = (u64, u64);

/// The answers so far.
static CHOSEN: Mutex<Vec<(FsKey, Scheme, String)>> = Mutex::new(Vec::new());

/// The scheme for `file` (an open file on the maildir's file system), worked out once
/// per device and file system type: fstat and fstatfs every time (a device formatted
/// anew while the process runs, say XFS then ext2, is not taken for the old one), and
/// for ext2/3/4 the first time one readlink and one look-up ([`detect_on`]).
pub fn choose(file: &File) -> Choice {
    let key = match fs_key(file) {
        Ok(key) => key,
        Err(why) => return two_syncs(why),
    };
    let mut chosen = CHOSEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((_, scheme, why)) = chosen.iter().find(|(k, _, _)| *k == key) {
        return Choice {
            scheme: *scheme,
            why: why.clone(),
            first: false,
        };
    }
    let (scheme, why) = detect_on(key);
    chosen.push((key, scheme, why.clone()));
    Choice {
        scheme,
        why,
        first: true,
    }
}

fn two_syncs(why: String) -> Choice {
    Choice {
        scheme: Scheme::TwoSyncs,
        why,
        first: true,
    }
}

/// The scheme for `file` without the per-device memory of [`choose`]: reads the facts
/// from the system and hands them to [`decide`].
pub fn detect(file: &File) -> (Scheme, String) {
    match fs_key(file) {
        Ok(key) => detect_on(key),
        Err(why) => (Scheme::TwoSyncs, why),
    }
}

/// The file's device and file-system type (fstat, fstatfs), or why they are unknown.
fn fs_key(file: &File) -> Result<FsKey, String> {
    let dev = file.metadata().map_err(|e| format!("fstat failed: {e}"))?.dev();
    let stat = nix::sys::statfs::fstatfs(file).map_err(|e| format!("fstatfs failed: {e}"))?;
    Ok((dev, stat.filesystem_type().0 as u64))
}

/// [`detect`] for a file system already known by its key: for ext2/3/4, one readlink
/// and one look-up of the usual journal entry (a directory listing when it is missing).
fn detect_on((dev, f_type): FsKey) -> (Scheme, String) {
    if f_type != EXT_MAGIC {
        return decide(f_type, None, &[]);
    }
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let device = match std::fs::read_link(format!("{SYS_DEV_BLOCK}/{major}:{minor}")) {
        Ok(link) => link.file_name().map(|n| n.to_string_lossy().into_owned()),
        Err(e) => {
            let why = format!("ext2/3/4 on device {major}:{minor}, not found in {SYS_DEV_BLOCK}: {e}");
            return (Scheme::TwoSyncs, why);
        }
    };
    // An internal journal is inode 8, so `<device>-8` is nearly always the entry: one
    // look-up answers, and the directory is listed only when it is not there.
    if let Some(dev) = &device {
        let usual = format!("{dev}-8");
        if Path::new(JBD2_DIR).join(&usual).exists() {
            return decide(f_type, Some(dev), &[usual]);
        }
    }
    let journals = match std::fs::read_dir(JBD2_DIR) {
        Ok(entries) => entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        // No jbd2 at all (module not loaded): no journal anywhere.
        Err(_) => Vec::new(),
    };
    decide(f_type, device.as_deref(), &journals)
}

/// The decision from the facts: the file system's magic number, the block device's name
/// (for ext2/3/4) and the entries of `/proc/fs/jbd2`.
pub fn decide(f_type: u64, device: Option<&str>, journals: &[String]) -> (Scheme, String) {
    match f_type {
        XFS_MAGIC => (Scheme::OneFlush, "XFS".to_string()),
        EXT_MAGIC => match device {
            None => (
                Scheme::TwoSyncs,
                "ext2/3/4 on a device without a name".to_string(),
            ),
            Some(dev) => match journals.iter().find(|j| is_journal_of(j, dev)) {
                Some(j) => (
                    Scheme::OneFlush,
                    format!("ext3/4 on {dev} with the journal {JBD2_DIR}/{j}"),
                ),
                None => (
                    Scheme::TwoSyncs,
                    format!("ext2/3/4 on {dev} without a journal in {JBD2_DIR}"),
                ),
            },
        },
        other => (
            Scheme::TwoSyncs,
            format!("file system type {other:#x} (neither XFS nor ext4 with a journal)"),
        ),
    }
}

/// Renames `from` to `to` unless `to` exists: renameat2's RENAME_NOREPLACE, or where the
/// file system does not take that flag (EINVAL), a look first and a plain rename (the
/// names are unique per process and host, so the gap between the two is not a race
/// another delivery can lose).
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    match renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) if to.symlink_metadata().is_ok() => {
            Err(io::Error::from_raw_os_error(libc::EEXIST))
        }
        Err(nix::errno::Errno::EINVAL) => std::fs::rename(from, to),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// `loop0-8` is the journal (inode 8) of `loop0`; `loop0p1-8` or `loop00-8` is not.
fn is_journal_of(entry: &str, device: &str) -> bool {
    entry
        .strip_prefix(device)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Makes `dir/tmp/name` (`file`, completely written) durable as `dir/new/name`, with the
/// chosen scheme. On failure nothing is left in `tmp/`, and nothing in `new/` unless
/// removing it failed too.
pub fn publish(file: &File, dir: &Path, name: &str, scheme: Scheme) -> Result<(), Failure> {
    let tmp = dir.join("tmp").join(name);
    let new_dir = dir.join("new");
    let new = new_dir.join(name);
    let settled = match scheme {
        Scheme::OneFlush => range::write_and_wait(file),
        Scheme::TwoSyncs => file.sync_all(),
    };
    if let Err(e) = settled {
        let _ = std::fs::remove_file(&tmp);
        return Err(("fsync", e));
    }
    let linked = std::fs::hard_link(&tmp, &new).or_else(|e| match e.raw_os_error() {
        // File systems without hard links: a rename is atomic too, but must not replace
        // a message already there (link would have refused with EEXIST).
        Some(libc::EPERM) | Some(libc::EOPNOTSUPP) => rename_no_replace(&tmp, &new),
        _ => Err(e),
    });
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| ("link", e))?;
    let durable = match scheme {
        // fsync, not fdatasync: the link changed only the inode (links, ctime), and the
        // inode's change is what ties the file's fsync to the directory entry's commit.
        Scheme::OneFlush => file.sync_all(),
        Scheme::TwoSyncs => File::open(&new_dir).and_then(|d| d.sync_all()),
    };
    durable.map_err(|e| {
        let _ = std::fs::remove_file(&new);
        ("fsync", e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The fallback for file systems without hard links never replaces a message.
    #[test]
    fn the_rename_fallback_does_not_replace_a_message() {
        let dir = tempfile::tempdir().unwrap();
        let (from, to) = (dir.path().join("tmp-name"), dir.path().join("new-name"));
        std::fs::write(&from, b"second").unwrap();
        std::fs::write(&to, b"first").unwrap();
        let err = rename_no_replace(&from, &to).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), b"first");
        std::fs::remove_file(&to).unwrap();
        rename_no_replace(&from, &to).unwrap();
        assert_eq!(std::fs::read(&to).unwrap(), b"second");
        assert!(!from.exists());
    }

    #[test]
    fn xfs_gets_one_flush_whatever_the_device() {
        assert_eq!(decide(XFS_MAGIC, None, &[]).0, Scheme::OneFlush);
        assert_eq!(decide(0x5846_5342, Some("sda1"), &[]).0, Scheme::OneFlush);
    }

    #[test]
    fn ext4_gets_one_flush_only_with_its_own_journal() {
        let journals = names(&["vda1-8", "loop0-8", "dm-0-8"]);
        for dev in ["vda1", "loop0", "dm-0"] {
            let (scheme, why) = decide(EXT_MAGIC, Some(dev), &journals);
            assert_eq!(scheme, Scheme::OneFlush, "{dev}: {why}");
            assert!(why.contains(&format!("{dev}-8")), "{why}");
        }
        // Names that only start like a journalled device's.
        for dev in ["vda", "loop", "dm", "vda11", "loop00", "dm-01"] {
            let (scheme, why) = decide(EXT_MAGIC, Some(dev), &journals);
            assert_eq!(scheme, Scheme::TwoSyncs, "{dev}: {why}");
        }
        assert_eq!(decide(EXT_MAGIC, Some("vda"), &[]).0, Scheme::TwoSyncs);
        assert_eq!(decide(EXT_MAGIC, None, &journals).0, Scheme::TwoSyncs);
    }

    #[test]
    fn journal_entries_are_device_dash_number() {
        assert!(is_journal_of("loop0-8", "loop0"));
        assert!(is_journal_of("nvme0n1p2-8", "nvme0n1p2"));
        assert!(is_journal_of("dm-3-1234", "dm-3"));
        assert!(!is_journal_of("loop0-", "loop0"));
        assert!(!is_journal_of("loop0-x", "loop0"));
        assert!(!is_journal_of("loop0p1-8", "loop0"));
        assert!(!is_journal_of("loop0", "loop0"));
        assert!(!is_journal_of("dm-3-8", "dm"));
    }

    #[test]
    fn everything_else_keeps_two_syncs() {
        let journals = names(&["vda-8"]);
        // tmpfs, btrfs, NFS, FUSE, overlayfs, 0.
        for magic in [0x0102_1994, 0x9123_683E, 0x6969, 0x6573_5546, 0x794C_7630, 0] {
            let (scheme, why) = decide(magic, Some("vda"), &journals);
            assert_eq!(scheme, Scheme::TwoSyncs, "{magic:#x}: {why}");
            assert!(why.contains(&format!("{magic:#x}")), "{why}");
        }
    }

    /// A real file: the choice is made once per device, and publishing leaves the file in
    /// `new/` only, with its content, whichever scheme the test directory's file system
    /// gets.
    #[test]
    fn publish_moves_the_file_into_new() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "new"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        for scheme in [Scheme::OneFlush, Scheme::TwoSyncs] {
            let name = format!("{scheme:?}");
            let mut f = File::create_new(dir.path().join("tmp").join(&name)).unwrap();
            f.write_all(b"Subject: x\n\nbody\n").unwrap();
            let first = choose(&f);
            let again = choose(&f);
            assert!(!again.first, "{again:?}");
            assert_eq!((first.scheme, first.why), (again.scheme, again.why));
            publish(&f, dir.path(), &name, scheme).unwrap();
            assert!(!dir.path().join("tmp").join(&name).exists());
            let body = std::fs::read(dir.path().join("new").join(&name)).unwrap();
            assert_eq!(body, b"Subject: x\n\nbody\n");
        }
    }

    /// A failed link (here: no `new/`) leaves nothing behind in `tmp/`.
    #[test]
    fn a_failed_link_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("tmp")).unwrap();
        for scheme in [Scheme::OneFlush, Scheme::TwoSyncs] {
            let f = File::create_new(dir.path().join("tmp").join("m")).unwrap();
            let (step, _) = publish(&f, dir.path(), "m", scheme).unwrap_err();
            assert_eq!(step, "link");
            assert!(!dir.path().join("tmp").join("m").exists());
        }
    }

    /// When the data cannot be settled (here a pipe, which neither sync_file_range nor
    /// fsync accepts), the step is `fsync`, nothing is linked and `tmp/` is emptied.
    #[test]
    fn a_failed_sync_before_the_link_reports_fsync_and_removes_the_file() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["tmp", "new"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let not_a_file = File::from(reader);
        for scheme in [Scheme::OneFlush, Scheme::TwoSyncs] {
            File::create_new(dir.path().join("tmp").join("m")).unwrap();
            let (step, e) = publish(&not_a_file, dir.path(), "m", scheme).unwrap_err();
            assert_eq!(step, "fsync", "{scheme:?}: {e}");
            assert!(!dir.path().join("tmp").join("m").exists(), "{scheme:?}");
            assert!(!dir.path().join("new").join("m").exists(), "{scheme:?}");
        }
        assert_eq!(
            detect(&not_a_file).0,
            Scheme::TwoSyncs,
            "a pipe is no file system that needs fewer syncs"
        );
    }
}
