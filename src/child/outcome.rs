//! What a run of a child ends in: an [`Exit`] and its [`Finished`] outputs, or a
//! [`ChildError`].

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

/// How a program ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// Why a run has no exit status.
#[derive(Debug)]
pub enum ChildError {
    /// The program could not be started.
    Spawn(io::Error),
    /// The deadline passed; the process group was killed and reaped.
    TimedOut,
    /// A termination signal arrived; the process group was killed and reaped.
    Interrupted,
    /// Reading what we feed it or talking to the pipes failed.
    Io(io::Error),
}

/// What a finished run produced.
#[derive(Debug)]
pub struct Finished {
    /// The child's process id.
    pub pid: u32,
    /// How it ended.
    pub exit: Exit,
    /// Did it read everything of every [`Fd::Feed`]?
    pub input_complete: bool,
    pub(super) outputs: Vec<(i32, Vec<u8>)>,
}

impl Finished {
    /// What the child wrote to descriptor `n` (kept up to its [`Fd::Read`] limit).
    pub fn output(&self, n: i32) -> &[u8] {
        self.outputs
            .iter()
            .find(|(m, _)| *m == n)
            .map_or(&[][..], |(_, b)| b.as_slice())
    }
}

impl Exit {
    /// Exit status 0?
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }

    /// `exited with status 3`, `killed by signal 9`.
    pub fn describe(self) -> String {
        match self {
            Exit::Code(code) => format!("exited with status {code}"),
            Exit::Signal(sig) => format!("killed by signal {sig}"),
        }
    }
}

impl std::fmt::Display for ChildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChildError::Spawn(e) => write!(f, "cannot start: {e}"),
            ChildError::TimedOut => write!(f, "timed out; killed"),
            ChildError::Interrupted => write!(f, "interrupted by a termination signal; killed"),
            ChildError::Io(e) => write!(f, "{e}"),
        }
    }
}

pub(super) fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Signal(0),
    }
}
