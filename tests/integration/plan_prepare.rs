//! A dry run that asks the handlers: `PlanOptions::run_prepare` runs every affected handler's
//! `prepare` (never `apply`) and reports each verdict in the plan (issue 16).

use std::sync::{Arc, Mutex};

use hotcfg::{
    ApplyContext, BoxError, Decision, Format, HotReload, MemorySource, Plan, PlanOptions,
    ReloadResult, Reloader, RestartPolicy, ScopeHandler, SourceContent, Verdict,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(restart)]
    listen: String,
    #[reload(scope = "limits")]
    max: u32,
    #[reload(scope = "loops")]
    loops: Vec<String>,
}

const LIVE: &str = "listen = \"a\"\nmax = 4\nloops = [\"fast\"]\n";

/// Records "scope:step"; in the `loops` scope, refuses (or panics in) `prepare` when the
/// candidate has no `fast` loop.
#[derive(Clone)]
struct Guard {
    log: Arc<Mutex<Vec<String>>>,
    panics: bool,
}

impl ScopeHandler<Config> for Guard {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:prepare", cx.scope));
        if cx.scope != "loops" || cx.new.loops.iter().any(|l| l == "fast") {
            return Ok(());
        }
        if self.panics {
            panic!("prepare exploded");
        }
        Err("loop type `fast` is in use by 1 running loop".into())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.log.lock().unwrap().push(format!("{}:apply", cx.scope));
        Ok(())
    }
}

struct Setup {
    reloader: Reloader<Config>,
    source: MemorySource,
    log: Arc<Mutex<Vec<String>>>,
}

fn setup(panics: bool) -> Setup {
    let log = Arc::new(Mutex::new(Vec::new()));
    let guard = Guard {
        log: Arc::clone(&log),
        panics,
    };
    let source = MemorySource::new("app.toml", Format::Toml, LIVE);
    let reloader = Reloader::<Config>::builder(source.clone())
        .handler("limits", guard.clone())
        .handler("loops", guard)
        .scope_depends_on("loops", &["limits"])
        .policy(RestartPolicy::Defer)
        .build()
        .unwrap();
    Setup {
        reloader,
        source,
        log,
    }
}

fn candidate(text: &str) -> Result<SourceContent, hotcfg::SourceError> {
    Ok(SourceContent::single("candidate.toml", Format::Toml, text))
}

fn checked(reloader: &Reloader<Config>, text: &str) -> Plan {
    reloader.plan_with(candidate(text), PlanOptions::new().run_prepare())
}

#[test]
fn a_checked_plan_shows_each_verdict_and_the_veto_the_reload_would_give() {
    let Setup {
        reloader,
        source,
        log,
    } = setup(false);
    let text = "listen = \"a\"\nmax = 4\nloops = [\"slow\"]\n";
    let plan = checked(&reloader, text);

    // Every affected scope was asked, in dependency order, and nothing was applied.
    assert_eq!(plan.handlers, ["limits", "loops"]);
    assert_eq!(*log.lock().unwrap(), ["limits:prepare", "loops:prepare"]);
    let verdicts = plan.prepare.clone().expect("prepare was asked");
    assert_eq!(verdicts[0].scope, "limits");
    assert_eq!(verdicts[0].verdict, Verdict::Accepted);
    assert_eq!(verdicts[1].scope, "loops");
    let veto = "loop type `fast` is in use by 1 running loop";
    assert_eq!(
        verdicts[1].verdict,
        Verdict::Vetoed {
            message: veto.into()
        }
    );
    assert_eq!(reloader.handle().generation(), 1);

    // The decision is the rejection the reload gives for the same candidate.
    let Decision::Reject { reason, refused } = &plan.decision else {
        panic!("expected the veto to reject, got {plan}");
    };
    assert!(plan
        .to_string()
        .contains(&format!("\n  prepare loops: vetoed: {veto}")));
    assert!(
        plan.to_string().contains("\n  prepare limits: accepted"),
        "{plan}"
    );
    log.lock().unwrap().clear();
    source.set(text);
    let event = reloader.reload_now();
    let ReloadResult::Rejected {
        reason: reload_reason,
        refused: reload_refused,
    } = &event.result
    else {
        panic!("expected the reload to be vetoed, got {event}");
    };
    assert_eq!(reason, reload_reason);
    assert_eq!(refused, reload_refused);

    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(json["decision"], "reject");
    assert_eq!(json["prepare"][0]["scope"], "limits");
    assert_eq!(json["prepare"][0]["verdict"], "accepted");
    assert_eq!(json["prepare"][1]["verdict"], "vetoed");
    assert_eq!(json["prepare"][1]["message"], veto);
}

#[test]
fn an_accepted_plan_keeps_its_apply_decision_and_runs_no_apply() {
    let Setup { reloader, log, .. } = setup(false);
    let plan = checked(&reloader, "listen = \"a\"\nmax = 5\nloops = [\"fast\"]\n");
    assert!(matches!(plan.decision, Decision::Apply { .. }), "{plan}");
    let verdicts = plan.prepare.expect("prepare was asked");
    assert_eq!(verdicts.len(), 1);
    assert_eq!(verdicts[0].scope, "limits");
    assert_eq!(verdicts[0].verdict, Verdict::Accepted);
    assert_eq!(*log.lock().unwrap(), ["limits:prepare"]);
}

#[test]
fn a_panicking_prepare_is_a_verdict_and_the_engine_goes_on() {
    let Setup { reloader, log, .. } = setup(true);
    let plan = checked(&reloader, "listen = \"a\"\nmax = 4\nloops = []\n");
    let verdicts = plan.prepare.clone().expect("prepare was asked");
    assert_eq!(
        verdicts[1].verdict,
        Verdict::Panicked {
            message: "prepare exploded".into()
        }
    );
    assert!(
        matches!(&plan.decision, Decision::Reject { reason, .. }
            if reason == "the `loops` handler panicked in prepare: prepare exploded"),
        "{plan}"
    );
    log.lock().unwrap().clear();
    // The engine's lock is free again: a plan and a reload still run.
    let plan = checked(&reloader, "listen = \"a\"\nmax = 6\nloops = [\"fast\"]\n");
    assert!(matches!(plan.decision, Decision::Apply { .. }), "{plan}");
    assert_eq!(reloader.reload_now().result, ReloadResult::Unchanged);
}

#[test]
fn prepare_is_asked_only_when_the_decision_is_to_apply() {
    let Setup { reloader, log, .. } = setup(false);
    for (text, kind) in [
        (LIVE, "unchanged"),
        ("listen = \"b\"\nmax = 4\nloops = [\"fast\"]\n", "defer"),
        ("max = = 4", "invalid"),
    ] {
        let plan = checked(&reloader, text);
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["decision"], kind, "{plan}");
        assert_eq!(plan.prepare, None, "{plan}");
        assert!(json.get("prepare").is_none(), "{json}");
    }
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn a_plain_plan_asks_no_handler() {
    let Setup { reloader, log, .. } = setup(false);
    let plan = reloader.plan_content(candidate("listen = \"a\"\nmax = 4\nloops = []\n"));
    assert!(matches!(plan.decision, Decision::Apply { .. }), "{plan}");
    assert_eq!(plan.prepare, None);
    assert!(serde_json::to_value(&plan)
        .unwrap()
        .get("prepare")
        .is_none());
    assert!(
        log.lock().unwrap().is_empty(),
        "a plain plan calls no handler"
    );
}
