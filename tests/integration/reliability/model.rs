//! The model-based stress test: random sequences of operations against a live engine with
//! reader threads, each settled step checked against a simple model of what the engine holds.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotcfg::{FileSource, ReloadEvent, ReloadResult, Reloader, RestartPolicy, Rollback};
use hotcfg_tests::{ReaderProgress, Sandbox};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::write_atomically;
use crate::props;
use checks::{check_unrecorded, distinct_applied_generations};
use ops::{op, Expected, Op};
use readers::{Readers, READERS};
use system::{render, Model, Subsystem, INVALID_A, LISTEN, OTHER_LISTEN};

mod checks;
mod ops;
mod readers;
mod system;

fn run_model(policy: RestartPolicy, ops: &[Op]) -> Result<(), TestCaseError> {
    let sandbox = Sandbox::new();
    let initial = Model {
        listen: LISTEN,
        a: 0,
        b: 0,
    };
    let path = sandbox.write("m.toml", &render(&initial));
    let audit = sandbox.path("audit.jsonl");
    let (sub_a, sub_b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let tentative = Arc::new(Mutex::new(BTreeMap::new()));
    let progress = ReaderProgress::new(READERS);
    let broken = Arc::new(Mutex::new(Vec::new()));
    let reloader = Reloader::<Model>::builder(FileSource::new(&path))
        .validator(|m: &Model, v: &mut hotcfg::Violations| {
            v.check(m.a < INVALID_A, "a", "too large")
        })
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
        .audit_log(&audit)
        .build()
        .unwrap();
    let mut events = reloader.events();
    let readers = Readers::start(&reloader, &progress, &broken);
    let mut expected = Expected {
        live: initial.clone(),
        generation: 1,
        last_text: render(&initial),
        pending: false,
    };
    let mut attempts = 0usize;
    // The startup event: what the first unrecorded `unchanged` must match.
    let mut last_recorded = reloader.last_event();
    let mut file = initial.clone();
    // The file's text and what it parses and validates to.
    let mut current: (String, Option<Model>) = (render(&initial), Some(initial.clone()));
    let result = (|| -> Result<(), TestCaseError> {
        for (step, op) in ops.iter().enumerate() {
            let at = format!("step {step} {op:?} ({policy:?})");
            let mut returned: Vec<Arc<ReloadEvent>> = Vec::new();
            match op {
                Op::Burst(edits) => {
                    let before = expected.generation;
                    let go = Arc::new(AtomicBool::new(true));
                    let triggers: Vec<_> = (0..3)
                        .map(|_| {
                            let (reloader, go) = (reloader.clone(), go.clone());
                            std::thread::spawn(move || {
                                let mut got = Vec::new();
                                while go.load(Ordering::Relaxed) {
                                    got.push(reloader.reload_now());
                                }
                                got
                            })
                        })
                        .collect();
                    for (a, b) in edits {
                        file = Model {
                            listen: LISTEN,
                            a: *a,
                            b: *b,
                        };
                        write_atomically(&path, &render(&file));
                        std::thread::sleep(Duration::from_micros(300));
                    }
                    go.store(false, Ordering::Relaxed);
                    for t in triggers {
                        returned.extend(t.join().unwrap());
                    }
                    // Settle: one more reload of the last edit.
                    let settle = reloader.reload_now();
                    prop_assert!(settle.result.is_ok(), "{at}: {settle}");
                    returned.push(settle);
                    current = (render(&file), Some(file.clone()));
                    // The last edit wins; every reload that applied something took the next
                    // generation (coalesced callers share one event).
                    expected.live = file.clone();
                    expected.last_text = render(&file);
                    expected.pending = false;
                    let applied = distinct_applied_generations(&returned);
                    let want: Vec<u64> = (before + 1..=before + applied.len() as u64).collect();
                    prop_assert_eq!(&applied, &want, "{}: generations of applied reloads", at);
                    expected.generation = before + applied.len() as u64;
                }
                _ => {
                    let (text, parsed) = match op {
                        Op::Valid { a, b } | Op::Handler { a, b } => {
                            file = Model {
                                listen: LISTEN,
                                a: *a,
                                b: *b,
                            };
                            (render(&file), Some(file.clone()))
                        }
                        Op::RestartOnly { a, b } => {
                            file = Model {
                                listen: OTHER_LISTEN,
                                a: *a,
                                b: *b,
                            };
                            (render(&file), Some(file.clone()))
                        }
                        Op::Invalid(kind) => {
                            let text = match kind {
                                0 => "listen = = 7000\n".to_string(),
                                1 => format!("listen = {LISTEN}\na = \"many\"\nb = 0\n"),
                                _ => format!("listen = {LISTEN}\na = {INVALID_A}\nb = 0\n"),
                            };
                            (text, None)
                        }
                        Op::Manual => current.clone(),
                        Op::Burst(_) => unreachable!(),
                    };
                    if !matches!(op, Op::Manual) {
                        write_atomically(&path, &text);
                        current = (text.clone(), parsed.clone());
                    }
                    let want = expected.reload(&text, parsed, policy);
                    let event = reloader.reload_now();
                    prop_assert_eq!(event.result.kind(), want, "{}: {}", at, event);
                    if let ReloadResult::Failed { rollback, .. } = &event.result {
                        // Every rollback here succeeds; a candidate that does not load reaches
                        // no handler.
                        prop_assert!(!matches!(rollback, Rollback::Incomplete { .. }), "{}", at);
                        if matches!(op, Op::Invalid(_)) {
                            prop_assert_eq!(rollback, &Rollback::NotNeeded, "{}", at);
                        }
                    }
                    returned.push(event);
                }
            }

            // Settled: the live version is the model's, and so are the subsystems.
            let live = reloader.handle().snapshot();
            prop_assert_eq!(live.config(), &expected.live, "{}", at);
            prop_assert_eq!(live.generation(), expected.generation, "{}", at);
            prop_assert_eq!(sub_a.load(Ordering::SeqCst), expected.live.a, "{}", at);
            prop_assert_eq!(sub_b.load(Ordering::SeqCst), expected.live.b, "{}", at);
            prop_assert_eq!(
                reloader.pending_restart().len(),
                usize::from(expected.pending),
                "{}",
                at
            );

            // Every attempt was broadcast once; callers got only those events.
            let mut broadcast = Vec::new();
            while let Ok(event) = events.try_recv() {
                broadcast.push(event);
            }
            last_recorded = check_unrecorded(last_recorded, &broadcast, &returned, &at)?;
            let generations: Vec<u64> = broadcast.iter().map(|e| e.generation).collect();
            prop_assert!(
                generations.windows(2).all(|w| w[0] <= w[1]),
                "{}: event generations went back: {:?}",
                at,
                generations
            );
            attempts += broadcast.len();

            // Readers saw only committed versions, each under its own generation.
            let seen = std::mem::take(&mut *readers.seen.lock().unwrap());
            let committed = tentative.lock().unwrap().clone();
            for (generation, config) in seen {
                let expected_config = if generation == 1 {
                    &initial
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
        }
        Ok(())
    })();
    let reads = readers.stop();
    result?;
    // Every apply window had a load by every reader (a stall would be in `broken`).
    let (windows, observed) = progress.windows();
    prop_assert_eq!(observed, windows, "apply windows every reader loaded in");
    prop_assert!(reads >= READERS as u64, "{} loads", reads);
    drop(reloader);
    // One audit line per attempt (and the startup), and the chain verifies.
    let records = hotcfg::verify_audit_log(&audit)
        .map_err(|e| TestCaseError::fail(format!("the audit log does not verify: {e}")))?;
    prop_assert_eq!(records.len(), attempts + 1);
    Ok(())
}

#[test]
fn model_based_stress_with_readers() {
    let started = Instant::now();
    let strategy = (
        prop_oneof![Just(RestartPolicy::Reject), Just(RestartPolicy::Defer)],
        proptest::collection::vec(op(), 1..24),
    );
    props::check(
        "model-based stress",
        "HOTCFG_STRESS_CASES",
        12,
        &strategy,
        |(policy, ops)| run_model(policy, &ops),
    );
    eprintln!("model-based stress: {:?}", started.elapsed());
}
