//! Signals: SIGPIPE caught before anything is written, defaults restored, SIGTERM, SIGINT
//! and SIGHUP turned into a clean 421, and a watchdog that ends the process.

use std::sync::atomic::Ordering;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use qpsmtpd_rs::io::TERMINATE;

/// How long a session may take to end after a termination signal before SIGALRM
/// (default action: the process ends) cuts it short. Every wait we do ends at once on
/// the signal; this covers the ones we cannot interrupt (a name lookup, a plugin's
/// own I/O), so that a supervisor's SIGTERM always ends the process.
const WATCHDOG_SECS: u32 = 10;

extern "C" fn on_terminate(_: nix::libc::c_int) {
    // The first signal arms the watchdog; later ones do not push it back.
    if !TERMINATE.swap(true, Ordering::SeqCst) {
        // alarm(2) is async-signal-safe.
        let _ = nix::unistd::alarm::set(WATCHDOG_SECS);
    }
}

/// Catching, not ignoring: a write to a gone client or past the `fsize` limit fails
/// with EPIPE or EFBIG as it would with the signal ignored, and since a caught signal
/// is reset to its default action by execve, every program we start gets the default
/// (an ignored one would stay ignored in it; plugins/EXTERNAL.md promises defaults).
extern "C" fn carry_on(_: nix::libc::c_int) {}

/// SIGPIPE is caught before anything is written (std ignores it before a normal
/// `main`; see `main`).
#[cfg_attr(test, allow(dead_code))]
#[allow(unsafe_code)]
pub fn catch_sigpipe() {
    let catch = SigAction::new(
        SigHandler::Handler(carry_on),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing at all, which is async-signal-safe.
    let _ = unsafe { sigaction(Signal::SIGPIPE, &catch) };
}

/// Signals a super-server (or a shell starting us in the background) left ignored are
/// set back to their defaults, so that children do not inherit them either (an
/// ignored SIGCHLD would even make the kernel reap them before we can). SIGTERM,
/// SIGINT and SIGHUP then only set a flag: the blocked `poll` (or a next hop's read)
/// returns EINTR (no SA_RESTART), the session ends with `421`, removing any spool
/// file, and the watchdog makes sure the process ends.
#[allow(unsafe_code)]
pub fn install() {
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    for sig in Signal::iterator() {
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP | Signal::SIGPIPE) {
            continue;
        }
        // SAFETY: SIG_DFL installs no handler code at all.
        let _ = unsafe { sigaction(sig, &default) };
    }
    let action = SigAction::new(
        SigHandler::Handler(on_terminate),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        // SAFETY: the handler only swaps an AtomicBool and calls alarm(2), both
        // async-signal-safe, and it replaces the default action for a signal no other
        // code handles.
        let _ = unsafe { sigaction(sig, &action) };
    }
    // With `fsize` in the config file rlimits, a write past the limit fails with EFBIG
    // (the queue plugin answers 4xx and removes its file) instead of killing us.
    let catch = SigAction::new(
        SigHandler::Handler(carry_on),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing at all.
    let _ = unsafe { sigaction(Signal::SIGXFSZ, &catch) };
}
