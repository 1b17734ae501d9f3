//! The plugin contract: qpsmtpd's hook names and return codes, as a Rust trait.
//!
//! A plugin is loaded from a line of `config/plugins` (`name arg1 arg2 ...`), declares the
//! hooks it wants, and answers each call with an [`Outcome`]: a [`Verdict`] plus message
//! lines. The chain calls plugins in config order and stops at the first verdict that is
//! not `DECLINED`, as qpsmtpd's `run_hooks` does. The session turns the final outcome into
//! a reply with qpsmtpd's per-hook rules (plugins/README.md, "Hooks"). Built-in Rust
//! plugins and external programs implement the same trait, so the chain never knows which
//! kind it is calling.
//!
//! ```text
//! hook.rs     the hook names (one table)        verdict.rs  Verdict and Outcome
//! offers.rs   EHLO keywords, TLS, AUTH mechanisms a plugin brings
//! args.rs     what a hook is called with        context.rs  what a hook may use and change
//! spec.rs     a config/plugins line             reject.rs   the reject/reject_type policy
//! error.rs    what a plugin refuses at load     services/   DNS, state store, clock
//! chain.rs    the ordered chain                 registry.rs the built-in plugins by name
//! external/   plugins that are programs
//! ```

pub mod args;
pub mod chain;
pub mod context;
pub mod error;
pub mod external;
pub mod hook;
pub mod offers;
pub mod registry;
pub mod reject;
pub mod services;
pub mod spec;
pub mod verdict;

#[cfg(test)]
pub(crate) mod testing;

pub use args::{Args, key_values};
pub use chain::{Chain, LoadError};
pub use context::{Context, Env, immune, truthy};
pub use error::{BuildError, PluginError};
pub use hook::Hook;
pub use offers::{AuthMechanism, Offers};
pub use reject::{Reject, reject_type};
pub use services::Services;
pub use spec::{LogAdjust, PluginSpec};
pub use verdict::{Outcome, Verdict};

/// One instance of a plugin, as the chain holds it.
pub trait Plugin {
    /// The hooks this instance registers, in registration order.
    fn hooks(&self) -> Vec<Hook>;

    /// Runs one hook. Only hooks from [`Plugin::hooks`] are ever called.
    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome;

    /// What the plugin offers the session besides its hooks: EHLO keywords, the files
    /// that make STARTTLS possible, AUTH mechanisms (see [`Offers`]). Asked once, when
    /// the plugin is loaded.
    fn offers(&self) -> Offers {
        Offers::default()
    }
}
