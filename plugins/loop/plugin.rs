//! loop: refuses a message that has been through too many hops (its `Received` and
//! `Delivered-To` fields counted, as qmail-smtpd does). Also loaded as `check_loop`. See
//! README.md beside this file.

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

/// qmail-smtpd's and qpsmtpd's limit.
const DEFAULT_MAX_HOPS: usize = 100;
/// The largest limit accepted: far beyond any real path, and below `max_header_size`'s
/// reach of fields.
const MAX_MAX_HOPS: usize = 100_000;

/// The plugin instance.
pub struct Loop {
    max_hops: usize,
}

/// `loop [MAX_HOPS]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let max_hops = match spec.args.as_slice() {
        [] => DEFAULT_MAX_HOPS,
        [n] => match n.parse::<usize>() {
            Ok(n) if (1..=MAX_MAX_HOPS).contains(&n) => n,
            _ => {
                return Err(PluginError::Args(format!(
                    "the maximum number of hops must be a number from 1 to {MAX_MAX_HOPS}, not {n:?}"
                )));
            }
        },
        more => {
            return Err(PluginError::Args(format!(
                "takes one argument, the maximum number of hops; got {:?}",
                more.join(" ")
            )));
        }
    };
    Ok(Box::new(Loop { max_hops }))
}

impl Plugin for Loop {
    fn hooks(&self) -> Vec<Hook> {
        vec![Hook::DataPost]
    }

    fn run(&self, _hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        // Our own Received field is already in the header at data_post, as in qpsmtpd.
        let hops = cx.txn.header.count("Received") + cx.txn.header.count("Delivered-To");
        if hops >= self.max_hops {
            cx.log(
                Level::Info,
                format_args!("fail, {hops} hops (limit {})", self.max_hops),
            );
            return Outcome::with(Verdict::Deny, "Too many hops (#5.4.6)");
        }
        cx.log(Level::Debug, format_args!("pass, {hops} hops"));
        Outcome::declined()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::testing;
    use crate::transaction::Transaction;

    fn run(args: &[&str], fields: &[(&str, &str)]) -> Outcome {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        let plugin = new(&testing::spec("loop", args), &config).unwrap();
        let mut chain = crate::plugin::Chain::new();
        chain.push(testing::spec("loop", args), plugin);
        let mut txn = Transaction::new("1.0".into());
        for (name, value) in fields {
            txn.header.add(name, value, None);
        }
        testing::run_on(
            &chain,
            &config,
            Hook::DataPost,
            Args::None,
            crate::connection::Connection::new("1", "192.0.2.1"),
            txn,
        )
        .out
    }

    #[test]
    fn hops_at_the_limit_are_refused() {
        let refused = Outcome::with(Verdict::Deny, "Too many hops (#5.4.6)");
        let two = [("Received", "from a"), ("received", "from b")];
        assert_eq!(run(&["3"], &two), Outcome::declined());
        let three = [
            ("Received", "from a"),
            ("Delivered-To", "x@example.org"),
            ("Received", "b"),
        ];
        assert_eq!(run(&["3"], &three), refused);
        assert_eq!(run(&[], &three), Outcome::declined());
        assert_eq!(run(&["1"], &[("Received", "us")]), refused);
        assert_eq!(run(&["1"], &[("Subject", "none")]), Outcome::declined());
    }

    #[test]
    fn a_bad_limit_is_a_start_up_error() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        for args in [&["x"][..], &["0"], &["-1"], &["3", "4"], &["1000000"]] {
            assert!(new(&testing::spec("loop", args), &config).is_err(), "{args:?}");
        }
        assert!(new(&testing::spec("loop", &["100000"]), &config).is_ok());
    }
}
