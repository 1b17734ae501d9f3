//! Running one plugin's hook as the session would, for unit tests beside a plugin's code.

use super::{Args, Chain, Env, Hook, Outcome, Plugin, PluginSpec};
use crate::config::Config;
use crate::connection::Connection;
use crate::log::Logger;
use crate::reply::Reply;
use crate::transaction::Transaction;

/// A `config/plugins` line for `name` with these arguments.
pub fn spec(name: &str, args: &[&str]) -> PluginSpec {
    PluginSpec {
        name: name.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        file: std::rc::Rc::from(std::path::Path::new("plugins")),
        line: 1,
        log_adjust: None,
    }
}

/// What one hook call answered, which replies the plugin sent itself, and the connection
/// as the call left it (its notes).
pub struct Ran {
    /// The chain's answer.
    pub out: Outcome,
    /// Replies sent with `cx.respond`.
    pub replies: Vec<Reply>,
    /// The connection after the call.
    pub conn: Connection,
    /// The transaction after the call.
    pub txn: Transaction,
}

/// Runs `hook` of `plugin` (alone in a chain) for a client at 192.0.2.1, our name
/// `mx.example`.
pub fn run(plugin: Box<dyn Plugin>, config: &Config, hook: Hook, args: Args<'_>) -> Ran {
    let mut chain = Chain::new();
    chain.push(spec("test", &[]), plugin);
    run_chain(&chain, config, hook, args)
}

/// Runs `hook` through a whole chain, as [`run`] does for one plugin.
pub fn run_chain(chain: &Chain, config: &Config, hook: Hook, args: Args<'_>) -> Ran {
    run_on(
        chain,
        config,
        hook,
        args,
        Connection::new("1", "192.0.2.1"),
        Transaction::new("1.0".into()),
    )
}

/// Runs `hook` through a chain on a given connection and transaction (another client
/// address, notes set by an earlier hook, recipients).
pub fn run_on(
    chain: &Chain,
    config: &Config,
    hook: Hook,
    args: Args<'_>,
    mut conn: Connection,
    mut txn: Transaction,
) -> Ran {
    let log = Logger::silent("1");
    let env = Env {
        config,
        log: &log,
        me: "mx.example",
    };
    let mut replies = Vec::new();
    let out = chain.run(hook, &mut conn, &mut txn, env, &mut replies, args);
    Ran {
        out,
        replies,
        conn,
        txn,
    }
}
