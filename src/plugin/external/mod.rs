//! External plugins: programs in any language behind the same hooks and verdicts as the
//! built-in plugins (plugins/EXTERNAL.md is the contract for their authors).
//!
//! A name in `config/plugins` that is not built in is looked up in the plugin directories
//! ([`find`]). The program declares its hooks, mode, time budget and failure policy in
//! comment lines ([`options`]). Each hook call becomes a request of `key value` lines
//! ([`facts`]) on the program's stdin, and the program answers with action lines and a
//! verdict line ([`answer`]) on its stdout. It runs once per call or as one co-process per
//! connection; either way [`process`] bounds its time and output, kills and reaps it, and
//! logs its stderr. Whatever the program does, a call ends in its answer or in the
//! plugin's failure policy, logged with the plugin's name. `qmail-spp` ([`spp`]) runs
//! qmail-spp plugins unchanged.

#[doc(hidden)]
pub mod answer;
mod facts;
mod find;
mod options;
mod process;
mod spp;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::log::Level;
use crate::plugin::{Args, Context, Hook, Outcome, Plugin, PluginError, PluginSpec, Verdict};

pub use find::plugin_dirs;
use options::{Mode, OnFailure, Partial};
use process::{CallFailure, Proc, Until};
#[doc(hidden)]
pub use spp::commands as spp_commands;

/// The time budget per call when neither the plugin nor `hook_timeout` sets one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The message a failed call gives under the `tempfail` policy.
const TEMPFAIL_TEXT: &str = "4.3.0 Temporary local problem; please try again later";

/// How long a co-process gets to exit after its input closed at the end of the
/// connection (at most its budget), before its process group is killed: exiting on end
/// of input takes milliseconds, and the connection's process must not linger.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Builds the external plugin a config line names: `Ok(None)` when no plugin directory
/// has it. `qmail-spp` is the qmail-spp compatibility runner.
pub fn build(spec: &PluginSpec, config: &Config) -> Result<Option<Box<dyn Plugin>>, PluginError> {
    if spec.base() == spp::NAME {
        return spp::new(spec, config).map(|p| Some(Box::new(p) as Box<dyn Plugin>));
    }
    let dirs = plugin_dirs(config).map_err(PluginError::Config)?;
    let Some(program) = find::find(spec.base(), &dirs).map_err(PluginError::Program)? else {
        return Ok(None);
    };
    External::new(spec, config, &program).map(|p| Some(Box::new(p) as Box<dyn Plugin>))
}

/// The plugin directories as one line, for the "not found" error.
pub fn dirs_text(config: &Config) -> String {
    match plugin_dirs(config) {
        Ok(dirs) => dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e,
    }
}

/// The default budget: `hook_timeout` (whole seconds up to [`options::MAX_TIMEOUT`], as
/// a plugin's own `timeout`; 0 or unset = 30).
pub fn default_budget(config: &Config) -> Result<Duration, String> {
    let max = options::MAX_TIMEOUT as u64;
    Ok(
        match config.seconds("hook_timeout", max).map_err(|e| e.to_string())? {
            Some(secs) if secs > 0 => Duration::from_secs(secs),
            _ => DEFAULT_TIMEOUT,
        },
    )
}

/// A path made absolute against our working directory, so that a child started in
/// another directory finds the same file.
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// One external plugin instance (one per `config/plugins` line, per connection).
pub struct External {
    program: PathBuf,
    args: Vec<String>,
    declared: Vec<Hook>,
    mode: Mode,
    budget: Duration,
    on_failure: OnFailure,
    workdir: PathBuf,
    coprocess: RefCell<Coprocess>,
}

/// A co-process's life within one connection.
enum Coprocess {
    NotStarted,
    /// Running; the id of the last request sent (ids count from 1).
    Running(Proc, u64),
    /// It failed; it is not started again for this connection.
    Failed,
}

impl External {
    /// Reads the program's declaration and the settings on its config line.
    fn new(spec: &PluginSpec, config: &Config, program: &Path) -> Result<External, PluginError> {
        let head = options::head(program).map_err(PluginError::Program)?;
        options::check_format(program, &head).map_err(PluginError::Program)?;
        let file = options::declared(&String::from_utf8_lossy(&head)).map_err(PluginError::Program)?;
        let (line, args) = options::from_args(&spec.args).map_err(PluginError::Args)?;
        let settings = line.over(file);
        let Partial {
            hooks,
            mode,
            timeout,
            on_failure,
        } = settings;
        let declared = hooks.ok_or_else(|| {
            PluginError::Program(format!(
                "{} declares no hooks: add a line `# {} hooks HOOK ...` near its top or `hooks HOOK,...` before its arguments in config/plugins",
                program.display(),
                options::MARKER
            ))
        })?;
        Ok(External {
            program: absolute(program),
            args,
            declared,
            mode: mode.unwrap_or(Mode::Once),
            budget: match timeout {
                Some(t) => t,
                None => default_budget(config).map_err(PluginError::Config)?,
            },
            on_failure: on_failure.unwrap_or(OnFailure::TempFail),
            workdir: absolute(config.dir()),
            coprocess: RefCell::new(Coprocess::NotStarted),
        })
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .current_dir(&self.workdir)
            .env("QPSMTPD_CONFIG", &self.workdir);
        cmd
    }

    /// One call: request out, answer in, answer applied; any failure → the policy.
    fn call(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let message = if facts::MESSAGE_HOOKS.contains(&hook) {
            match facts::message_file(cx) {
                Ok(m) => Some(m),
                Err(e) => return self.failed(cx, &format!("cannot write the message file: {e}")),
            }
        } else {
            None
        };
        let request = facts::request(hook, cx, args, message.as_ref().map(|(f, n)| (f.path(), *n)));
        let started = Instant::now();
        let lines = match self.mode {
            Mode::Once => self.once(cx, &request.finish()),
            Mode::Coprocess => self.exchange(cx, request),
        };
        let lines = match lines {
            Ok(lines) => lines,
            Err(what) => return self.failed(cx, &what),
        };
        if cx.log.enabled(Level::Debug) {
            cx.log(
                Level::Debug,
                format_args!("answered in {:.1} ms", started.elapsed().as_secs_f64() * 1000.0),
            );
        }
        let answer = match answer::parse(&lines) {
            Ok(a) => a,
            Err(e) => {
                self.abandon();
                return self.failed(cx, &format!("bad answer ({e})"));
            }
        };
        match answer::apply(answer, cx, hook) {
            Ok(out) => out,
            Err(e) => self.failed(cx, &e),
        }
    }

    /// Once mode: start, write the request, close stdin, read to the end, reap.
    fn once(&self, cx: &Context<'_>, request: &[u8]) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.budget;
        let mut proc = Proc::spawn(self.command(), true)
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        let lines = proc
            .exchange(request, true, Until::Eof, deadline, &mut |l| stderr_line(cx, l))
            .map_err(|f| self.describe(&f))?;
        let status = proc.wait(deadline).map_err(|f| self.describe(&f))?;
        if !status.success() {
            return Err(status.describe());
        }
        Ok(lines)
    }

    /// Co-process mode: start at the first call, then one request and answer per call.
    /// Each request carries a new `request_id`, and every line of its answer must start
    /// with it; the lines are returned without it. Output found waiting before a request
    /// (a doubled answer) or a line for another request (a late one) means the program
    /// is out of step: it is stopped and the call fails.
    fn exchange(&self, cx: &Context<'_>, request: facts::Request) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + self.budget;
        let Ok(mut state) = self.coprocess.try_borrow_mut() else {
            return Err("called again from within its own call".into());
        };
        if matches!(*state, Coprocess::NotStarted) {
            let proc = Proc::spawn(self.command(), true).map_err(|e| {
                *state = Coprocess::Failed;
                format!("cannot start {}: {e}", self.program.display())
            })?;
            cx.log(
                Level::Info,
                format_args!("co-process started (pid {})", proc.id()),
            );
            *state = Coprocess::Running(proc, 0);
        }
        let Coprocess::Running(proc, last_id) = &mut *state else {
            return Err("not running: it failed earlier in this connection".into());
        };
        proc.flush_stderr(&mut |l| stderr_line(cx, l));
        let stale = proc.waiting_output();
        if stale.iter().any(|b| !b.is_ascii_whitespace()) {
            let first = String::from_utf8_lossy(&stale);
            let first = first.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let what = format!(
                "wrote more after its answer to request {last_id} (a doubled or late answer): {}; stopped",
                answer::shown(first)
            );
            proc.kill();
            *state = Coprocess::Failed;
            return Err(what);
        }
        *last_id += 1;
        let id = *last_id;
        let request = request.with_id(id).finish();
        let ends = move |line: &str| answer::ends_tagged(line, id);
        let result = if proc.can_write() {
            proc.exchange(&request, false, Until::Line(&ends), deadline, &mut |l| {
                stderr_line(cx, l)
            })
        } else {
            Err(CallFailure::StdinClosed)
        };
        let untagged = match result {
            Ok(lines) => answer::untag(&lines, id).map_err(|e| format!("{e}; stopped")),
            Err(f) => Err(match f {
                CallFailure::Closed => "exited or closed its output without answering".to_string(),
                other => self.describe(&other),
            }),
        };
        if untagged.is_err() {
            proc.kill();
            *state = Coprocess::Failed;
        }
        untagged
    }

    /// A co-process that sent garbage is out of step: it is stopped.
    fn abandon(&self) {
        if let Ok(mut state) = self.coprocess.try_borrow_mut()
            && let Coprocess::Running(proc, _) = &mut *state
        {
            proc.kill();
            *state = Coprocess::Failed;
        }
    }

    /// At the end of the connection: EOF on the co-process's stdin, a short grace to
    /// exit ([`STOP_GRACE`], at most its budget), then its process group is killed. Its
    /// exit status and last stderr lines are logged.
    fn stop(&self, cx: &Context<'_>) {
        let Ok(mut state) = self.coprocess.try_borrow_mut() else {
            return;
        };
        if let Coprocess::Running(proc, _) = &mut *state {
            proc.close_stdin();
            let grace = self.budget.min(STOP_GRACE);
            let waited = proc.wait(Instant::now() + grace);
            proc.flush_stderr(&mut |l| stderr_line(cx, l));
            match waited {
                Ok(status) if status.success() => {}
                Ok(status) => cx.log(
                    Level::Warn,
                    format_args!("co-process {}", status.describe()),
                ),
                Err(CallFailure::Timeout) => cx.log(
                    Level::Warn,
                    format_args!(
                        "co-process did not exit within {:.1}s of the end of its input; killed with its process group",
                        grace.as_secs_f64()
                    ),
                ),
                Err(f) => cx.log(
                    Level::Warn,
                    format_args!(
                        "co-process did not exit at the end of the connection ({}); killed",
                        self.describe(&f)
                    ),
                ),
            }
        }
        *state = Coprocess::Failed;
    }

    fn describe(&self, f: &CallFailure) -> String {
        match f {
            CallFailure::Timeout => format!("timed out after {:.1}s", self.budget.as_secs_f64()),
            other => other.to_string(),
        }
    }

    /// The failure policy, with a log line naming the plugin (the logger adds its name).
    fn failed(&self, cx: &Context<'_>, what: &str) -> Outcome {
        match self.on_failure {
            OnFailure::TempFail => {
                cx.log(
                    Level::Error,
                    format_args!("plugin failed: {what}; temporary failure (on_failure tempfail)"),
                );
                Outcome::with(Verdict::DenySoft, TEMPFAIL_TEXT)
            }
            OnFailure::Skip => {
                cx.log(
                    Level::Error,
                    format_args!("plugin failed: {what}; skipped (on_failure skip)"),
                );
                Outcome::declined()
            }
        }
    }
}

impl Plugin for External {
    fn hooks(&self) -> Vec<Hook> {
        let mut hooks = self.declared.clone();
        // A co-process is stopped when the connection ends, with the log still at hand.
        if self.mode == Mode::Coprocess && !hooks.contains(&Hook::PostConnection) {
            hooks.push(Hook::PostConnection);
        }
        hooks
    }

    fn run(&self, hook: Hook, cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        let out = if self.declared.contains(&hook) {
            self.call(hook, cx, args)
        } else {
            Outcome::declined()
        };
        if hook == Hook::PostConnection && self.mode == Mode::Coprocess {
            self.stop(cx);
        }
        out
    }
}

/// A line the program wrote to stderr, logged with its name (the logger adds it).
fn stderr_line(cx: &Context<'_>, line: &str) {
    cx.log(Level::Warn, format_args!("stderr: {line}"));
}
