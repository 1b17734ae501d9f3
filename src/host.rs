//! Facts about the machine we run on, for the core and for plugins alike.

/// The host name from the kernel (qpsmtpd's default for `me`), or `localhost` when it has
/// none.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}
