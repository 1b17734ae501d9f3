//! Read-only lookups in D. J. Bernstein's constant database format (`morercpthosts.cdb`,
//! `morerelayclients.cdb`), the way qpsmtpd's `config($name, 'map')` uses them.
//!
//! Lookups read only the few records they need with positioned reads, so a large cdb
//! costs nothing until a key is asked for. Format: <https://cr.yp.to/cdb/cdb.txt>.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// An open cdb file.
#[derive(Debug)]
pub struct Cdb {
    file: File,
    len: u64,
}

impl Cdb {
    /// Opens a cdb file; `Ok(None)` when it does not exist.
    pub fn open(path: &Path) -> io::Result<Option<Cdb>> {
        match File::open(path) {
            Ok(file) => {
                let len = file.metadata()?.len();
                Ok(Some(Cdb { file, len }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Is `key` present?
    pub fn contains(&self, key: &[u8]) -> io::Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let h = hash(key);
        let (table, slots) = self.pair((h as u64 % 256) * 8)?;
        if slots == 0 {
            return Ok(None);
        }
        let start = (h >> 8) % slots;
        for i in 0..slots {
            let slot = table + ((start + i) % slots) as u64 * 8;
            let (slot_hash, record) = self.pair(slot)?;
            if record == 0 {
                return Ok(None);
            }
            if slot_hash != h as u64 {
                continue;
            }
            let (klen, vlen) = self.pair(record as u64)?;
            if klen as usize != key.len() {
                continue;
            }
            let mut k = vec![0; klen as usize];
            self.read_at(&mut k, record as u64 + 8)?;
            if k == key {
                let mut v = vec![0; vlen as usize];
                self.read_at(&mut v, record as u64 + 8 + klen)?;
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    fn pair(&self, pos: u64) -> io::Result<(u64, u32)> {
        let mut b = [0u8; 8];
        self.read_at(&mut b, pos)?;
        let a = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let c = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        Ok((a as u64, c))
    }

    fn read_at(&self, buf: &mut [u8], pos: u64) -> io::Result<()> {
        if pos + buf.len() as u64 > self.len {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated cdb file"));
        }
        self.file.read_exact_at(buf, pos)
    }
}

/// The cdb hash: h = 5381; h = ((h << 5) + h) ^ c.
fn hash(key: &[u8]) -> u32 {
    key.iter()
        .fold(5381u32, |h, &c| (h << 5).wrapping_add(h) ^ c as u32)
}

/// Writes a cdb file (used by tests and by `--check` users who want to build one).
pub fn write(path: &Path, records: &[(&[u8], &[u8])]) -> io::Result<()> {
    use std::io::Write;
    let mut body = Vec::new();
    let mut tables: Vec<Vec<(u32, u32)>> = vec![Vec::new(); 256];
    for (k, v) in records {
        let pos = 2048 + body.len() as u32;
        body.extend_from_slice(&(k.len() as u32).to_le_bytes());
        body.extend_from_slice(&(v.len() as u32).to_le_bytes());
        body.extend_from_slice(k);
        body.extend_from_slice(v);
        let h = hash(k);
        tables[(h % 256) as usize].push((h, pos));
    }
    let mut header = Vec::with_capacity(2048);
    let mut table_bytes = Vec::new();
    for entries in &tables {
        let slots = entries.len() as u32 * 2;
        let pos = 2048 + body.len() as u32 + table_bytes.len() as u32;
        header.extend_from_slice(&pos.to_le_bytes());
        header.extend_from_slice(&slots.to_le_bytes());
        let mut table = vec![(0u32, 0u32); slots as usize];
        for &(h, p) in entries {
            let mut i = ((h >> 8) % slots) as usize;
            while table[i].1 != 0 {
                i = (i + 1) % slots as usize;
            }
            table[i] = (h, p);
        }
        for (h, p) in table {
            table_bytes.extend_from_slice(&h.to_le_bytes());
            table_bytes.extend_from_slice(&p.to_le_bytes());
        }
    }
    let mut f = File::create(path)?;
    f.write_all(&header)?;
    f.write_all(&body)?;
    f.write_all(&table_bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.cdb");
        let keys: Vec<String> = (0..500).map(|i| format!("host{i}.example")).collect();
        let records: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), &b"1"[..])).collect();
        write(&path, &records).unwrap();
        let cdb = Cdb::open(&path).unwrap().unwrap();
        for k in &keys {
            assert_eq!(cdb.get(k.as_bytes()).unwrap().as_deref(), Some(&b"1"[..]));
        }
        assert!(!cdb.contains(b"nothere.example").unwrap());
        assert!(Cdb::open(&dir.path().join("missing.cdb")).unwrap().is_none());
    }

    #[test]
    fn truncated_file_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.cdb");
        std::fs::write(&path, b"short").unwrap();
        let cdb = Cdb::open(&path).unwrap().unwrap();
        assert!(cdb.get(b"x").is_err());
    }
}
