//! Why a config item could not be read.

use std::fmt;
use std::path::PathBuf;

/// Why a config item could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The file exists but reading it failed.
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file was read but its content is invalid.
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line (0 when unknown).
        line: usize,
        /// What is wrong.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Read { path, reason } => {
                write!(f, "cannot read {}: {reason}", path.display())
            }
            ConfigError::Invalid {
                path,
                line: 0,
                reason,
            } => {
                write!(f, "{}: {reason}", path.display())
            }
            ConfigError::Invalid { path, line, reason } => {
                write!(f, "{}, line {line}: {reason}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {}
