//! One run of the model-based stress test: the engine under test, the model, and the checks
//! made once each operation has settled.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotcfg::{ConfirmError, FileSource, ProbationStatus, ReloadEvent, Reloader, RestartPolicy};
use hotcfg_tests::{ReaderProgress, Sandbox};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use tokio::sync::broadcast;

use super::checks::check_unrecorded;
use super::expected::{Confirmed, Expected};
use super::ops::Op;
use super::readers::Readers;
use super::system::{health, render, Model, Subsystem, Validation, LISTEN};

/// Snapshots kept: more than a run commits distinct texts, so none is pruned.
const SNAPSHOTS_KEPT: usize = 1000;
/// Commit-confirmed (on half the runs): a deadline no step comes near, so every change the test
/// confirms at once stays.
const CONFIRM_WITHIN: Duration = Duration::from_secs(120);
/// The longest probation may take to end once a step is done.
const PROBATION_SETTLES: Duration = Duration::from_secs(30);

/// The engine under test, what it should hold, and what was checked so far.
pub(super) struct Run {
    pub(super) initial: Model,
    pub(super) path: PathBuf,
    pub(super) audit: PathBuf,
    pub(super) reloader: Reloader<Model>,
    pub(super) validation: Validation,
    /// Commit-confirmed is on: each step confirms (and checks the answer) before probation ends.
    confirm: bool,
    pub(super) expected: Expected,
    /// The file's text and what it deserializes to (`None`: it does not).
    pub(super) current: (String, Option<Model>),
    events: broadcast::Receiver<Arc<ReloadEvent>>,
    /// The last recorded event: what the next unrecorded one must match.
    last_recorded: Arc<ReloadEvent>,
    /// Events broadcast so far (each has its audit record).
    pub(super) attempts: usize,
    sub_a: Arc<AtomicU32>,
    sub_b: Arc<AtomicU32>,
    /// Every version the `a` scope applied, by generation (removed again on rollback).
    tentative: Arc<Mutex<BTreeMap<u64, Model>>>,
    /// What each operation did (`"revert: applied"`), for the tally of outcomes reached.
    pub(super) outcomes: Vec<String>,
}

impl Run {
    /// The engine on a file in `sandbox`, with probation judging each change at once (a zero
    /// window: a healthy change is trusted before the next step), commit-confirmed if `confirm`,
    /// and an audit log keeping snapshots; its `a` handler waits on `progress` while a version
    /// is applied.
    pub(super) fn start(
        sandbox: &Sandbox,
        policy: RestartPolicy,
        confirm: bool,
        progress: &ReaderProgress,
        broken: &Arc<Mutex<Vec<String>>>,
    ) -> Run {
        let initial = Model {
            listen: LISTEN,
            a: 0,
            b: 0,
        };
        let path = sandbox.write("m.toml", &render(&initial));
        let audit = sandbox.path("audit.jsonl");
        let (sub_a, sub_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let tentative = Arc::new(Mutex::new(BTreeMap::new()));
        let validation = Validation::new();
        let validator = validation.clone();
        let mut builder = Reloader::<Model>::builder(FileSource::new(&path))
            .validator(move |m: &Model, v: &mut hotcfg::Violations| validator.check(m, v))
            .policy(policy)
            .handler(
                "a",
                Subsystem {
                    field: |m| m.a,
                    value: sub_a.clone(),
                    tentative: tentative.clone(),
                    readers_window: Some((progress.clone(), broken.clone())),
                },
            )
            .handler(
                "b",
                Subsystem {
                    field: |m| m.b,
                    value: sub_b.clone(),
                    tentative: Arc::new(Mutex::new(BTreeMap::new())),
                    readers_window: None,
                },
            )
            .scope_depends_on("b", &["a"])
            .probation(Duration::ZERO, health)
            .probation_interval(Duration::from_millis(1))
            .audit_log(&audit)
            .snapshots_kept(SNAPSHOTS_KEPT);
        if confirm {
            builder = builder.confirm_within(CONFIRM_WITHIN);
        }
        let reloader = builder.build().unwrap();
        Run {
            events: reloader.events(),
            // The startup event: what the first unrecorded `unchanged` must match.
            last_recorded: reloader.last_event(),
            expected: Expected::new(&initial, policy),
            current: (render(&initial), Some(initial.clone())),
            initial,
            path,
            audit,
            reloader,
            validation,
            confirm,
            attempts: 0,
            sub_a,
            sub_b,
            tentative,
            outcomes: Vec::new(),
        }
    }

    /// Runs `op`; returns the events its calls returned.
    pub(super) fn step(
        &mut self,
        op: &Op,
        at: &str,
    ) -> Result<Vec<Arc<ReloadEvent>>, TestCaseError> {
        let (returned, outcome) = match op {
            Op::Burst(edits) => (self.burst(edits, at)?, "done".to_string()),
            Op::Sick { a } => self.sick(*a, at)?,
            Op::Revert { pick } => self.revert(*pick, at)?,
            Op::PlanRevert { pick } => (Vec::new(), self.plan_revert(*pick, at)?),
            Op::Forbid { pick } => {
                let generation = self.expected.pick(*pick);
                let a = self.expected.kept.get(&generation).map_or(0, |(_, m)| m.a);
                self.validation.forbid(a);
                self.expected.forbidden = Some(a);
                (Vec::new(), "done".to_string())
            }
            _ => {
                let event = self.edit(op, at)?;
                let outcome = event.result.kind().to_string();
                (vec![event], outcome)
            }
        };
        self.outcomes.push(format!("{}: {outcome}", op.name()));
        Ok(returned)
    }

    /// Confirms the step's change (commit-confirmed), then waits for probation to end (a change
    /// committed by the step is judged at once).
    pub(super) fn probation_settled(&mut self, at: &str) -> Result<ProbationStatus, TestCaseError> {
        self.confirm_change(at)?;
        self.probation_ended(at)
    }

    /// Waits for probation to end.
    pub(super) fn probation_ended(&self, at: &str) -> Result<ProbationStatus, TestCaseError> {
        let status = self.reloader.wait_probation(PROBATION_SETTLES);
        prop_assert!(
            !matches!(status, ProbationStatus::OnProbation { .. }),
            "{}: still on probation after {:?}: {:?}",
            at,
            PROBATION_SETTLES,
            status
        );
        Ok(status)
    }

    /// Commit-confirmed: `confirm()` answers as the model says.
    pub(super) fn confirm_change(&mut self, at: &str) -> Result<(), TestCaseError> {
        if !self.confirm {
            return Ok(());
        }
        let got = match self.reloader.confirm() {
            Ok(generation) => Confirmed::Yes(generation),
            Err(ConfirmError::AlreadyReverted { revert, live }) => Confirmed::TooLate {
                reverted: revert.reverted,
                live,
            },
            Err(ConfirmError::NothingPending { live }) => Confirmed::NothingPending(live),
            Err(other) => return Err(TestCaseError::fail(format!("{at}: confirm: {other}"))),
        };
        let want = self.expected.confirm();
        let outcome = match &want {
            Confirmed::Yes(_) => "confirm: yes",
            Confirmed::TooLate { .. } => "confirm: too late",
            Confirmed::NothingPending(_) => "confirm: nothing pending",
        };
        self.outcomes.push(outcome.to_string());
        prop_assert_eq!(got, want, "{}: confirm", at);
        Ok(())
    }

    /// Once `op` settled: the live version, the subsystems, the pending restarts and the file
    /// are the model's; every attempt was broadcast once (callers got only those, or rightly
    /// unrecorded ones); readers saw only committed versions, each under its own generation.
    pub(super) fn check_settled(
        &mut self,
        at: &str,
        returned: &[Arc<ReloadEvent>],
        readers: &Readers,
    ) -> Result<(), TestCaseError> {
        let expected = &self.expected;
        let live = self.reloader.handle().snapshot();
        prop_assert_eq!(live.config(), &expected.live, "{}", at);
        prop_assert_eq!(live.generation(), expected.generation, "{}", at);
        prop_assert_eq!(self.sub_a.load(Ordering::SeqCst), expected.live.a, "{}", at);
        prop_assert_eq!(self.sub_b.load(Ordering::SeqCst), expected.live.b, "{}", at);
        let pending = self.reloader.pending_restart().len();
        prop_assert_eq!(pending, usize::from(expected.pending), "{}: pending", at);
        let file = std::fs::read_to_string(&self.path).unwrap();
        prop_assert_eq!(&file, &self.current.0, "{}: the file's text", at);

        let mut broadcast = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            broadcast.push(event);
        }
        let last = Arc::clone(&self.last_recorded);
        self.last_recorded = check_unrecorded(last, &broadcast, returned, at)?;
        let generations: Vec<u64> = broadcast.iter().map(|e| e.generation).collect();
        prop_assert!(
            generations.windows(2).all(|w| w[0] <= w[1]),
            "{}: event generations went back: {:?}",
            at,
            generations
        );
        self.attempts += broadcast.len();
        self.check_readers(at, readers)
    }

    /// Readers saw only committed versions, each under its own generation, and broke no rule.
    fn check_readers(&self, at: &str, readers: &Readers) -> Result<(), TestCaseError> {
        let seen = std::mem::take(&mut *readers.seen.lock().unwrap());
        let committed = self.tentative.lock().unwrap().clone();
        for (generation, config) in seen {
            let expected_config = if generation == 1 {
                &self.initial
            } else {
                committed.get(&generation).ok_or_else(|| {
                    TestCaseError::fail(format!(
                        "{at}: readers saw uncommitted generation {generation}"
                    ))
                })?
            };
            prop_assert_eq!(
                &config,
                expected_config,
                "{}: generation {}",
                at,
                generation
            );
        }
        let broken = readers.broken.lock().unwrap().clone();
        prop_assert!(broken.is_empty(), "{}: {:?}", at, broken);
        Ok(())
    }
}
