//! Trying hard to break the engine and the daemon:
//!
//! - a model-based stress test: random sequences of edits (valid, invalid, restart-only, vetoed,
//!   failing, panicking, manual reloads, bursts from several threads) against a live engine with
//!   reader threads, each settled step checked against a simple model;
//! - the proptest twin of the fuzz target (`fuzz/`): bytes through load, validate, diff, plan;
//! - the task daemon under load: 200 reloads of every kind while clients submit and poll.
//!
//! CI runs fixed seeds and few cases; `HOTCFG_STRESS_CASES` and `HOTCFG_FUZZ_CASES` ask for more
//! (and `HOTCFG_STRESS_SEED` for another seed).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotcfg::{
    ApplyContext, BoxError, FileSource, HotReload, ReloadEvent, ReloadResult, Reloader,
    RestartPolicy, Rollback, ScopeHandler, Snapshot,
};
use hotcfg_tests::daemon::{Client, Daemon};
use hotcfg_tests::{wait_until, ReaderProgress, Sandbox};

use crate::props::{self, env_number};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// The model-based stress test.

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Model {
    #[reload(restart)]
    listen: u32,
    #[reload(scope = "a")]
    a: u32,
    #[reload(scope = "b")]
    b: u32,
}

const LISTEN: u32 = 7000;
const OTHER_LISTEN: u32 = 7001;
/// `b` values the `b` handler refuses in prepare, fails in apply, panics in apply.
const VETO: u32 = 1000;
const FAIL: u32 = 1001;
const PANIC: u32 = 1002;
/// `a` values at or above this break the validator.
const INVALID_A: u32 = 500;

fn render(m: &Model) -> String {
    format!("listen = {}\na = {}\nb = {}\n", m.listen, m.a, m.b)
}

/// A scope's subsystem: the value it runs with, and every version it applied by generation
/// (removed again on rollback), so readers' observations can be checked against commits.
struct Subsystem {
    field: fn(&Model) -> u32,
    value: Arc<AtomicU32>,
    tentative: Arc<Mutex<BTreeMap<u64, Model>>>,
    /// For the scope applied first: while its version is applied and not yet committed or
    /// rolled back, wait until every reader has loaded again (a stall is recorded as broken).
    readers_window: Option<(ReaderProgress, Arc<Mutex<Vec<String>>>)>,
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

#[derive(Clone, Debug)]
enum Op {
    /// A valid hot edit.
    Valid { a: u32, b: u32 },
    /// Not TOML, not the type, or broken validation.
    Invalid(u8),
    /// `listen` changes (with hot changes).
    RestartOnly { a: u32, b: u32 },
    /// `b`'s handler vetoes, fails or panics.
    Handler { a: u32, b: u32 },
    /// A reload with no edit.
    Manual,
    /// Several valid edits while three threads trigger reloads.
    Burst(Vec<(u32, u32)>),
}

fn op() -> impl Strategy<Value = Op> {
    let small = 0u32..6;
    prop_oneof![
        4 => (small.clone(), small.clone()).prop_map(|(a, b)| Op::Valid { a, b }),
        2 => (0u8..3).prop_map(Op::Invalid),
        2 => (small.clone(), small.clone()).prop_map(|(a, b)| Op::RestartOnly { a, b }),
        3 => (small.clone(), prop_oneof![Just(VETO), Just(FAIL), Just(PANIC)])
            .prop_map(|(a, b)| Op::Handler { a, b }),
        1 => Just(Op::Manual),
        2 => proptest::collection::vec((small.clone(), small), 2..6).prop_map(Op::Burst),
    ]
}

/// What the engine should hold.
#[derive(Clone, Debug)]
struct Expected {
    live: Model,
    generation: u64,
    /// The text the live state reflects (the engine compares hashes of it).
    last_text: String,
    pending: bool,
}

impl Expected {
    /// The result of reloading `text` (`None`: does not parse or validate), updating the model.
    fn reload(&mut self, text: &str, parsed: Option<Model>, policy: RestartPolicy) -> &'static str {
        if text == self.last_text {
            return "unchanged";
        }
        let Some(candidate) = parsed else {
            return "failed";
        };
        let restart = candidate.listen != self.live.listen;
        if restart && policy == RestartPolicy::Reject {
            return "rejected";
        }
        let effective = Model {
            listen: self.live.listen,
            ..candidate.clone()
        };
        if candidate == self.live {
            self.last_text = text.to_string();
            self.pending = false;
            return "unchanged";
        }
        if effective == self.live {
            self.last_text = text.to_string();
            self.pending = true;
            return "applied";
        }
        match effective.b {
            VETO => return "rejected",
            FAIL | PANIC => return "failed",
            _ => {}
        }
        self.live = effective;
        self.generation += 1;
        self.last_text = text.to_string();
        self.pending = restart;
        "applied"
    }
}

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Readers: each loads the live version in a loop, checks its generation never goes back and its
/// values were never refused, and records every generation it sees with the version it saw.
/// `progress` counts their loads (the `a` handler waits on it); `broken` collects violations.
struct Readers {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<(u64, Model)>>>,
    broken: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

/// Reader threads of the model-based stress test.
const READERS: usize = 3;

impl Readers {
    /// Starts the readers and returns once each has loaded at least once.
    fn start(
        reloader: &Reloader<Model>,
        progress: &ReaderProgress,
        broken: &Arc<Mutex<Vec<String>>>,
    ) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..READERS)
            .map(|reader| {
                let handle = reloader.handle();
                let (stop, seen, broken) = (stop.clone(), seen.clone(), broken.clone());
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let mut last = 0u64;
                    let mut reads = 0u64;
                    // Stop is checked after a load: every reader loads at least once (and
                    // `start` waits for that first load before the first step).
                    loop {
                        let snapshot: Arc<Snapshot<Model>> = handle.snapshot();
                        let generation = snapshot.generation();
                        if generation < last {
                            broken
                                .lock()
                                .unwrap()
                                .push(format!("generation went back: {last} -> {generation}"));
                        }
                        if snapshot.a >= INVALID_A || snapshot.b >= VETO {
                            broken.lock().unwrap().push(format!(
                                "a refused version is live: {:?}",
                                snapshot.config()
                            ));
                        }
                        if generation != last {
                            seen.lock()
                                .unwrap()
                                .push((generation, snapshot.config().clone()));
                            last = generation;
                        }
                        reads += 1;
                        progress.read(reader);
                        if reads.is_multiple_of(64) {
                            std::thread::yield_now();
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    reads
                })
            })
            .collect();
        progress.wait_until_all_started();
        Readers {
            stop,
            seen,
            broken: broken.clone(),
            threads,
        }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().unwrap()).sum()
    }
}

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

/// Checks that the `returned` events missing from `broadcast` were rightly left unrecorded: only
/// a reload finding the bytes the last recorded event reported live (issue 14) is not recorded
/// again, and it answers `unchanged`. Attempts run one at a time, so their start times order
/// them. Returns the last recorded event, for the next step.
fn check_unrecorded(
    mut last_recorded: Arc<ReloadEvent>,
    broadcast: &[Arc<ReloadEvent>],
    returned: &[Arc<ReloadEvent>],
    at: &str,
) -> Result<Arc<ReloadEvent>, TestCaseError> {
    let mut timeline: Vec<(&Arc<ReloadEvent>, bool)> =
        broadcast.iter().map(|e| (e, true)).collect();
    for event in returned {
        if !timeline.iter().any(|(seen, _)| Arc::ptr_eq(seen, event)) {
            timeline.push((event, false));
        }
    }
    timeline.sort_by_key(|(event, _)| event.timestamp);
    let sha = |event: &ReloadEvent| event.source.as_ref().map(|s| s.sha256.clone());
    for (event, recorded) in timeline {
        if recorded {
            last_recorded = Arc::clone(event);
            continue;
        }
        prop_assert!(
            event.result == ReloadResult::Unchanged
                && last_recorded.result.is_ok()
                && sha(event).is_some()
                && sha(event) == sha(&last_recorded),
            "{}: a returned event was not recorded: {} (the last recorded one: {})",
            at,
            event,
            last_recorded
        );
    }
    Ok(last_recorded)
}

/// The generations of the distinct events among `events` that applied something, in order.
fn distinct_applied_generations(events: &[Arc<ReloadEvent>]) -> Vec<u64> {
    let mut applied: Vec<&Arc<ReloadEvent>> = Vec::new();
    for event in events {
        let changed =
            matches!(&event.result, ReloadResult::Applied { applied, .. } if !applied.is_empty());
        if changed && !applied.iter().any(|seen| Arc::ptr_eq(seen, event)) {
            applied.push(event);
        }
    }
    let mut generations: Vec<u64> = applied.iter().map(|e| e.generation).collect();
    generations.sort_unstable();
    generations
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

// ---------------------------------------------------------------------------------------------
// The fuzz target's twin.

/// A valid configuration in each format (the first byte picks the format).
fn seeds() -> Vec<Vec<u8>> {
    let toml = hotcfg_tests::fuzz::LIVE.to_string();
    let json = r#"{"listen": "127.0.0.1:7000", "token": "t", "limits": {"max": 2, "queue": 3},
"templates": {"p": "x"}, "loops": {"a": {"iterations": 1, "template": "p"}},
"tls": {"cert": "c", "key": "k"}}"#;
    let yaml = "listen: 127.0.0.1:7000\nlimits: {max: 5, queue: 10}\ntemplates:\n  progress: x\nloops:\n  build: {iterations: 10, template: progress}\n";
    vec![
        [&[0u8][..], toml.as_bytes()].concat(),
        [&[100u8][..], toml.replace("max = 4", "max = 6").as_bytes()].concat(),
        [&[100u8][..], json.as_bytes()].concat(),
        [&[200u8][..], yaml.as_bytes()].concat(),
        [&[0u8][..], toml.replace("7000", "7001").as_bytes()].concat(),
    ]
}

/// Mutations of the seeds: bytes inserted, removed, duplicated, overwritten.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0usize..4,
        any::<usize>(),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    );
    (0..seeds().len(), proptest::collection::vec(edit, 0..6)).prop_map(|(seed, edits)| {
        let mut data = seeds()[seed].clone();
        for (kind, at, len, bytes) in edits {
            let at = 1 + at % data.len().max(1);
            let at = at.min(data.len());
            let end = (at + len % 16).min(data.len());
            match kind {
                0 => {
                    data.splice(at..at, bytes);
                }
                1 => {
                    data.drain(at..end);
                }
                2 => {
                    let copy = data[at..end].to_vec();
                    data.splice(at..at, copy);
                }
                _ => {
                    for (i, byte) in bytes.into_iter().enumerate() {
                        if let Some(slot) = data.get_mut(at + i) {
                            *slot = byte;
                        }
                    }
                }
            }
        }
        data
    })
}

/// Structured hostile shapes: deep nesting, aliases, duplicates, long runs.
fn shaped() -> impl Strategy<Value = Vec<u8>> {
    (0u8..6, 1usize..200, any::<u8>()).prop_map(|(shape, n, format)| {
        let body = match shape {
            0 => format!("x = {}1{}", "[".repeat(n), "]".repeat(n)),
            1 => format!("{} = 1", vec!["k"; n].join(".")),
            2 => format!("x: {}1{}", "{a: ".repeat(n), "}".repeat(n)),
            3 => {
                let mut t = String::from("l0: &l0 [1,1,1]\n");
                for i in 1..(n % 12 + 1) {
                    t.push_str(&format!("l{i}: &l{i} [*l{p},*l{p},*l{p}]\n", p = i - 1));
                }
                t
            }
            4 => "limits = { max = 1, max = 2 }\n".repeat(n % 4 + 1),
            _ => format!("{{\"listen\": \"{}\"}}", "\\u0000".repeat(n)),
        };
        [&[format][..], body.as_bytes()].concat()
    })
}

#[test]
fn fuzz_twin_bytes_through_load_validate_diff_and_plan() {
    let started = Instant::now();
    let outcomes = Mutex::new(BTreeMap::<String, u32>::new());
    let check = |data: &[u8]| -> Result<(), TestCaseError> {
        let begun = Instant::now();
        let outcome = hotcfg_tests::fuzz::config_bytes(data);
        prop_assert!(
            begun.elapsed() < Duration::from_secs(5),
            "{:?} for {} bytes",
            begun.elapsed(),
            data.len()
        );
        *outcomes
            .lock()
            .unwrap()
            .entry(format!("{outcome:?}"))
            .or_default() += 1;
        Ok(())
    };
    // Everything the fuzzer keeps (its seed corpus, and any crash found and fixed) runs here too.
    let fuzz_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for dir in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(fuzz_dir.join(dir)) {
            for entry in entries.flatten().filter(|e| e.file_name() != ".gitkeep") {
                check(&std::fs::read(entry.path()).unwrap()).unwrap();
            }
        }
    }
    let cases = env_number("HOTCFG_FUZZ_CASES", 300) as u32;
    for (name, strategy) in [
        (
            "bytes",
            proptest::collection::vec(any::<u8>(), 0..256).boxed(),
        ),
        ("mutated", mutated().boxed()),
        ("shaped", shaped().boxed()),
    ] {
        props::check(name, "HOTCFG_FUZZ_CASES", cases, &strategy, |data| {
            check(&data)
        });
    }
    let outcomes = outcomes.into_inner().unwrap();
    eprintln!("fuzz twin: {outcomes:?} in {:?}", started.elapsed());
    for reached in ["Invalid", "Apply", "Unchanged", "Reject", "NotUtf8"] {
        assert!(
            outcomes.contains_key(reached),
            "no input reached {reached}: {outcomes:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The daemon under load.

const TOKEN: &str = "l0ad-t0ken";

/// The daemon's configuration for edit number `n`, of kind `kind`.
fn daemon_text(n: usize, kind: &str) -> String {
    let mut text = format!(
        r#"api_token = "{TOKEN}"

[daemon]
listen = "127.0.0.1:0"

[storage]
data_dir = "data"

[limits]
max_concurrent = {max}
queue_capacity = {capacity}
submits_per_second = 100000

[templates]
progress = "P {{id}} {{iteration}} v{n}"
done = "D {{id}}"

[monitoring]
log_level = "{level}"
status_interval_secs = 1

[loops.build]
max_iterations = 3
delay_ms = {delay}
template = "progress"

[loops.short]
max_iterations = 3
delay_ms = 1
template = "progress"

[loops.pin]
max_iterations = 100000000
delay_ms = 20
template = "progress"
"#,
        max = 3 + n % 3,
        capacity = 20 + n % 7,
        level = ["info", "warn", "debug"][n % 3],
        delay = 1 + n % 2,
    );
    match kind {
        "invalid" => {
            text = text.replace(
                &format!("max_concurrent = {}", 3 + n % 3),
                "max_concurrent = 0",
            )
        }
        "syntax" => text.push_str("[limits\n"),
        "veto" => text = text.split("[loops.pin]").next().unwrap().to_string(),
        "restart" => text = text.replace("data_dir = \"data\"", "data_dir = \"elsewhere\""),
        _ => {}
    }
    text
}

#[derive(Default)]
struct Tally {
    queued: Vec<u64>,
    full: u64,
    statuses: u64,
    problems: Vec<String>,
}

#[test]
fn the_daemon_under_load_loses_nothing_across_200_reloads() {
    let started = Instant::now();
    let daemon = Daemon::start(crate::daemon::binary(), "reject", &daemon_text(0, "valid"));
    let mut control = daemon.client(TOKEN);
    let pin = control.call("submit pin")["queued"].as_u64().unwrap();
    // The pinned loop runs through every reload: it must never restart or stop.
    wait_until("the pinned loop to start", Duration::from_secs(20), || {
        control.call("status")["loops"]
            .as_array()
            .is_some_and(|loops| loops.iter().any(|l| l["id"] == pin))
    });
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledged submits so far: durable submits are slower than the reloads, so the clients
    // keep submitting after the last reload until they have been answered often enough.
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tallies: Vec<_> = (0..4)
        .map(|worker| {
            let mut client = daemon.client(TOKEN);
            let stop = stop.clone();
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let kind = if (i + worker).is_multiple_of(2) {
                        "build"
                    } else {
                        "short"
                    };
                    match client.try_call(&format!("submit {kind}")) {
                        Ok(reply) => match (reply["queued"].as_u64(), reply["error"].as_str()) {
                            (Some(id), None) => {
                                tally.queued.push(id);
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                            (None, Some(e)) if e.starts_with("queue full") => tally.full += 1,
                            _ => tally.problems.push(format!("submit: {reply}")),
                        },
                        Err(e) => {
                            tally.problems.push(format!("submit: {e}"));
                            break;
                        }
                    }
                    match client.try_call("status") {
                        Ok(reply) if reply["generation"].is_u64() && reply["loops"].is_array() => {
                            tally.statuses += 1
                        }
                        Ok(reply) => tally.problems.push(format!("status: {reply}")),
                        Err(e) => {
                            tally.problems.push(format!("status: {e}"));
                            break;
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                (tally, client)
            })
        })
        .collect();

    let config = daemon.sandbox.path("taskdaemon.toml");
    let mut live_sha = hotcfg_tests::sha256_hex(daemon_text(0, "valid").as_bytes());
    let mut pin_iterations = 0;
    let mut results = BTreeMap::<String, u32>::new();
    let (mut slowest_reload, mut reload_replies) = (Duration::ZERO, Duration::ZERO);
    for n in 1..=200 {
        let kind = match n % 8 {
            0..=3 => "valid",
            4 => "invalid",
            5 => "veto",
            6 => "restart",
            _ => "syntax",
        };
        let text = daemon_text(n, kind);
        write_atomically(&config, &text);
        let asked = Instant::now();
        let reply = control.call("reload");
        let took = asked.elapsed();
        slowest_reload = slowest_reload.max(took);
        reload_replies += took;
        let result = reply["result"].as_str().unwrap_or_default().to_string();
        let error = reply["error"].as_str().unwrap_or_default();
        let ok = match kind {
            "valid" => {
                // Applied by this reload, or by the watcher just before it.
                daemon.assert_reload_made_live(&reply, &text);
                true
            }
            "invalid" => result == "failed" && error.contains("`limits.max_concurrent`"),
            "syntax" => result == "failed" && error.contains("invalid TOML"),
            "veto" => result == "rejected" && error.contains("loop type `pin` is in use"),
            _ => result == "rejected" && error.contains("need a restart: storage.data_dir"),
        };
        assert!(ok, "reload {n} ({kind}): {reply}");
        assert!(reply["summary"].is_string(), "{reply}");
        *results.entry(format!("{kind}: {result}")).or_default() += 1;
        if kind == "valid" {
            live_sha = hotcfg_tests::sha256_hex(text.as_bytes());
        }
        let status = control.call("status");
        assert_eq!(
            status["config_sha256"],
            live_sha.as_str(),
            "after reload {n} ({kind})"
        );
        let pinned = status["loops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == pin)
            .unwrap_or_else(|| panic!("the pinned loop is gone after reload {n}: {status}"));
        assert_eq!(
            pinned["started_generation"], 1,
            "the pinned loop restarted: {status}"
        );
        let iterations = pinned["iterations"].as_u64().unwrap();
        assert!(
            iterations >= pin_iterations,
            "the pinned loop went back: {status}"
        );
        pin_iterations = iterations;
    }
    let reload_time = started.elapsed();
    wait_until(
        "the clients to have more than 100 submits acknowledged",
        Duration::from_secs(60),
        || acknowledged.load(Ordering::Relaxed) > 100,
    );
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut clients: Vec<Client> = Vec::new();
    for handle in tallies {
        let (t, client) = handle.join().unwrap();
        tally.queued.extend(t.queued);
        tally.full += t.full;
        tally.statuses += t.statuses;
        tally.problems.extend(t.problems);
        clients.push(client);
    }
    assert!(tally.problems.is_empty(), "{:?}", tally.problems);
    assert!(
        tally.queued.len() > 100,
        "only {} items queued",
        tally.queued.len()
    );

    // Every queued item runs to its end exactly once; no connection was dropped.
    let mut status = control.call("status");
    wait_until(
        "the queue to drain and the loops to finish",
        Duration::from_secs(60),
        || {
            status = control.call("status");
            status["queue_len"] == 0 && status["loops"].as_array().unwrap().len() == 1
        },
    );
    assert_eq!(status["finished"], tally.queued.len() as u64, "{status}");
    assert_eq!(status["connections"], 5, "{status}");
    for client in &mut clients {
        assert!(client.call("status")["generation"].is_u64());
    }
    let ids: BTreeSet<u64> = tally.queued.iter().copied().collect();
    assert_eq!(ids.len(), tally.queued.len(), "an id was handed out twice");
    let data = daemon.sandbox.path("data");
    for id in &ids {
        let log = std::fs::read_to_string(data.join(format!("loops/{id}.log"))).unwrap();
        let iterations: Vec<&str> = log
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap_or_default())
            .collect();
        assert_eq!(
            iterations,
            ["1", "2", "3"],
            "loop {id} did not run 1..=3 once:\n{log}"
        );
        let done = std::fs::read_to_string(data.join(format!("finished/{id}.txt"))).unwrap();
        assert_eq!(done.trim(), format!("D {id}"));
    }
    let records = hotcfg::verify_audit_log(daemon.sandbox.path("audit.jsonl")).unwrap();
    assert!(records.len() > 200, "{} audit records", records.len());
    eprintln!(
        "daemon under load: 200 reloads in {reload_time:?} ({results:?}; `reload` replies took {:?} on average, {slowest_reload:?} at most, the engine {:.1} ms); {} items queued, {} refused as full, {} status replies, {} audit records; {:?} in all",
        reload_replies / 200,
        records.iter().map(|r| r.duration_ms).sum::<f64>() / records.len() as f64,
        tally.queued.len(),
        tally.full,
        tally.statuses,
        records.len(),
        started.elapsed()
    );
}
