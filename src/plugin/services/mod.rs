//! What the session provides to its plugins besides the hook arguments: a DNS resolver,
//! a state store and a clock, reached through [`crate::plugin::Context`] as `cx.dns()`,
//! `cx.store()` and `cx.now()`.
//!
//! One [`Services`] belongs to the chain, so every plugin of a session shares it (one
//! resolver with one cache, one store connection). Each service is made the first time
//! a plugin asks for it: starting a process is the hot path of a one-process-per-
//! connection server, and a session whose plugins never look anything up in the DNS must
//! not build a resolver, read its config or open a socket.

pub mod clock;
pub mod dns;
pub mod store;

use std::cell::OnceCell;
use std::time::SystemTime;

use crate::config::Config;
use crate::log::Logger;

pub use clock::Clock;
pub use dns::Dns;
pub use store::Store;

/// The services of one session, each made on first use.
#[derive(Default)]
pub struct Services {
    dns: OnceCell<Dns>,
    store: OnceCell<Store>,
    clock: OnceCell<Clock>,
}

impl Services {
    /// The session's resolver, made now if no plugin asked for one before.
    pub fn dns(&self, config: &Config, log: &Logger) -> &Dns {
        self.dns.get_or_init(|| Dns::new(config, log))
    }

    /// The state store, opened now if no plugin asked for it before.
    pub fn store(&self, config: &Config, log: &Logger) -> &Store {
        self.store.get_or_init(|| Store::new(config, log))
    }

    /// The current time by the session's clock (see [`Clock::from_config`]).
    pub fn now(&self, config: &Config, log: &Logger) -> SystemTime {
        self.clock.get_or_init(|| Clock::from_config(config, log)).now()
    }

    /// Sets the clock before any plugin asked for the time (a test harness fixing it);
    /// `false` if it was already in use, and then it is left as it is.
    pub fn set_clock(&self, clock: Clock) -> bool {
        self.clock.set(clock).is_ok()
    }

    /// Has a plugin asked for the resolver in this session?
    pub fn dns_started(&self) -> bool {
        self.dns.get().is_some()
    }

    /// Has a plugin asked for the store in this session?
    pub fn store_started(&self) -> bool {
        self.store.get().is_some()
    }
}

#[cfg(test)]
mod tests;
