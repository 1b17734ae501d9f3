//! The one call the library makes outside safe Rust: sync_file_range(2), which neither
//! nix nor rustix wraps. It writes a file's dirty pages and waits for them, which also
//! allocates their blocks, without a journal commit or a disk cache flush.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Starts writeback of the whole file and waits until every page is on the device
/// (WAIT_BEFORE, WRITE, WAIT_AFTER: the combination the man page calls a "write-for-data-
/// integrity" of the pages, minus the metadata and the cache flush).
pub fn write_and_wait(file: &File) -> io::Result<()> {
    let flags =
        libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WRITE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    // SAFETY: sync_file_range takes a descriptor and three integers and reads or writes
    // no memory of ours. `file` is borrowed for the whole call, so the descriptor is open
    // and is the file we wrote, not a number another thread closed and reused.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, flags) };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
