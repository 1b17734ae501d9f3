//! A key/value store that outlives the session (reputation, greylisting, rate limits):
//! one process serves one connection, so whatever a plugin must remember across
//! connections lives here.
//!
//! Values are text and expire after the time they were stored for. Keys are shared by all
//! plugins: begin each with the plugin's name (`greylist:192.0.2.1`). The backend (a file
//! database, Redis) comes with the plugins that need it; until then every call answers
//! [`StoreError::NotAvailable`], which a plugin treats as any other failure of the store.

use std::time::Duration;

use crate::config::Config;
use crate::log::Logger;

/// Why the store could not answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No store is configured (or none built in yet).
    NotAvailable,
    /// The store failed (unreachable, full, unreadable): what happened, for the log.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::NotAvailable => f.write_str("no state store is configured"),
            StoreError::Failed(what) => write!(f, "state store failed: {what}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// The session's connection to the state store.
#[derive(Debug)]
pub struct Store {
    _private: (),
}

impl Store {
    /// Made the first time a plugin of the session asks (see [`super::Services`]).
    pub fn new(_config: &Config, _log: &Logger) -> Store {
        Store { _private: () }
    }

    /// The value under `key`, if there is one that has not expired.
    pub fn get(&self, _key: &str) -> Result<Option<String>, StoreError> {
        Err(StoreError::NotAvailable)
    }

    /// Stores `value` under `key` for `ttl`.
    pub fn set(&self, _key: &str, _value: &str, _ttl: Duration) -> Result<(), StoreError> {
        Err(StoreError::NotAvailable)
    }

    /// Adds `delta` to the number under `key` (0 when there is none) and keeps it for
    /// `ttl`; the new number. For counters shared by concurrent sessions.
    pub fn add(&self, _key: &str, _delta: i64, _ttl: Duration) -> Result<i64, StoreError> {
        Err(StoreError::NotAvailable)
    }

    /// Removes `key` (no error when it is not there).
    pub fn remove(&self, _key: &str) -> Result<(), StoreError> {
        Err(StoreError::NotAvailable)
    }
}
