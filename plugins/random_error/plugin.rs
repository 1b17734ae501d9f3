//! random_error: fails a configurable share of sessions with temporary errors, to test
//! that clients retry. See README.md beside this file.

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// The plugin instance.
pub struct RandomError {
    /// Chance that one hook fails, so that six hooks together fail `percent` of the time.
    per_hook: f64,
    state: Cell<u64>,
}

/// `random_error [percent]` (default 1).
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let percent = match spec.args.as_slice() {
        [] => 1.0,
        [p] => p
            .parse::<f64>()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p))
            .ok_or_else(|| format!("the percentage must be a number from 0 to 100, not {p:?}"))?,
        more => return Err(PluginError::Args(format!("Invalid args: '{}'", more.join(" ")))),
    };
    // (1 - x)^6 = 1 - p: six chances to fail per message (qpsmtpd's formula).
    let per_hook = 1.0 - sixth_root(1.0 - percent / 100.0);
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        ^ ((std::process::id() as u64) << 32)
        | 1;
    Ok(Box::new(RandomError {
        per_hook,
        state: Cell::new(seed),
    }))
}

/// The sixth root of y in [0, 1] by Newton's method: `f64::powf` would make the binary
/// load libm at every start for this one call.
fn sixth_root(y: f64) -> f64 {
    if y <= 0.0 {
        return 0.0;
    }
    // Newton's method from 1.0; it stops when a step no longer moves the value (at once
    // for 0%, the usual setting), else after 60 steps.
    let mut r: f64 = 1.0;
    for _ in 0..60 {
        let r5 = r * r * r * r * r;
        let next = r - (r5 * r - y) / (6.0 * r5);
        if next == r {
            break;
        }
        r = next;
    }
    r
}

impl RandomError {
    /// xorshift64*: uniform in [0, 1). Not for cryptography; plenty for test failures.
    fn next(&self) -> f64 {
        let mut x = self.state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state.set(x);
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Plugin for RandomError {
    fn hooks(&self) -> Vec<Hook> {
        vec![
            Hook::Connect,
            Hook::Helo,
            Hook::Ehlo,
            Hook::Mail,
            Hook::Rcpt,
            Hook::Data,
            Hook::DataPost,
        ]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        if self.next() >= self.per_hook {
            return Outcome::declined();
        }
        cx.log(Level::Info, "random failure");
        let verdict = if self.next() < 0.4 {
            Verdict::DenySoftDisconnect
        } else {
            Verdict::DenySoft
        };
        Outcome::with(verdict, "random failure")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixth_root_matches() {
        for y in [0.0, 0.000001, 0.01, 0.5, 0.99, 1.0] {
            let r = sixth_root(y);
            assert!((r.powi(6) - y).abs() < 1e-12, "{y}: {r}");
        }
    }
}
