//! UCSPI-TLS (`sslserver` from ucspi-ssl): the descriptors it passes, or the facts of the
//! TLS it already did.

use std::os::fd::{AsFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{FcntlArg, FdFlag, fcntl};
use qpsmtpd_rs::connection::TlsInfo;
use qpsmtpd_rs::tls::ucspi::{UcspiFds, info_from_env};

/// `SSLCTLFD`, `SSLREADFD` and `SSLWRITEFD`, when all three name open descriptors
/// above 2 (the same number may be given more than once).
pub fn take_fds(env: &dyn Fn(&str) -> Option<String>) -> Option<UcspiFds> {
    let number = |name: &str| env(name)?.trim().parse::<RawFd>().ok().filter(|n| *n > 2);
    let (ctl, read, write) = (number("SSLCTLFD")?, number("SSLREADFD")?, number("SSLWRITEFD")?);
    let mut owned: Vec<(RawFd, OwnedFd)> = Vec::new();
    let mut get = |n: RawFd| -> Option<OwnedFd> {
        if let Some((_, fd)) = owned.iter().find(|(m, _)| *m == n) {
            return fd.try_clone().ok();
        }
        let fd = adopt(n)?;
        // Children (auth_checkpassword) must not inherit the connection.
        let _ = fcntl(fd.as_fd(), FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
        let copy = fd.try_clone().ok()?;
        owned.push((n, fd));
        Some(copy)
    };
    Some(UcspiFds {
        ctl: get(ctl)?,
        read: get(read)?,
        write: get(write)?,
    })
}

/// Takes ownership of a descriptor the super-server passed, if it is open.
#[allow(unsafe_code)]
fn adopt(n: RawFd) -> Option<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with EBADF when `n`
    // is not open, and then nothing else happens.
    if unsafe { nix::libc::fcntl(n, nix::libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: `n` is open and was handed to this process by the super-server for this
    // connection (the UCSPI-TLS contract); nothing else in the process refers to it,
    // so it is owned here exactly once (repeats are cloned by the caller).
    Some(unsafe { OwnedFd::from_raw_fd(n) })
}

/// `sslserver` without `-n` did the handshake before starting us and says so in
/// `SSL_PROTOCOL` (and `SSL_CIPHER`).
pub fn done_by_super_server(env: &dyn Fn(&str) -> Option<String>) -> Option<TlsInfo> {
    if env("SSLCTLFD").is_some() {
        return None;
    }
    let protocol = env("SSL_PROTOCOL").filter(|p| !p.is_empty())?;
    let cipher = env("SSL_CIPHER").unwrap_or_default();
    let answer = format!("SSL_PROTOCOL={protocol}\0SSL_CIPHER={cipher}\0\0");
    Some(info_from_env(answer.as_bytes()))
}
