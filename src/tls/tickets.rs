//! TLS session tickets whose keys are shared between processes through a file.
//!
//! Each connection is a new process, so a ticket key made in memory would die with the
//! process that issued the ticket. Instead every process reads the keys from one file
//! (`tls_ticket_keys`, by default in `/var/lib/qpsmtpd-rs`), which must belong to the
//! service user (or to root, when the process opened it as root before switching) and be
//! readable by nobody else. The file holds the current key and the one before it, newest
//! first, one per line:
//!
//! ```text
//! <created, Unix seconds> <key name, 16 bytes hex> <AES-256-GCM key, 32 bytes hex>
//! ```
//!
//! The first process that finds the current key older than the rotation period makes a
//! new one and rewrites the file (under a lock file, via a temporary file and a rename), so
//! the key changes every period and tickets stay usable for at least one period and at
//! most two. Keys older than two periods are never used. rustls asks for exactly this:
//! ticket lifetime implemented by key rolling and erasure. A process that cannot rotate
//! (the file and its directory are root's) keeps using keys younger than two periods and
//! says so; once there are none, resumption is off.
//!
//! The directory is the service user's, so whatever that user leaves at the file's path
//! is distrusted: the file and its lock are opened without following a symlink and without
//! blocking, and must be regular files (a FIFO would hang the process, as root before the
//! greeting when started as root; a symlink would let the service user point a process
//! started as root at a file only root may read).
//!
//! Ticket layout: key name (16) ‖ nonce (12) ‖ AES-256-GCM(plain, aad = key name).

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;

use super::TlsError;

const NAME_LEN: usize = 16;
const KEY_LEN: usize = 32;

/// One ticket key.
struct Key {
    created: u64,
    name: [u8; NAME_LEN],
    secret: [u8; KEY_LEN],
}

impl Key {
    fn aead(&self) -> Option<LessSafeKey> {
        UnboundKey::new(&AES_256_GCM, &self.secret)
            .ok()
            .map(LessSafeKey::new)
    }

    fn line(&self) -> String {
        format!("{} {} {}\n", self.created, hex(&self.name), hex(&self.secret))
    }
}

/// The keys a process encrypts and decrypts tickets with.
pub struct TicketKeys {
    /// Newest first; the first one encrypts.
    keys: Vec<([u8; NAME_LEN], LessSafeKey)>,
    lifetime: u32,
    rng: SystemRandom,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TicketKeys")
            .field("keys", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl TicketKeys {
    /// Reads the key file (`opened`: opened as root before the switch; else by its path),
    /// replacing its current key first when it is older than `rotate` (or the file does
    /// not exist yet). The note says why keys due for rotation are still in use.
    pub fn load(
        path: &Path,
        rotate: Duration,
        opened: Option<File>,
    ) -> Result<(TicketKeys, Option<String>), TlsError> {
        let now = unix_now();
        let period = rotate.as_secs().max(60);
        let mut keys = match opened {
            Some(file) => keys_from(file, path, now, period)?,
            None => read_keys(path, now, period)?,
        };
        let mut note = None;
        if keys.first().is_none_or(|k| k.created + period <= now) {
            match rotate_keys(path, now, period) {
                Ok(rotated) => keys = rotated,
                Err(e) if !keys.is_empty() => {
                    note = Some(format!(
                        "cannot rotate ({e}); using keys younger than two periods"
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        let rng = SystemRandom::new();
        let keys = keys
            .iter()
            .filter_map(|k| Some((k.name, k.aead()?)))
            .collect::<Vec<_>>();
        if keys.is_empty() {
            return Err(TlsError::tickets(path, "no usable key"));
        }
        let keys = TicketKeys {
            keys,
            lifetime: u32::try_from(period).unwrap_or(u32::MAX),
            rng,
        };
        Ok((keys, note))
    }
}

impl TicketKeys {
    /// For `--check`: can the file be read, and is it private? Nothing is written.
    pub fn check_file(path: &Path, opened: Option<File>) -> Result<(), TlsError> {
        let file = match opened {
            Some(f) => f,
            None => open_key_file(path).map_err(|e| TlsError::tickets(path, e))?,
        };
        keys_from(file, path, unix_now(), u64::MAX / 4).map(|_| ())
    }
}

impl ProducesTickets for TicketKeys {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let (name, key) = self.keys.first()?;
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut sealed = plain.to_vec();
        key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(name), &mut sealed)
            .ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + sealed.len());
        ticket.extend_from_slice(name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(&sealed);
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        let name = ticket.get(..NAME_LEN)?;
        let nonce = ticket.get(NAME_LEN..NAME_LEN + NONCE_LEN)?;
        let (_, key) = self.keys.iter().find(|(n, _)| n.as_slice() == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = ticket.get(NAME_LEN + NONCE_LEN..)?.to_vec();
        let plain = key.open_in_place(nonce, Aad::from(name), &mut sealed).ok()?;
        Some(plain.to_vec())
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Opens the key file for reading: never through a symlink, never blocking, and only a
/// regular file (see the module docs). Also used as root, before the switch.
pub fn open_key_file(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(distrustful_flags())
        .open(path)
        .map_err(symlink_error)?;
    regular(file)
}

/// `O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`: a symlink fails with ELOOP, a FIFO or device opens
/// without waiting (and is then refused by [`regular`]).
fn distrustful_flags() -> i32 {
    use nix::fcntl::OFlag;
    (OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY).bits()
}

/// ELOOP from `O_NOFOLLOW`, said plainly.
fn symlink_error(e: std::io::Error) -> std::io::Error {
    if e.raw_os_error() == Some(nix::errno::Errno::ELOOP as i32) {
        return std::io::Error::other("is a symbolic link; it must be a regular file");
    }
    e
}

/// The file if it is a regular file.
fn regular(file: File) -> std::io::Result<File> {
    if file.metadata()?.file_type().is_file() {
        Ok(file)
    } else {
        Err(std::io::Error::other("not a regular file"))
    }
}

/// The keys in the file that are still usable (younger than two periods), newest first.
/// A missing file is no keys; a file others may read is an error.
fn read_keys(path: &Path, now: u64, period: u64) -> Result<Vec<Key>, TlsError> {
    match open_key_file(path) {
        Ok(file) => keys_from(file, path, now, period),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(TlsError::tickets(path, e)),
    }
}

/// [`read_keys`] from an open file.
fn keys_from(mut file: File, path: &Path, now: u64, period: u64) -> Result<Vec<Key>, TlsError> {
    check_private(&file, path)?;
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(|e| TlsError::tickets(path, e))?;
    let mut keys: Vec<Key> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(parse_line)
        // The time first: a damaged one from the far future must not overflow the sum.
        .filter(|k| k.created <= now + 300 && k.created + 2 * period > now)
        .collect();
    keys.sort_by_key(|k| std::cmp::Reverse(k.created));
    Ok(keys)
}

/// The key file must belong to us (or root) and be closed to group and others: anyone who
/// can read it can decrypt recorded TLS 1.2 sessions that received tickets under its keys.
fn check_private(file: &File, path: &Path) -> Result<(), TlsError> {
    let meta = file.metadata().map_err(|e| TlsError::tickets(path, e))?;
    if meta.uid() != nix::unistd::geteuid().as_raw() && meta.uid() != 0 {
        return Err(TlsError::tickets(path, "does not belong to this user"));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        let mode = meta.permissions().mode() & 0o777;
        let problem = format!("may be read by others (mode {mode:o}); it must be 0600");
        return Err(TlsError::tickets(path, problem));
    }
    Ok(())
}

fn parse_line(line: &str) -> Option<Key> {
    let mut words = line.split_whitespace();
    let created = words.next()?.parse().ok()?;
    let name = unhex(words.next()?)?.try_into().ok()?;
    let secret = unhex(words.next()?)?.try_into().ok()?;
    Some(Key {
        created,
        name,
        secret,
    })
}

/// Makes a new current key and rewrites the file with it and the previous key, under an
/// exclusive lock on `<file>.lock` so concurrent processes rotate once.
fn rotate_keys(path: &Path, now: u64, period: u64) -> Result<Vec<Key>, TlsError> {
    let lock_path = PathBuf::from(format!("{}.lock", path.display()));
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(distrustful_flags())
        .open(&lock_path)
        .map_err(symlink_error)
        .and_then(regular)
        .map_err(|e| TlsError::tickets(&lock_path, e))?;
    lock_briefly(&lock).map_err(|e| TlsError::tickets(&lock_path, e))?;
    // Another process may have rotated while we waited for the lock.
    let mut keys = read_keys(path, now, period)?;
    if keys.first().is_some_and(|k| k.created + period > now) {
        return Ok(keys);
    }
    let rng = SystemRandom::new();
    let mut key = Key {
        created: now,
        name: [0; NAME_LEN],
        secret: [0; KEY_LEN],
    };
    rng.fill(&mut key.name)
        .and_then(|()| rng.fill(&mut key.secret))
        .map_err(|_| TlsError::tickets(path, "no random numbers for a new key"))?;
    keys.truncate(1);
    keys.insert(0, key);
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".tls_ticket_keys.")
        .tempfile_in(dir)
        .map_err(|e| TlsError::tickets(dir, e))?;
    let text: String = keys.iter().map(Key::line).collect();
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| TlsError::tickets(tmp.path(), e))?;
    tmp.persist(path).map_err(|e| TlsError::tickets(path, e))?;
    Ok(keys)
}

/// Takes the lock, waiting at most two seconds (a stuck process must not stall the rest).
fn lock_briefly(file: &File) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::from(std::io::ErrorKind::TimedOut));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests;
