//! Where the benchmark writes: every server's storage (our maildirs and spool, the floors'
//! maildirs, Postfix's queue_directory, Perl's maildir) lives in one work directory, and
//! by default that directory is on a journaled ext4 made for the run: what users run, and
//! the only kind of file system where Postfix's single fsync makes its queue file's name
//! durable, so every server pays for the same guarantee. As root, with mkfs.ext4 and loop
//! devices: an image file (1 GiB) under target/bench-cache, formatted anew for each run
//! with mkfs.ext4's defaults (so with a journal), attached with direct I/O and mounted on
//! a temporary directory, unmounted and detached when the benchmark ends (bench/run also
//! cleans up after Ctrl-C). The image is written in full once and kept for later runs: a
//! sparse image, or a loop device going through the page cache, made every sync also
//! allocate and sync the image file's own blocks, which cost a 100 MB message half its
//! speed and made the small-message rounds noisy. Otherwise, or with `--storage DIR` or
//! `--work DIR`, an ordinary directory, and the reason is printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use qpsmtpd_rs::durable::{self, EXT_MAGIC, Scheme, XFS_MAGIC};

/// Size of the image: room for the 100 MB message several times over.
const IMAGE_BYTES: u64 = 1 << 30;

/// How the work directory was asked for.
pub enum Wanted {
    /// Nothing said: a journaled ext4 image if possible, else `fallback`.
    Journaled { fallback: PathBuf },
    /// `--storage DIR`: a fresh directory inside DIR, no mount.
    Inside(PathBuf),
    /// `--work DIR`: exactly DIR, no mount.
    Exactly(PathBuf),
}

/// The work directory, and the mount under it if we made one (undone on drop: keep the
/// value alive until the end).
pub struct Storage {
    pub work: PathBuf,
    _mount: Option<Mount>,
}

struct Mount {
    point: PathBuf,
    image: PathBuf,
    record: PathBuf,
}

/// Sets up the work directory and prints where it is and how queue/maildir syncs there.
pub fn prepare(root: &Path, wanted: Wanted) -> Storage {
    let cache = root.join("target/bench-cache");
    let (work, mount, note) = match wanted {
        Wanted::Exactly(dir) => (dir, None, "--work: no mount".to_string()),
        Wanted::Inside(dir) => (
            dir.join(format!("qpsmtpd-rs-bench.{}", std::process::id())),
            None,
            "--storage: no mount".to_string(),
        ),
        Wanted::Journaled { fallback } => match mount_image(&cache) {
            Ok(m) => {
                let note = format!(
                    "a freshly formatted ext4 image, {}, loop-mounted",
                    m.image.display()
                );
                (m.point.join("work"), Some(m), note)
            }
            Err(why) => (fallback, None, format!("not on a fresh ext4 image: {why}")),
        },
    };
    std::fs::create_dir_all(&work).unwrap_or_else(|e| panic!("{}: {e}", work.display()));
    println!("storage: {} ({note})", work.display());
    println!("storage: {}\n", describe(&work));
    Storage { work, _mount: mount }
}

/// The file system, its journal and queue/maildir's scheme there, from a probe file.
fn describe(dir: &Path) -> String {
    let probe = dir.join(".probe");
    let file = match std::fs::File::create(&probe) {
        Ok(f) => f,
        Err(e) => return format!("cannot probe the file system: {e}"),
    };
    let f_type = nix::sys::statfs::fstatfs(&file).map(|s| s.filesystem_type().0 as u64);
    let (scheme, why) = durable::detect(&file);
    let _ = std::fs::remove_file(&probe);
    let kind = match f_type {
        Ok(XFS_MAGIC) => "XFS (journaled)".to_string(),
        Ok(EXT_MAGIC) if scheme == Scheme::OneFlush => "ext4 with a journal".to_string(),
        Ok(EXT_MAGIC) => "ext2/3/4 WITHOUT a journal".to_string(),
        Ok(0x0102_1994) => "tmpfs (nothing is durable)".to_string(),
        Ok(0x9123_683E) => "btrfs".to_string(),
        Ok(other) => format!("file system type {other:#x}"),
        Err(e) => format!("unknown file system ({e})"),
    };
    format!(
        "{kind}; queue/maildir syncs there with {} ({why})",
        scheme.describe()
    )
}

/// Makes the image, formats it and mounts it; records the mount point so that an
/// interrupted run is cleaned up by bench/run or by the next run.
fn mount_image(cache: &Path) -> Result<Mount, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("loop mounts need root".into());
    }
    std::fs::create_dir_all(cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let record = cache.join("storage.mount");
    clean_stale(&record);
    let image = cache.join("storage.img");
    allocate_image(&image).map_err(|e| format!("{}: {e}", image.display()))?;
    let point = std::env::temp_dir().join(format!("qpsmtpd-rs-bench-storage.{}", std::process::id()));
    std::fs::create_dir_all(&point).map_err(|e| format!("{}: {e}", point.display()))?;
    let mount = Mount { point, image, record };
    // Defaults (no -O, no -t): a journal, as on a freshly installed system.
    run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&mount.image))?;
    let device = attach(&mount.image)?;
    run(Command::new("mount").arg(&device).arg(&mount.point))?;
    let _ = std::fs::write(&mount.record, mount.point.to_string_lossy().as_bytes());
    Ok(mount)
}

/// The image with every block written (zeros), unless a previous run left one complete.
fn allocate_image(image: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let ready = image.with_extension("img.ready");
    let complete = std::fs::metadata(image).is_ok_and(|m| m.len() == IMAGE_BYTES);
    if complete && ready.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_file(&ready);
    let mut file = std::fs::File::create(image)?;
    let zeros = vec![0u8; 4 << 20];
    for _ in 0..IMAGE_BYTES / zeros.len() as u64 {
        file.write_all(&zeros)?;
    }
    file.sync_all()?;
    std::fs::write(&ready, b"")
}

/// A loop device for the image, doing direct I/O to it (no second page cache).
fn attach(image: &Path) -> Result<String, String> {
    let out = Command::new("losetup")
        .args(["--direct-io=on", "--find", "--show"])
        .arg(image)
        .output()
        .map_err(|e| format!("losetup: {e}"))?;
    let device = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || device.is_empty() {
        return Err(format!(
            "losetup failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(device)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let name = cmd.get_program().to_string_lossy().into_owned();
    match cmd.output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "{name} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

/// A previous run that was killed before it could unmount.
fn clean_stale(record: &Path) {
    if let Ok(point) = std::fs::read_to_string(record) {
        unmount(Path::new(point.trim()));
        let _ = std::fs::remove_file(record);
    }
}

fn unmount(point: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let shown = point.to_string_lossy();
    if mounts.lines().any(|l| l.split(' ').nth(1) == Some(&shown)) {
        let done = Command::new("umount").arg(point).status();
        if !done.is_ok_and(|s| s.success()) {
            // Still busy (a server not yet gone): detached now, freed when idle.
            let _ = Command::new("umount").arg("-l").arg(point).status();
        }
    }
    let _ = std::fs::remove_dir(point);
}

impl Drop for Mount {
    fn drop(&mut self) {
        unmount(&self.point);
        // The loop device we attached; the image stays for the next run.
        if let Ok(out) = Command::new("losetup").arg("-j").arg(&self.image).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((device, _)) = line.split_once(':') {
                    let _ = Command::new("losetup").arg("-d").arg(device).status();
                }
            }
        }
        let _ = std::fs::remove_file(&self.record);
    }
}
