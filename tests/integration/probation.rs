//! Probation and commit-confirmed (issue 17, part A): a committed change is judged during a
//! window and reverted automatically (through the handlers, as a new generation, recorded with
//! its reason) when unhealthy or unconfirmed; the reverted content is quarantined. No sleeps:
//! every wait is for the probation's own end (`wait_probation`, `probation_updates`), bounded.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use hotcfg::audit::AuditRecord;
use hotcfg::{
    ApplyContext, AsyncHealthCheck, BoxError, BoxFuture, ConfirmError, FileSource, Format, Health,
    HotReload, MemorySource, ProbationStatus, Probe, ReloadResult, Reloader, ReloaderBuilder,
    RevertReason, ScopeHandler, Trigger,
};
use hotcfg_tests::{sha256_hex, Sandbox};
use serde::{Deserialize, Serialize};

mod quarantine;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "pool")]
    workers: u32,
}

const GOOD: &str = "workers = 4";
const BAD: &str = "workers = 0";
/// How long any awaited condition may take before a test fails.
const BOUND: Duration = Duration::from_secs(30);
/// A window short enough for a test, with checks every few milliseconds.
const WINDOW: Duration = Duration::from_millis(150);
const INTERVAL: Duration = Duration::from_millis(5);

type Log = Arc<Mutex<Vec<String>>>;

/// Logs `step:workers`; its `apply` fails (or its `prepare` vetoes) for `refuse` workers.
struct Pool {
    log: Log,
    refuse: Option<u32>,
    veto: bool,
}

impl ScopeHandler<Config> for Pool {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.note("prepare", cx);
        if self.veto && self.refuse == Some(cx.new.workers) {
            return Err("4 workers cannot come back now".into());
        }
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.note("apply", cx);
        if !self.veto && self.refuse == Some(cx.new.workers) {
            return Err("the pool refuses 4 workers".into());
        }
        Ok(())
    }
    fn rollback(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.note("rollback", cx);
        Ok(())
    }
}

impl Pool {
    fn note(&self, step: &str, cx: &ApplyContext<'_, Config>) {
        let entry = format!("{step}:{}", cx.new.workers);
        self.log.lock().unwrap().push(entry);
    }
}

/// Unhealthy with no workers.
fn needs_workers(probe: &Probe<Config>) -> Health {
    match probe.new.workers {
        0 => Health::unhealthy("no workers: every loop fails"),
        _ => Health::Healthy,
    }
}

fn engine(source: &MemorySource, log: &Log) -> ReloaderBuilder<Config> {
    Reloader::<Config>::builder(source.clone())
        .handler(
            "pool",
            Pool {
                log: Arc::clone(log),
                refuse: None,
                veto: false,
            },
        )
        .probation_interval(INTERVAL)
}

fn memory() -> (MemorySource, Log) {
    let source = MemorySource::new("app.toml", Format::Toml, GOOD);
    (source, Log::default())
}

/// An engine on [`memory`] whose change to [`BAD`] probation reverted (and quarantined).
fn bad_reverted() -> (MemorySource, Reloader<Config>) {
    let (source, log) = memory();
    let reloader = engine(&source, &log)
        .probation(Duration::from_secs(60), needs_workers)
        .build()
        .unwrap();
    source.set(BAD);
    reloader.reload_now();
    let status = settle(&reloader);
    assert!(
        matches!(status, ProbationStatus::Reverted { .. }),
        "{status:?}"
    );
    (source, reloader)
}

fn settle(reloader: &Reloader<Config>) -> ProbationStatus {
    let status = reloader.wait_probation(BOUND);
    assert!(
        !matches!(status, ProbationStatus::OnProbation { .. }),
        "probation did not end within {BOUND:?}: {status:?}"
    );
    status
}

/// The metrics recorder for counters counted on the probation thread (a local recorder sees
/// only its own thread). A snapshot drains the counters, so every snapshot is added to running
/// totals; totals only grow, and tests compare before and after.
fn reverts_counted(name: &str, reason: &str) -> u64 {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
    type Totals = Mutex<BTreeMap<(String, String), u64>>;
    static RECORDER: OnceLock<(Snapshotter, Totals)> = OnceLock::new();
    let (snapshotter, totals) = RECORDER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::set_global_recorder(recorder).expect("no other global recorder in the tests");
        (snapshotter, Totals::default())
    });
    let mut totals = totals.lock().unwrap();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        if let DebugValue::Counter(n) = value {
            for label in key.key().labels() {
                let entry = (key.key().name().to_string(), label.value().to_string());
                *totals.entry(entry).or_default() += n;
            }
        }
    }
    totals
        .get(&(name.to_string(), reason.to_string()))
        .copied()
        .unwrap_or_default()
}

#[test]
fn a_healthy_change_stays_after_its_window() {
    let (source, log) = memory();
    let checks = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&checks);
    let reloader = engine(&source, &log)
        .probation(WINDOW, move |probe: &Probe<Config>| {
            counted.fetch_add(1, Ordering::SeqCst);
            assert_eq!(
                probe.previous.workers, 4,
                "the version a revert would restore"
            );
            Health::Healthy
        })
        .build()
        .unwrap();
    source.set("workers = 8");
    reloader.reload_now();
    assert!(matches!(
        reloader.probation_status(),
        ProbationStatus::OnProbation {
            generation: 2,
            revert_to: 1,
            ..
        }
    ));
    let status = settle(&reloader);
    let ProbationStatus::Passed {
        generation: 2,
        checks: made,
    } = status
    else {
        panic!("expected a pass, got {status:?}");
    };
    assert!(made >= 1, "checked at least at the end of the window");
    assert_eq!(checks.load(Ordering::SeqCst), made);
    assert_eq!(reloader.handle().load().workers, 8);
    assert_eq!(reloader.handle().generation(), 2);
    assert!(reloader.quarantined().is_empty());
}

#[test]
fn an_unhealthy_change_is_reverted_through_the_handlers_and_quarantined() {
    let (source, log) = memory();
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let before = reverts_counted("hotcfg_reverts_total", "unhealthy");
    let reloader = engine(&source, &log)
        .probation(Duration::from_secs(60), needs_workers)
        .audit_log(&audit)
        .build()
        .unwrap();
    source.set(BAD);
    let applied = reloader.reload_now();
    assert!(matches!(applied.result, ReloadResult::Applied { .. }));

    let status = settle(&reloader);
    let ProbationStatus::Reverted { revert, live: 3 } = status else {
        panic!("expected a revert within the window, got {status:?}");
    };
    assert_eq!((revert.reverted, revert.restored), (2, 1));
    assert_eq!(
        revert.reason,
        RevertReason::Unhealthy("no workers: every loop fails".into())
    );
    // Through the same protocol, as a new generation.
    assert_eq!(
        *log.lock().unwrap(),
        ["prepare:0", "apply:0", "prepare:4", "apply:4"]
    );
    let handle = reloader.handle();
    assert_eq!((handle.generation(), handle.load().workers), (3, 4));
    // Recorded with its reason: the event, the audit log, the metric.
    let event = reloader.last_event();
    assert!(matches!(&event.trigger, Trigger::Probation(r) if *r == revert));
    assert!(matches!(event.result, ReloadResult::Applied { .. }));
    assert_eq!(
        event.source.as_ref().unwrap().sha256,
        sha256_hex(GOOD.as_bytes())
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let last: AuditRecord = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last.trigger.kind, "probation");
    assert_eq!(last.trigger.reverted, Some(2));
    assert_eq!(
        last.trigger.reason.as_deref(),
        Some("unhealthy: no workers: every loop fails")
    );
    assert_eq!((last.generation, last.result.as_str()), (3, "applied"));
    hotcfg::verify_audit_log(&audit).expect("the chain holds");
    assert!(reverts_counted("hotcfg_reverts_total", "unhealthy") > before);

    // Quarantined by sha256: the same bytes are refused, once recorded, then quietly.
    let quarantined = reloader.quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].sha256, sha256_hex(BAD.as_bytes()));
    let history = reloader.history().len();
    let again = reloader.reload_now();
    let ReloadResult::Rejected { reason, .. } = &again.result else {
        panic!("quarantined content applied again: {again}");
    };
    assert!(reason.contains("is quarantined"), "{reason}");
    assert!(reason.contains("generation 2 was reverted"), "{reason}");
    assert_eq!(
        reloader.history().len(),
        history,
        "the revert already said so"
    );
    assert_eq!(handle.generation(), 3);
    // Other bytes are applied (and on probation again); the good bytes back are unchanged.
    source.set("workers = 6");
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Applied { .. }
    ));
    assert_eq!(handle.load().workers, 6);
}

#[test]
fn content_equal_to_the_restored_version_is_unchanged_and_released_content_applies() {
    let (source, reloader) = bad_reverted();
    source.set(GOOD);
    assert_eq!(reloader.reload_now().result, ReloadResult::Unchanged);
    source.set(BAD);
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Rejected { .. }
    ));
    assert!(reloader.release_quarantine(&sha256_hex(BAD.as_bytes())));
    assert!(!reloader.release_quarantine(&sha256_hex(BAD.as_bytes())));
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Applied { .. }
    ));
}

#[test]
fn a_failing_revert_is_reported_with_what_stays_live() {
    for veto in [false, true] {
        let (source, log) = memory();
        let before = reverts_counted("hotcfg_revert_failures_total", "unhealthy");
        let pool = Pool {
            log: Arc::clone(&log),
            refuse: Some(4),
            veto,
        };
        let reloader = Reloader::<Config>::builder(source.clone())
            .handler("pool", pool)
            .probation(Duration::from_secs(60), needs_workers)
            .probation_interval(INTERVAL)
            .build()
            .unwrap();
        source.set(BAD);
        reloader.reload_now();
        let status = settle(&reloader);
        let ProbationStatus::RevertFailed {
            revert,
            live,
            error,
        } = status
        else {
            panic!("expected a failed revert, got {status:?}");
        };
        assert_eq!((revert.reverted, live), (2, 2));
        let why = if veto {
            "vetoed by the `pool` handler: 4 workers cannot come back now"
        } else {
            "handler for scope `pool` failed: the pool refuses 4 workers"
        };
        assert!(error.starts_with(why), "{error}");
        assert!(
            error.ends_with("generation 2 (the change on probation) stays live"),
            "{error}"
        );
        let handle = reloader.handle();
        assert_eq!((handle.generation(), handle.load().workers), (2, 0));
        let event = reloader.last_event();
        assert!(matches!(event.trigger, Trigger::Probation(_)));
        assert_eq!(event.generation, 2, "the event names the live generation");
        assert!(!event.result.is_ok(), "{event}");
        assert!(reverts_counted("hotcfg_revert_failures_total", "unhealthy") > before);
        assert!(reloader.quarantined().is_empty(), "nothing was reverted");
    }
}

#[test]
fn a_check_that_panics_or_hangs_counts_as_unhealthy() {
    let (source, log) = memory();
    let reloader = engine(&source, &log)
        .probation(Duration::from_secs(60), |probe: &Probe<Config>| {
            assert!(probe.new.workers != 0, "the check itself broke");
            Health::Healthy
        })
        .build()
        .unwrap();
    source.set(BAD);
    reloader.reload_now();
    let status = settle(&reloader);
    assert!(
        matches!(&status, ProbationStatus::Reverted { revert, .. }
            if matches!(&revert.reason, RevertReason::CheckPanicked(m) if m.contains("the check itself broke"))),
        "{status:?}"
    );

    // A check that never answers: released at the end, so its thread ends too.
    let (release, hang) = mpsc::channel::<()>();
    let hang = Mutex::new(hang);
    let (source, log) = memory();
    let timeout = Duration::from_millis(50);
    let reloader = engine(&source, &log)
        .probation(Duration::from_secs(60), move |_: &Probe<Config>| {
            let _ = hang.lock().unwrap().recv();
            Health::Healthy
        })
        .health_timeout(timeout)
        .build()
        .unwrap();
    source.set("workers = 5");
    reloader.reload_now();
    let status = settle(&reloader);
    assert!(
        matches!(&status, ProbationStatus::Reverted { revert, .. }
            if revert.reason == RevertReason::CheckTimedOut(timeout)),
        "{status:?}"
    );
    assert_eq!(reloader.handle().load().workers, 4);
    drop(release);
}

#[test]
fn a_new_edit_during_probation_restarts_it_and_a_revert_restores_the_last_trusted_version() {
    let (source, log) = memory();
    let sick = Arc::new(AtomicBool::new(false));
    let verdict = Arc::clone(&sick);
    let reloader = engine(&source, &log)
        .probation(
            Duration::from_secs(60),
            move |_: &Probe<Config>| match verdict.load(Ordering::SeqCst) {
                true => Health::unhealthy("error rate up"),
                false => Health::Healthy,
            },
        )
        .build()
        .unwrap();
    source.set("workers = 5");
    reloader.reload_now();
    source.set("workers = 6");
    reloader.reload_now();
    assert!(
        matches!(
            reloader.probation_status(),
            ProbationStatus::OnProbation {
                generation: 3,
                revert_to: 1,
                ..
            }
        ),
        "{:?}",
        reloader.probation_status()
    );
    sick.store(true, Ordering::SeqCst);
    let status = settle(&reloader);
    let ProbationStatus::Reverted { revert, live: 4 } = status else {
        panic!("expected a revert, got {status:?}");
    };
    assert_eq!((revert.reverted, revert.restored), (3, 1));
    assert_eq!(
        reloader.handle().load().workers,
        4,
        "the last trusted version"
    );
    // Only the live content is quarantined; the superseded one may come back (on probation).
    let quarantined = reloader.quarantined();
    assert_eq!(quarantined.len(), 1);
    assert_eq!(quarantined[0].sha256, sha256_hex(b"workers = 6"));
}

#[test]
fn a_failed_or_rejected_attempt_during_probation_leaves_it_running() {
    let (source, log) = memory();
    let reloader = engine(&source, &log)
        .probation(Duration::from_secs(60), |_: &Probe<Config>| Health::Healthy)
        .build()
        .unwrap();
    source.set("workers = 5");
    reloader.reload_now();
    source.set("workers = = broken");
    assert!(!reloader.reload_now().result.is_ok());
    assert!(matches!(
        reloader.probation_status(),
        ProbationStatus::OnProbation { generation: 2, .. }
    ));
}

#[test]
fn after_a_crash_during_probation_the_restarted_process_trusts_what_the_source_holds() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", GOOD);
    let audit = sandbox.path("audit.jsonl");
    let start = || {
        Reloader::<Config>::builder(FileSource::new(&path))
            .probation(Duration::from_secs(60), needs_workers)
            .confirm_within(Duration::from_secs(60))
            .audit_log(&audit)
            .build()
            .unwrap()
    };
    let reloader = start();
    sandbox.write("app.toml", "workers = 7");
    reloader.reload_now();
    assert!(matches!(
        reloader.probation_status(),
        ProbationStatus::OnProbation { generation: 2, .. }
    ));
    // The process dies: nothing more is written; the checker thread ends with the engine.
    drop(reloader);

    let restarted = start();
    assert_eq!(restarted.handle().load().workers, 7);
    assert_eq!(restarted.handle().generation(), 1);
    assert_eq!(restarted.probation_status(), ProbationStatus::Idle);
    assert!(matches!(
        restarted.confirm(),
        Err(ConfirmError::NothingPending { live: 1 })
    ));
    // The log shows the change committed, never confirmed nor reverted, then the restart.
    let text = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<AuditRecord> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.trigger.kind.as_str(), r.result.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("startup", "applied"),
            ("manual", "applied"),
            ("startup", "applied")
        ]
    );
}

#[test]
fn commit_confirmed_a_change_confirmed_in_time_stays() {
    let (source, log) = memory();
    let reloader = engine(&source, &log)
        .confirm_within(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(matches!(
        reloader.confirm(),
        Err(ConfirmError::NothingPending { live: 1 })
    ));
    source.set("workers = 9");
    reloader.reload_now();
    let status = reloader.probation_status();
    assert!(
        matches!(
            status,
            ProbationStatus::OnProbation {
                generation: 2,
                confirmed: false,
                confirm_by: Some(_),
                ..
            }
        ),
        "{status:?}"
    );
    let other = reloader.confirm_generation(5).unwrap_err();
    assert_eq!(
        other.to_string(),
        "generation 5 does not await confirmation; generation 2 does"
    );
    assert_eq!(reloader.confirm_generation(2), Ok(2));
    assert!(matches!(
        settle(&reloader),
        ProbationStatus::Passed { generation: 2, .. }
    ));
    assert_eq!(reloader.handle().load().workers, 9);
    assert!(matches!(
        reloader.confirm(),
        Err(ConfirmError::NothingPending { live: 2 })
    ));
}

#[test]
fn commit_confirmed_an_unconfirmed_change_reverts_and_a_late_confirm_is_refused() {
    let (source, log) = memory();
    let before = reverts_counted("hotcfg_reverts_total", "unconfirmed");
    let deadline = Duration::from_millis(30);
    let reloader = engine(&source, &log)
        .confirm_within(deadline)
        .build()
        .unwrap();
    source.set("workers = 9");
    reloader.reload_now();
    let status = settle(&reloader);
    let ProbationStatus::Reverted { revert, live: 3 } = status else {
        panic!("expected a revert, got {status:?}");
    };
    assert_eq!(revert.reason, RevertReason::Unconfirmed(deadline));
    assert_eq!(reloader.handle().load().workers, 4);
    let late = reloader.confirm().unwrap_err();
    assert!(matches!(
        late,
        ConfirmError::AlreadyReverted { live: 3, .. }
    ));
    assert_eq!(
        late.to_string(),
        "too late: generation 2 was already reverted (not confirmed within 30ms); generation 3 is live"
    );
    assert!(reverts_counted("hotcfg_reverts_total", "unconfirmed") > before);
}

#[test]
fn confirm_without_commit_confirmed_is_refused() {
    let (source, log) = memory();
    let reloader = engine(&source, &log).build().unwrap();
    assert_eq!(reloader.confirm(), Err(ConfirmError::NotEnabled));
    assert_eq!(reloader.probation_status(), ProbationStatus::Idle);
    let health_only = engine(&source, &log)
        .probation(WINDOW, needs_workers)
        .build()
        .unwrap();
    assert_eq!(health_only.confirm(), Err(ConfirmError::NotEnabled));
}

/// An async check that needs the runtime's timer, unhealthy with no workers.
struct AsyncNeedsWorkers;

impl AsyncHealthCheck<Config> for AsyncNeedsWorkers {
    fn check<'a>(&'a self, probe: &'a Probe<Config>) -> BoxFuture<'a, Health> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            needs_workers(probe)
        })
    }
}

fn on_each_runtime(test: impl Fn() -> BoxFuture<'static, ()>) {
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    current.block_on(test());
    let multi = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    multi.block_on(test());
}

#[test]
fn an_async_health_check_passes_a_healthy_change_and_reverts_an_unhealthy_one() {
    on_each_runtime(|| {
        Box::pin(async {
            let (source, log) = memory();
            let reloader = engine(&source, &log)
                .probation_async(WINDOW, AsyncNeedsWorkers)
                .build_async()
                .await
                .unwrap();
            let mut updates = reloader.probation_updates();
            source.set("workers = 8");
            reloader.reload().await;
            let passed = tokio::time::timeout(
                BOUND,
                updates.wait_for(|s| matches!(s, ProbationStatus::Passed { .. })),
            )
            .await
            .expect("the healthy change passes within the bound")
            .unwrap()
            .clone();
            assert!(matches!(
                passed,
                ProbationStatus::Passed { generation: 2, .. }
            ));

            source.set(BAD);
            reloader.reload().await;
            let reverted = tokio::time::timeout(
                BOUND,
                updates.wait_for(|s| matches!(s, ProbationStatus::Reverted { .. })),
            )
            .await
            .expect("the unhealthy change is reverted within the bound")
            .unwrap()
            .clone();
            assert!(
                matches!(&reverted, ProbationStatus::Reverted { revert, live: 4 } if revert.restored == 2),
                "{reverted:?}"
            );
            assert_eq!(reloader.handle().load().workers, 8);
        })
    });
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct WithCert {
    /// A file the configuration names: its edits reload too.
    #[reload(scope = "tls", watch)]
    cert: std::path::PathBuf,
}

#[test]
fn a_change_in_a_named_file_alone_cannot_be_reverted_and_says_so() {
    let sandbox = Sandbox::new();
    let cert = sandbox.write("cert.pem", "good certificate\n");
    let path = sandbox.write(
        "app.toml",
        &format!("cert = {:?}\n", cert.display().to_string()),
    );
    let read = cert.clone();
    let reloader = Reloader::<WithCert>::builder(FileSource::new(&path))
        .on_apply("tls", |_| Ok(()))
        .probation(Duration::from_secs(60), move |_: &Probe<WithCert>| {
            match std::fs::read_to_string(&read).unwrap_or_default().as_str() {
                "bad certificate\n" => Health::unhealthy("handshakes fail"),
                _ => Health::Healthy,
            }
        })
        .probation_interval(INTERVAL)
        .build()
        .unwrap();
    sandbox.write("cert.pem", "bad certificate\n");
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Applied { .. }
    ));
    let status = reloader.wait_probation(BOUND);
    let ProbationStatus::RevertFailed { live: 2, error, .. } = &status else {
        panic!("expected a revert that cannot restore the file, got {status:?}");
    };
    assert!(error.contains("files it names"), "{error}");
    // The source's own bytes are the trusted ones: nothing is quarantined.
    assert!(reloader.quarantined().is_empty());
}
