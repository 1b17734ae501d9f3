//! The session's clock: the system's, or a fixed time so that transcripts and other tests
//! that show a time are repeatable.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::log::{Level, Logger};

/// The config item that fixes the clock (seconds since 1970). For tests only: a server
/// whose clock stands still would, for example, never let a rate limit expire.
pub const FIXED_TIME_ITEM: &str = "test_clock";

/// Where the time comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    System,
    /// Always this time.
    Fixed(SystemTime),
}

impl Clock {
    /// The time now.
    pub fn now(self) -> SystemTime {
        match self {
            Clock::System => SystemTime::now(),
            Clock::Fixed(t) => t,
        }
    }

    /// A fixed clock when the config item [`FIXED_TIME_ITEM`] holds a number of seconds
    /// since 1970, else the system clock. An unreadable or invalid item is logged and
    /// the system clock used: a test knob must not stop mail.
    pub fn from_config(config: &Config, log: &Logger) -> Clock {
        let first = match config.lines(FIXED_TIME_ITEM) {
            Ok(lines) => lines.first().map(str::to_string),
            Err(e) => {
                log.log(Level::Error, format_args!("{e}; using the system clock"));
                None
            }
        };
        let Some(text) = first else {
            return Clock::System;
        };
        match text.trim().parse::<u64>() {
            Ok(secs) if secs < (1 << 40) => Clock::Fixed(UNIX_EPOCH + Duration::from_secs(secs)),
            _ => {
                log.log(
                    Level::Error,
                    format_args!(
                        "{FIXED_TIME_ITEM} must be seconds since 1970, not {text:?}; using the system clock"
                    ),
                );
                Clock::System
            }
        }
    }
}
