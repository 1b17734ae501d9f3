//! Running one `smtpplugins` section: each plugin with its environment, its commands
//! read and carried out, a failure turned into the policy.

use std::process::Command;
use std::time::Instant;

use super::commands::{self, Last, Printed};
use super::env::{self, Vars};
use super::{Program, Section, Spp};
use crate::child::Exit;
use crate::log::Level;
use crate::plugin::external::options::OnFailure;
use crate::plugin::external::process::{CallFailure, Proc, Until};
use crate::plugin::{Args, Context, Outcome, Verdict};

impl Spp {
    pub(super) fn run_section(&self, section: Section, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let Some((_, programs)) = self.sections.iter().find(|(s, _)| *s == section) else {
            return Outcome::declined();
        };
        let hosts_ok = (section == Section::Rcpt).then(|| rcpt_hosts_ok(cx, args));
        for program in programs {
            if self.with_state(|s| s.off) {
                break;
            }
            let vars = self.vars(cx, hosts_ok);
            let lines = match self.run_program(program, &vars, cx) {
                Ok(lines) => lines,
                Err(what) => return self.failed(cx, program, &what),
            };
            let printed = commands::parse(&lines);
            if let Some(out) = self.take(printed, section, cx, args, program) {
                return out;
            }
        }
        Outcome::declined()
    }

    /// The environment for the next run.
    fn vars(&self, cx: &Context<'_>, hosts_ok: Option<bool>) -> Vars {
        let mut v = env::connection(cx.conn, std::env::var("RELAYCLIENT").ok());
        let s = self.state.borrow();
        let helo = s
            .helo
            .clone()
            .or_else(|| cx.conn.hello.as_ref().map(|g| g.host.clone()));
        if let Some(h) = helo {
            v.set("SMTPHELOHOST", h);
        }
        if let Some(m) = &s.mail_from {
            v.set("SMTPMAILFROM", m.as_str());
        }
        if let Some(r) = &s.rcpt_to {
            v.set("SMTPRCPTTO", r.as_str());
        }
        v.set("SMTPRCPTCOUNT", cx.txn.recipients.len().to_string());
        v.set("SMTPRCPTCOUNTALL", s.rcpt_all.to_string());
        if let Some(ok) = hosts_ok {
            v.set("SMTPRCPTHOSTSOK", if ok { "1" } else { "0" });
        }
        for (name, value) in &s.vars.0 {
            match value {
                Some(val) => v.set(name, val.as_str()),
                None => v.unset(name),
            }
        }
        v
    }

    /// Starts one plugin and reads its commands; a crash or exit 120 is a failure, as
    /// in qmail-spp, and so is running past the budget. Other exit codes are ignored.
    fn run_program(&self, program: &Program, vars: &Vars, cx: &Context<'_>) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.budget;
        let mut cmd = Command::new(&program.argv[0]);
        cmd.args(&program.argv[1..]).current_dir(&self.workdir);
        vars.apply(&mut cmd);
        let mut proc = Proc::spawn(cmd, false).map_err(|e| format!("can't execute: {e}"))?;
        let mut on_stderr = |l: &str| cx.log(Level::Warn, format_args!("{}: stderr: {l}", program.line));
        let timeout = |f: CallFailure| match f {
            CallFailure::Timeout => format!("timed out after {:.1}s", self.budget.as_secs_f64()),
            other => other.to_string(),
        };
        let lines = proc
            .exchange(b"", true, Until::Eof, deadline, &mut on_stderr)
            .map_err(timeout)?;
        let status = proc.wait(deadline).map_err(timeout)?;
        match status {
            Exit::Signal(_) => Err("child crashed".into()),
            Exit::Code(120) => Err("can't execute".into()),
            Exit::Code(_) => Ok(lines),
        }
    }

    /// Records what a plugin printed; `Some` when it ended the section.
    fn take(
        &self,
        p: Printed,
        section: Section,
        cx: &mut Context<'_>,
        args: Args<'_>,
        program: &Program,
    ) -> Option<Outcome> {
        let early = matches!(section, Section::Connection | Section::Helo);
        let mut state = self.state.borrow_mut();
        if early {
            state.conn_headers.extend(p.headers);
            state.conn_deferred.extend(p.deferred);
        } else {
            state.txn_headers.extend(p.headers);
            state.txn_deferred.extend(p.deferred);
        }
        for (name, value) in p.env {
            if name == "RELAYCLIENT" {
                cx.conn.relay_client = value.is_some();
            }
            state.vars.0.insert(name, value);
        }
        if let (Some(new), Args::Address { addr, .. }) = (p.change, args) {
            let rcpt = section == Section::Rcpt;
            if rcpt {
                state.rcpt_to = Some(new.clone());
            } else if section == Section::Mail {
                state.mail_from = Some(new.clone());
            }
            if rcpt || section == Section::Mail {
                state.change = Some((rcpt, addr.clone(), new));
            }
        }
        let last = p.last?;
        if last == Last::Accept {
            state.off = true;
        }
        drop(state);
        for line in p
            .printed
            .iter()
            .filter(|_| !matches!(last, Last::Error(_) | Last::Drop(_)))
        {
            cx.log(
                Level::Info,
                format_args!("{}: P line not sent (no E or R followed): {line}", program.line),
            );
        }
        Some(match last {
            Last::Accept | Last::Next => Outcome::declined(),
            Last::Override => Outcome::ok(),
            Last::DropSilently => Outcome::new(Verdict::DenySoftDisconnect),
            Last::Error(text) => self.refuse(cx, program, &p.printed, &text, false),
            Last::Drop(text) => self.refuse(cx, program, &p.printed, &text, true),
        })
    }

    /// `E`/`R`: the printed lines and the last one become the reply text; the code's
    /// class picks the verdict.
    fn refuse(
        &self,
        cx: &Context<'_>,
        program: &Program,
        printed: &[String],
        last: &str,
        drop: bool,
    ) -> Outcome {
        let Some((class, text)) = commands::reply_text(last) else {
            return self.failed(cx, program, &format!("reply without an SMTP code: {last:?}"));
        };
        let Some(verdict) = commands::refusal(class, drop) else {
            return self.failed(cx, program, &format!("not a refusal: {last:?}"));
        };
        let mut msg: Vec<String> = printed
            .iter()
            .filter_map(|l| commands::reply_text(l).map(|(_, t)| t.to_string()))
            .collect();
        msg.push(text.to_string());
        Outcome { verdict, msg }
    }

    fn failed(&self, cx: &Context<'_>, program: &Program, what: &str) -> Outcome {
        let what = format!("qmail-spp failure: {}: {what}", program.line);
        match self.on_failure {
            OnFailure::TempFail => {
                cx.log(
                    Level::Error,
                    format_args!("{what}; temporary failure (on_failure tempfail)"),
                );
                Outcome::with(Verdict::DenySoft, crate::plugin::external::TEMPFAIL_TEXT)
            }
            OnFailure::Skip => {
                cx.log(Level::Error, format_args!("{what}; skipped (on_failure skip)"));
                Outcome::declined()
            }
        }
    }
}

/// qmail-smtpd's `addrallowed()` for `SMTPRCPTHOSTSOK`: relay clients may send anywhere;
/// otherwise the domain must be in `rcpthosts` (exactly, or below a `.domain` line) or
/// `morercpthosts.cdb`, and with neither file everything is allowed.
fn rcpt_hosts_ok(cx: &Context<'_>, args: Args<'_>) -> bool {
    if cx.conn.relay_client {
        return true;
    }
    let Args::Address { addr, .. } = args else {
        return false;
    };
    let host = addr.host().unwrap_or("").to_ascii_lowercase();
    let hosts = cx.config("rcpthosts").unwrap_or_default();
    let cdb = cx.config_cdb("morercpthosts").ok().flatten();
    if hosts.is_empty() && cdb.is_none() {
        return true;
    }
    let listed = hosts.iter().any(|h| {
        let h = h.to_ascii_lowercase();
        host == h || (h.starts_with('.') && host.ends_with(&h))
    });
    listed || cdb.is_some_and(|c| c.contains(host.as_bytes()).unwrap_or(false))
}
