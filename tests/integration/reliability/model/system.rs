//! The system under test: a configuration with a restart-only field and two scopes, and the
//! scope handlers that record every version they applied.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use hotcfg::{ApplyContext, BoxError, Health, HotReload, Probe, ScopeHandler, Violations};
use hotcfg_tests::ReaderProgress;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
pub(super) struct Model {
    #[reload(restart)]
    pub(super) listen: u32,
    #[reload(scope = "a")]
    pub(super) a: u32,
    #[reload(scope = "b")]
    pub(super) b: u32,
}

pub(super) const LISTEN: u32 = 7000;
pub(super) const OTHER_LISTEN: u32 = 7001;
/// `b` values the `b` handler refuses in prepare, fails in apply, panics in apply.
pub(super) const VETO: u32 = 1000;
pub(super) const FAIL: u32 = 1001;
pub(super) const PANIC: u32 = 1002;
/// `a` values at or above this break the validator.
pub(super) const INVALID_A: u32 = 500;
/// A `b` value that passes everything but the probation health check (issue 17).
pub(super) const SICK: u32 = 900;
/// No `a` value is forbidden yet (see [`Validation`]).
const NONE_FORBIDDEN: u32 = u32::MAX;

pub(super) fn render(m: &Model) -> String {
    format!("listen = {}\na = {}\nb = {}\n", m.listen, m.a, m.b)
}

/// Today's validation: `a` below [`INVALID_A`], and not the value a run forbade since (a rule
/// tightened while the engine runs, so that an earlier version can fail it).
#[derive(Clone)]
pub(super) struct Validation {
    forbidden: Arc<AtomicU32>,
}

impl Validation {
    pub(super) fn new() -> Self {
        Validation {
            forbidden: Arc::new(AtomicU32::new(NONE_FORBIDDEN)),
        }
    }

    /// From now on, `a == value` is refused.
    pub(super) fn forbid(&self, value: u32) {
        self.forbidden.store(value, Ordering::SeqCst);
    }

    /// The validator the engine runs.
    pub(super) fn check(&self, m: &Model, v: &mut Violations) {
        v.check(m.a < INVALID_A, "a", "too large");
        let forbidden = self.forbidden.load(Ordering::SeqCst);
        v.check(m.a != forbidden, "a", format!("{forbidden} is forbidden"));
    }
}

/// The probation health check: a version whose `b` is [`SICK`] is unhealthy.
pub(super) fn health(probe: &Probe<Model>) -> Health {
    match probe.new.b {
        SICK => Health::unhealthy("sick"),
        _ => Health::Healthy,
    }
}

/// A scope's subsystem: the value it runs with, and every version it applied by generation
/// (removed again on rollback), so readers' observations can be checked against commits.
pub(super) struct Subsystem {
    pub(super) field: fn(&Model) -> u32,
    pub(super) value: Arc<AtomicU32>,
    pub(super) tentative: Arc<Mutex<BTreeMap<u64, Model>>>,
    /// For the scope applied first: while its version is applied and not yet committed or
    /// rolled back, wait until every reader has loaded again (a stall is recorded as broken).
    pub(super) readers_window: Option<(ReaderProgress, Arc<Mutex<Vec<String>>>)>,
}

impl ScopeHandler<Model> for Subsystem {
    fn prepare(&self, cx: &ApplyContext<'_, Model>) -> Result<(), BoxError> {
        if cx.scope == "b" && cx.new.b == VETO {
            return Err("vetoed".into());
        }
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Model>) -> Result<(), BoxError> {
        if cx.scope == "b" && cx.new.b == FAIL {
            return Err("cannot apply".into());
        }
        if cx.scope == "b" && cx.new.b == PANIC {
            // A panic that skips the panic hook (no noise in the test output).
            std::panic::resume_unwind(Box::new("handler exploded"));
        }
        self.value.store((self.field)(cx.new), Ordering::SeqCst);
        self.tentative
            .lock()
            .unwrap()
            .insert(cx.generation, cx.new.clone());
        if let Some((progress, broken)) = &self.readers_window {
            let before = progress.counts();
            let what = format!("while generation {} is applied", cx.generation);
            if let Err(stall) = progress.wait_for_reads_since(&before, &what) {
                broken.lock().unwrap().push(stall);
            }
        }
        Ok(())
    }
    fn rollback(&self, cx: &ApplyContext<'_, Model>) -> Result<(), BoxError> {
        self.value.store((self.field)(cx.old), Ordering::SeqCst);
        self.tentative.lock().unwrap().remove(&cx.generation);
        Ok(())
    }
}
