use super::*;
use std::cell::RefCell;
use std::rc::Rc;

struct Fixed {
    hooks: Vec<Hook>,
    out: Outcome,
    calls: Rc<RefCell<Vec<String>>>,
    name: &'static str,
}

impl Plugin for Fixed {
    fn hooks(&self) -> Vec<Hook> {
        self.hooks.clone()
    }
    fn run(&self, hook: Hook, _cx: &mut Context<'_>, args: Args<'_>) -> Outcome {
        if let Args::Decision { plugin, verdict, .. } = args {
            self.calls
                .borrow_mut()
                .push(format!("{}:{hook}:{plugin}:{verdict}", self.name));
        } else {
            self.calls.borrow_mut().push(format!("{}:{hook}", self.name));
        }
        if self.name == "boom" {
            panic!("dead");
        }
        self.out.clone()
    }
}

fn spec(name: &str) -> PluginSpec {
    PluginSpec {
        name: name.into(),
        args: vec![],
        file: std::rc::Rc::from(std::path::Path::new("plugins")),
        line: 1,
        log_adjust: None,
    }
}

fn run(chain: &Chain, hook: Hook) -> Outcome {
    let mut conn = Connection::new("1", "192.0.2.1");
    let mut txn = Transaction::new("1.0".into());
    let mut replies = Vec::new();
    let (config, log) = (Config::empty(), Logger::silent("1"));
    let env = Env {
        config: &config,
        log: &log,
        me: "mx.example",
    };
    chain.run(hook, &mut conn, &mut txn, env, &mut replies, Args::None)
}

#[test]
fn first_non_declined_wins_panics_are_skipped_and_deny_hooks_hear() {
    let calls = Rc::new(RefCell::new(Vec::new()));
    let mut chain = Chain::new();
    let mk = |name, hooks: Vec<Hook>, out| Fixed {
        hooks,
        out,
        calls: calls.clone(),
        name,
    };
    chain.push(
        spec("a"),
        Box::new(mk("a", vec![Hook::Helo], Outcome::declined())),
    );
    chain.push(
        spec("boom"),
        Box::new(mk("boom", vec![Hook::Helo], Outcome::ok())),
    );
    chain.push(
        spec("c"),
        Box::new(mk("c", vec![Hook::Helo], Outcome::with(Verdict::Deny, "no"))),
    );
    chain.push(spec("d"), Box::new(mk("d", vec![Hook::Helo], Outcome::ok())));
    chain.push(
        spec("watch"),
        Box::new(mk("watch", vec![Hook::Deny], Outcome::declined())),
    );
    let out = run(&chain, Hook::Helo);
    assert_eq!(out, Outcome::with(Verdict::Deny, "no"));
    assert_eq!(
        *calls.borrow(),
        vec!["a:helo", "boom:helo", "c:helo", "watch:deny:c:DENY"]
    );
    assert_eq!(run(&chain, Hook::Mail), Outcome::declined());
}
