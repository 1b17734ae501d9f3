//! earlytalker: refuses a client that starts talking before the greeting (or, with
//! `check-at DATA`, before `354`), the mark of a spam engine that pipelines its whole
//! conversation without listening. Also loaded as `check_earlytalker`. See README.md
//! beside this file.
//!
//! The plugin only judges: the session waits (the driver polls the connection) before
//! the hooks, for as long as [`Offers::greeting_wait`] / [`Offers::data_wait`] say, and
//! tells the hooks what it saw in `Connection::early_input`.

use std::time::Duration;

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{
    Args, Context, Hook, Offers, Outcome, Plugin, PluginError, PluginSpec, Reject, key_values, reject_type,
    truthy,
};

/// qpsmtpd's reply text.
const TEXT: &str = "Connecting host started transmitting before SMTP greeting";
/// The longest wait accepted: clients give up on a greeting after 30 s or sooner
/// (RFC 5321 §4.5.3.2.1 asks them for 5 minutes, not all do).
const MAX_WAIT: Duration = Duration::from_secs(30);

/// The plugin instance.
pub struct Earlytalker {
    wait: Duration,
    at_connect: bool,
    at_data: bool,
    /// Let an early talker through the greeting and refuse its MAIL commands instead.
    defer: bool,
    reject: Reject,
}

/// `earlytalker [wait SECONDS] [reject 0|1|naughty] [reject_type TYPE] [defer-reject 0|1]
/// [check-at CONNECT|DATA]... [action deny|denysoft|log]`
pub fn new(spec: &PluginSpec, _config: &Config) -> Result<Box<dyn Plugin>, PluginError> {
    let mut kv = key_values(&spec.args)?;
    let read = read_args(&kv)?;
    let has = |kv: &[(String, String)], key: &str| kv.iter().any(|(k, _)| k == key);
    // The old `action` argument: `deny...` refuses, `log` only logs; `denysoft` defers
    // (README Differences 87: qpsmtpd refused with 550 there).
    if let Some(action) = &read.action {
        if !has(&kv, "reject") {
            let reject = if action.starts_with("deny") { "1" } else { "0" };
            kv.push(("reject".into(), reject.into()));
        }
        if !has(&kv, "reject_type") {
            let t = if action == "deny" { "perm" } else { "temp" };
            kv.push(("reject_type".into(), t.into()));
        }
    }
    // A deferred refusal defers unless told otherwise, as in qpsmtpd.
    if read.defer && !has(&kv, "reject_type") {
        kv.push(("reject_type".into(), "temp".into()));
    }
    Ok(Box::new(Earlytalker {
        wait: read.wait,
        at_connect: read.at_connect || !read.at_data,
        at_data: read.at_data,
        defer: read.defer,
        reject: Reject::from_args(&kv, true)?,
    }))
}

/// The arguments besides `reject` and `reject_type`, checked.
struct Read {
    wait: Duration,
    at_connect: bool,
    at_data: bool,
    defer: bool,
    action: Option<String>,
}

fn read_args(kv: &[(String, String)]) -> Result<Read, PluginError> {
    let mut read = Read {
        wait: Duration::from_secs(1),
        at_connect: false,
        at_data: false,
        defer: false,
        action: None,
    };
    for (k, v) in kv {
        match k.as_str() {
            "wait" => read.wait = parse_wait(v)?,
            "check-at" => match v.to_ascii_uppercase().as_str() {
                "CONNECT" => read.at_connect = true,
                "DATA" => read.at_data = true,
                _ => {
                    return Err(PluginError::Args(format!(
                        "check-at is CONNECT or DATA, not {v:?}"
                    )));
                }
            },
            "defer-reject" => read.defer = truthy(v),
            "action" => match v.to_ascii_lowercase().as_str() {
                a @ ("deny" | "denysoft" | "log") => read.action = Some(a.to_string()),
                _ => {
                    return Err(PluginError::Args(format!(
                        "action is deny, denysoft or log, not {v:?}"
                    )));
                }
            },
            "reject" => {}
            "reject_type" => {
                reject_type(v).ok_or_else(|| PluginError::Args(format!("unknown reject_type {v:?}")))?;
            }
            other => {
                return Err(PluginError::Args(format!(
                    "unknown argument {other:?} (known: wait, reject, reject_type, defer-reject, check-at, action)"
                )));
            }
        }
    }
    Ok(read)
}

/// Seconds, fractions allowed (qpsmtpd's `select` takes them), more than 0 and at most
/// [`MAX_WAIT`].
fn parse_wait(v: &str) -> Result<Duration, PluginError> {
    let bad = || PluginError::Args(format!("wait is a number of seconds up to 30, not {v:?}"));
    let secs: f64 = v.parse().map_err(|_| bad())?;
    if !(secs > 0.0 && secs <= MAX_WAIT.as_secs_f64()) {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

impl Plugin for Earlytalker {
    fn hooks(&self) -> Vec<Hook> {
        let mut hooks = Vec::new();
        if self.at_connect {
            hooks.push(Hook::Connect);
        }
        if self.at_data {
            hooks.push(Hook::Data);
        }
        if self.defer {
            hooks.push(Hook::Mail);
        }
        hooks
    }

    fn offers(&self) -> Offers {
        Offers {
            greeting_wait: self.at_connect.then_some(self.wait),
            data_wait: self.at_data.then_some(self.wait),
            ..Offers::default()
        }
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, _args: Args<'_>) -> Outcome {
        if hook == Hook::Mail {
            if !cx.conn.notes.get("earlytalker").is_some_and(|v| truthy(v)) {
                return Outcome::declined();
            }
            return self.reject.outcome(cx, TEXT);
        }
        if cx.is_immune() {
            cx.log(Level::Info, "skip, relay client or whitelisted");
            return Outcome::declined();
        }
        match cx.conn.early_input {
            None => {
                cx.log(Level::Debug, "skip, no wait before this hook");
                Outcome::declined()
            }
            Some(false) => {
                cx.log(Level::Info, "pass, not spontaneous");
                Outcome::declined()
            }
            Some(true) => {
                cx.conn.notes.insert("earlytalker".into(), "1".into());
                if self.defer && hook == Hook::Connect {
                    cx.log(
                        Level::Info,
                        "fail, deferred to MAIL: remote started talking before we said hello",
                    );
                    return Outcome::declined();
                }
                self.reject.outcome(cx, TEXT)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::Connection;
    use crate::plugin::{Verdict, testing};
    use crate::transaction::Transaction;

    fn config() -> (tempfile::TempDir, Config) {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::open(dir.path(), None).unwrap();
        (dir, config)
    }

    fn build(args: &[&str]) -> Result<Box<dyn Plugin>, PluginError> {
        let (_dir, config) = config();
        new(&testing::spec("earlytalker", args), &config)
    }

    /// The hook's outcome and the connection afterwards.
    fn run(args: &[&str], hook: Hook, early: Option<bool>, notes: &[(&str, &str)]) -> (Outcome, Connection) {
        let (_dir, config) = config();
        let plugin = new(&testing::spec("earlytalker", args), &config).unwrap();
        let mut chain = crate::plugin::Chain::new();
        chain.push(testing::spec("earlytalker", args), plugin);
        let mut conn = Connection::new("1", "192.0.2.30");
        conn.early_input = early;
        for (k, v) in notes {
            conn.notes.insert(k.to_string(), v.to_string());
        }
        let ran = testing::run_on(
            &chain,
            &config,
            hook,
            Args::None,
            conn,
            Transaction::new("1.0".into()),
        );
        (ran.out, ran.conn)
    }

    fn refused(v: Verdict) -> Outcome {
        Outcome::with(v, TEXT)
    }

    #[test]
    fn an_early_talker_is_refused_as_the_arguments_say() {
        let connect = |args: &[&str]| run(args, Hook::Connect, Some(true), &[]).0;
        assert_eq!(connect(&[]), refused(Verdict::Deny));
        assert_eq!(connect(&["reject_type", "temp"]), refused(Verdict::DenySoft));
        assert_eq!(connect(&["action", "deny"]), refused(Verdict::Deny));
        assert_eq!(connect(&["action", "denysoft"]), refused(Verdict::DenySoft));
        assert_eq!(connect(&["action", "log"]), Outcome::declined());
        assert_eq!(connect(&["reject", "0"]), Outcome::declined());
        assert_eq!(
            connect(&["action", "log", "reject", "1"]),
            refused(Verdict::DenySoft)
        );
        let (out, conn) = run(&["action", "log"], Hook::Connect, Some(true), &[]);
        assert_eq!(out, Outcome::declined());
        assert_eq!(conn.notes.get("earlytalker").map(String::as_str), Some("1"));
    }

    #[test]
    fn a_polite_or_immune_client_or_no_wait_passes() {
        assert_eq!(run(&[], Hook::Connect, Some(false), &[]).0, Outcome::declined());
        assert_eq!(run(&[], Hook::Connect, None, &[]).0, Outcome::declined());
        let (out, conn) = run(&[], Hook::Connect, Some(true), &[("whitelisthost", "1")]);
        assert_eq!(out, Outcome::declined());
        assert!(!conn.notes.contains_key("earlytalker"));
    }

    #[test]
    fn defer_reject_lets_the_greeting_through_and_refuses_mail() {
        let args = ["defer-reject", "1"];
        let (out, conn) = run(&args, Hook::Connect, Some(true), &[]);
        assert_eq!(out, Outcome::declined());
        assert_eq!(conn.notes.get("earlytalker").map(String::as_str), Some("1"));
        assert_eq!(
            run(&args, Hook::Mail, None, &[("earlytalker", "1")]).0,
            refused(Verdict::DenySoft)
        );
        assert_eq!(run(&args, Hook::Mail, None, &[]).0, Outcome::declined());
        let perm = ["defer-reject", "1", "reject_type", "perm"];
        assert_eq!(
            run(&perm, Hook::Mail, None, &[("earlytalker", "1")]).0,
            refused(Verdict::Deny)
        );
    }

    #[test]
    fn the_waits_and_hooks_follow_check_at() {
        let p = build(&[]).unwrap();
        assert_eq!(p.hooks(), vec![Hook::Connect]);
        assert_eq!(p.offers().greeting_wait, Some(Duration::from_secs(1)));
        assert_eq!(p.offers().data_wait, None);
        let p = build(&["check-at", "data", "wait", "0.25", "defer-reject", "1"]).unwrap();
        assert_eq!(p.hooks(), vec![Hook::Data, Hook::Mail]);
        assert_eq!(p.offers().greeting_wait, None);
        assert_eq!(p.offers().data_wait, Some(Duration::from_millis(250)));
        let p = build(&["check-at", "CONNECT", "check-at", "DATA"]).unwrap();
        assert_eq!(p.hooks(), vec![Hook::Connect, Hook::Data]);
        assert_eq!(
            run(&["check-at", "data"], Hook::Data, Some(true), &[]).0,
            refused(Verdict::Deny)
        );
    }

    #[test]
    fn bad_arguments_are_a_start_up_error() {
        for args in [
            &["defer-reject"][..],
            &["wait", "0"],
            &["wait", "31"],
            &["wait", "x"],
            &["wait", "NaN"],
            &["check-at", "rcpt"],
            &["action", "drop"],
            &["reject_type", "bogus"],
            &["colour", "blue"],
        ] {
            assert!(build(args).is_err(), "{args:?}");
        }
    }
}
