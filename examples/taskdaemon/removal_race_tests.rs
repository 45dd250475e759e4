//! Issue 12: a reload that removes a loop type must never strand an acknowledged job of that
//! type ("loop type vanished"). Each test holds one window of the race open with a barrier (a
//! held database, a handler that waits, an item popped by hand) and checks the invariant: every
//! acknowledged job's type is still live, whatever the reload's outcome.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotcfg::{ApplyContext, BoxError, Format, MemorySource, Pipeline, ReloadResult, Reloader};
use hotcfg::{ReloadEvent, Rollback, ScopeHandler};

use crate::config::{TaskDaemonConfig, DEFAULT_CONFIG};
use crate::handlers::LoopsHandler;
use crate::work::Work;

/// The longest any test waits for an event.
const LIMIT: Duration = Duration::from_secs(20);

/// The default configuration without loop type `report` (its last section).
fn without_report() -> String {
    DEFAULT_CONFIG
        .split("[loops.report]")
        .next()
        .expect("the default configuration defines `report`")
        .to_string()
}

/// A handler whose `apply` says it has begun, then waits for the test to let it go on.
struct Gate {
    entered: Mutex<mpsc::Sender<()>>,
    release: Mutex<mpsc::Receiver<()>>,
}

impl ScopeHandler<TaskDaemonConfig> for Gate {
    fn apply(&self, _cx: &ApplyContext<'_, TaskDaemonConfig>) -> Result<(), BoxError> {
        let _ = self.entered.lock().unwrap().send(());
        self.release
            .lock()
            .unwrap()
            .recv_timeout(LIMIT)
            .map_err(|_| "the test never released the gate")?;
        Ok(())
    }
}

/// The daemon's work and its loops handler on an in-memory source. Scope order for a change
/// to `loops` and `monitoring`: `limits`, `loops`, `monitoring`; a [`Gate`] holds one of them.
struct Fixture {
    _dir: tempfile::TempDir,
    source: MemorySource,
    reloader: Reloader<TaskDaemonConfig>,
    work: Arc<Work>,
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

impl Fixture {
    /// No handler waits: `templates`, gated here, is not touched by these reloads.
    fn ungated() -> Fixture {
        Fixture::new("templates")
    }

    fn new(gated_scope: &str) -> Fixture {
        Fixture::on(tempfile::tempdir().unwrap(), DEFAULT_CONFIG, gated_scope)
    }

    /// Starts on `text`, with the state database in `dir`.
    fn on(dir: tempfile::TempDir, text: &str, gated_scope: &str) -> Fixture {
        let source = MemorySource::new("taskdaemon.toml", Format::Toml, text);
        let work = Work::new();
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let reloader = Reloader::<TaskDaemonConfig>::builder(source.clone())
            .pipeline(
                Pipeline::new()
                    .scope_depends_on("loops", &["limits"])
                    .scope_depends_on("monitoring", &["loops"]),
            )
            .handler(
                "loops",
                LoopsHandler {
                    work: Arc::clone(&work),
                },
            )
            .handler(
                gated_scope,
                Gate {
                    entered: Mutex::new(entered_tx),
                    release: Mutex::new(release_rx),
                },
            )
            .build()
            .unwrap();
        work.attach(reloader.handle(), dir.path().to_path_buf())
            .unwrap();
        Fixture {
            _dir: dir,
            source,
            reloader,
            work,
            entered,
            release,
        }
    }

    /// Starts a reload to `text` on a thread of its own; `wait_gate` then holds it in the gate.
    fn reload_in_background(&self, text: String) -> std::thread::JoinHandle<Arc<ReloadEvent>> {
        self.source.set(text);
        let reloader = self.reloader.clone();
        std::thread::spawn(move || reloader.reload_now())
    }

    fn wait_gate(&self) {
        self.entered
            .recv_timeout(LIMIT)
            .expect("the reload reached the gated handler");
    }

    fn open_gate(&self) {
        // The gate may already have given up (its own timeout); the reload says so.
        let _ = self.release.send(());
    }

    /// The invariant: every acknowledged job's loop type is live, so the job can run.
    fn assert_acknowledged_types_are_live(&self, acknowledged: &[u64], event: &ReloadEvent) {
        let live = self.work.handle().snapshot();
        for id in acknowledged {
            let job = self.work.store().job(*id).unwrap().expect("stored");
            assert!(
                live.loops.contains_key(&job.loop_type),
                "job {id} was acknowledged, but its loop type `{}` is gone; the reload: {event}",
                job.loop_type
            );
        }
    }
}

fn wait_for(what: &str, mut condition: impl FnMut() -> bool) {
    let began = Instant::now();
    while !condition() {
        assert!(began.elapsed() < LIMIT, "waited {LIMIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn join<T>(thread: std::thread::JoinHandle<T>) -> T {
    thread.join().expect("the thread did not panic")
}

/// Window 1: the submit passed the type check and waits for its commit (the group commit is
/// busy) while the reload runs from start to end.
#[test]
fn a_submit_still_committing_keeps_its_loop_type() {
    let fixture = Fixture::ungated();
    let held = fixture.work.store().hold_writes();
    let work = Arc::clone(&fixture.work);
    let submit = std::thread::spawn(move || work.submit("report"));
    wait_for("the submit to hold its place while it commits", || {
        fixture.work.queue.reserved() == 1
    });

    fixture.source.set(without_report());
    let event = fixture.reloader.reload_now();
    drop(held);
    let acknowledged: Vec<u64> = join(submit).into_iter().collect();
    assert_eq!(acknowledged.len(), 1, "the submit was refused; {event}");
    fixture.assert_acknowledged_types_are_live(&acknowledged, &event);
    assert!(
        matches!(event.result, ReloadResult::Rejected { .. }),
        "{event}"
    );
}

/// Window 2: the reload's prepare found no user; a submit completes before the loops handler
/// applies (the `limits` handler, applied first, is held).
#[test]
fn a_submit_between_prepare_and_apply_fails_the_reload() {
    let fixture = Fixture::new("limits");
    let reload = fixture.reload_in_background(without_report());
    fixture.wait_gate();
    let acknowledged = vec![fixture
        .work
        .submit("report")
        .expect("the type is still live")];
    fixture.open_gate();
    let event = join(reload);
    fixture.assert_acknowledged_types_are_live(&acknowledged, &event);
    let ReloadResult::Failed { error, rollback } = &event.result else {
        panic!("expected the reload to fail: {event}");
    };
    let error = error.to_string();
    assert!(error.contains("loop type `report` is in use"), "{error}");
    assert!(
        matches!(rollback, Rollback::Complete { scopes } if scopes == &["limits"]),
        "{rollback}"
    );
}

/// Window 3: the loops handler has applied the removal, the store of the new configuration is
/// still to come (the `monitoring` handler, applied after it, is held): a submit of the type
/// being removed is refused, not acknowledged.
#[test]
fn a_submit_after_the_removal_applied_is_refused() {
    let fixture = Fixture::new("monitoring");
    let text = without_report().replace("log_level = \"info\"", "log_level = \"debug\"");
    let reload = fixture.reload_in_background(text);
    fixture.wait_gate();
    let submitted = fixture.work.submit("report");
    fixture.open_gate();
    let event = join(reload);
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    let acknowledged: Vec<u64> = submitted.iter().copied().collect();
    fixture.assert_acknowledged_types_are_live(&acknowledged, &event);
    let refusal = submitted.unwrap_err();
    assert!(refusal.contains("loop type `report`"), "{refusal}");
}

/// Window 4: the dispatcher has popped the item and not yet started it.
#[test]
fn an_item_between_pop_and_start_keeps_its_loop_type() {
    let fixture = Fixture::ungated();
    let acknowledged = vec![fixture.work.submit("report").unwrap()];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let popped = runtime
        .block_on(async { tokio::time::timeout(LIMIT, fixture.work.queue.pop()).await })
        .expect("the queued item")
        .expect("the queue is open");

    fixture.source.set(without_report());
    let event = fixture.reloader.reload_now();
    fixture.assert_acknowledged_types_are_live(&acknowledged, &event);
    assert!(
        matches!(event.result, ReloadResult::Rejected { .. }),
        "{event}"
    );
    drop(popped);
}

/// A job restored at start whose loop type the configuration no longer defines (it was removed
/// while the daemon was stopped) is parked, not dropped, and runs once a reload defines it again.
#[test]
fn a_restored_job_of_an_undefined_type_is_parked_until_the_type_returns() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let resumed = store.submit("report").unwrap();
    store.checkpoint(resumed, 2).unwrap();
    let queued = store.submit("report").unwrap();
    drop(store);
    let fixture = Fixture::on(dir, &without_report(), "templates");
    assert_eq!(fixture.work.restore().unwrap(), 2);
    assert_eq!(
        fixture.work.parked.list(),
        vec![
            (resumed, "report".to_string(), 2),
            (queued, "report".to_string(), 0)
        ]
    );
    assert_eq!(fixture.work.queue.len(), 0);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_time()
        .build()
        .unwrap();
    runtime.spawn(Arc::clone(&fixture.work).dispatch());
    fixture
        .source
        .set(DEFAULT_CONFIG.replace("delay_ms = 500", "delay_ms = 1"));
    let event = fixture.reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    wait_for("both parked jobs to finish", || {
        [resumed, queued].iter().all(|id| {
            let job = fixture.work.store().job(*id).unwrap().unwrap();
            job.state == "finished"
        })
    });
    assert!(fixture.work.parked.list().is_empty());
    for id in [resumed, queued] {
        let job = fixture.work.store().job(id).unwrap().unwrap();
        assert_eq!((job.iterations, job.completions), (5, 1), "{job:?}");
    }
}
