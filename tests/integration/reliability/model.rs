//! The model-based stress test: random sequences of operations (edits of every kind, bursts
//! from several threads, a change probation reverts, reverts to earlier generations and their
//! dry runs, commit-confirmed on half the runs) against a live engine with reader threads, each settled step checked against a
//! simple model of what the engine holds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hotcfg::RestartPolicy;
use hotcfg_tests::{ReaderProgress, Sandbox};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::props;
use ops::{op, Op};
use readers::{Readers, READERS};
use run::Run;

mod checks;
mod edits;
mod expected;
mod ops;
mod readers;
mod run;
mod safety;
mod system;

/// Runs `ops` under `policy`, commit-confirmed if `confirm`; adds what each did to `tally`.
fn run_model(
    policy: RestartPolicy,
    confirm: bool,
    ops: &[Op],
    tally: &Mutex<BTreeMap<String, u32>>,
) -> Result<(), TestCaseError> {
    let sandbox = Sandbox::new();
    let progress = ReaderProgress::new(READERS);
    let broken = Arc::new(Mutex::new(Vec::new()));
    let mut run = Run::start(&sandbox, policy, confirm, &progress, &broken);
    let readers = Readers::start(&run.reloader, &progress, &broken);
    let result = (|| -> Result<(), TestCaseError> {
        for (step, op) in ops.iter().enumerate() {
            let at = format!("step {step} {op:?} ({policy:?}, confirm: {confirm})");
            let returned = run.step(op, &at)?;
            run.check_settled(&at, &returned, &readers)?;
        }
        Ok(())
    })();
    let reads = readers.stop();
    let mut counts = tally.lock().unwrap();
    for outcome in run.outcomes.drain(..) {
        *counts.entry(outcome).or_default() += 1;
    }
    drop(counts);
    result?;
    // Every apply window had a load by every reader (a stall would be in `broken`).
    let (windows, observed) = progress.windows();
    prop_assert_eq!(observed, windows, "apply windows every reader loaded in");
    prop_assert!(reads >= READERS as u64, "{} loads", reads);
    let (audit, attempts) = (run.audit.clone(), run.attempts);
    drop(run);
    // One audit line per attempt (and the startup), and the chain verifies.
    let records = hotcfg::verify_audit_log(&audit)
        .map_err(|e| TestCaseError::fail(format!("the audit log does not verify: {e}")))?;
    prop_assert_eq!(records.len(), attempts + 1);
    Ok(())
}

#[test]
fn model_based_stress_with_readers() {
    let started = Instant::now();
    let tally = Mutex::new(BTreeMap::new());
    let strategy = (
        prop_oneof![Just(RestartPolicy::Reject), Just(RestartPolicy::Defer)],
        proptest::collection::vec(op(), 1..24),
    );
    props::check(
        "model-based stress",
        "HOTCFG_STRESS_CASES",
        12,
        &strategy,
        // Commit-confirmed on half the runs, chosen from the operations so that the seed's cases
        // stay the ones the hand-applied mutants were checked against (RELIABILITY.md).
        |(policy, ops)| run_model(policy, ops.len() % 2 == 0, &ops, &tally),
    );
    let tally = tally.into_inner().unwrap();
    eprintln!("model-based stress: {tally:?} in {:?}", started.elapsed());
    // The default seed reaches issue 17's main outcomes (another seed may not; the rarer ones,
    // a revert refused, depend on the generations bursts take).
    if std::env::var(props::SEED_VAR).is_err() {
        for reached in [
            "sick: reverted",
            "revert: applied",
            "revert: unchanged",
            "plan_revert: apply",
            "confirm: yes",
            "confirm: too late",
        ] {
            assert!(
                tally.contains_key(reached),
                "no step reached {reached}: {tally:?}"
            );
        }
    }
}
