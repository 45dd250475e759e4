//! The async API (issue 15): `reload().await` with async handlers mixed with sync ones, on
//! current-thread and multi-thread runtimes; the blocking calls made from inside a runtime.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotcfg::{
    ApplyContext, AsyncReloadSubscriber, AsyncScopeHandler, BoxError, BoxFuture, BuildError,
    Decision, Format, HotReload, MemorySource, PlanOptions, ReloadError, ReloadEvent, ReloadResult,
    Reloader, Rollback, ScopeHandler, SourceContent, StepFuture, Verdict,
};
use serde::{Deserialize, Serialize};
use tokio::runtime::{Builder, Runtime};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    max: u32,
    #[reload(scope = "pool")]
    pool: u32,
    /// Restart-only (the default class): a change is rejected under the default policy.
    #[serde(default)]
    listen: String,
}

const LIVE: &str = "max = 1\npool = 1\n";
/// How long any awaited condition may take before a test fails.
const BOUND: Duration = Duration::from_secs(30);

type Log = Arc<Mutex<Vec<String>>>;

/// What an async handler does in its apply.
#[derive(Clone, Copy, PartialEq)]
enum Act {
    Ok,
    Veto,
    Fail,
    Panic,
}

/// An async handler that awaits the runtime (a timer and a spawned task) in every step, as a
/// handler reconnecting a pool would, and logs "scope:step".
struct Pool {
    log: Log,
    act: Act,
}

impl Pool {
    async fn note(&self, cx: &ApplyContext<'_, Config>, step: &str) {
        // Needs the runtime's timer and its scheduler: fails if run where neither is driven.
        tokio::time::sleep(Duration::from_millis(1)).await;
        let spawned = tokio::spawn(async { 7 }).await.expect("a spawned task");
        assert_eq!(spawned, 7);
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{step}", cx.scope));
    }
}

impl AsyncScopeHandler<Config> for Pool {
    fn prepare<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        Box::pin(async move {
            self.note(cx, "prepare").await;
            if self.act == Act::Veto {
                return Err("the pool is draining".into());
            }
            Ok(())
        })
    }
    fn apply<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        Box::pin(async move {
            self.note(cx, "apply").await;
            match self.act {
                Act::Fail => Err("cannot connect".into()),
                Act::Panic => panic!("pool exploded"),
                _ => Ok(()),
            }
        })
    }
    fn rollback<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        Box::pin(async move {
            self.note(cx, "rollback").await;
            Ok(())
        })
    }
}

/// A sync handler logging "scope:step".
struct Limits {
    log: Log,
}

impl ScopeHandler<Config> for Limits {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:prepare", cx.scope));
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.log.lock().unwrap().push(format!("{}:apply", cx.scope));
        Ok(())
    }
    fn rollback(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:rollback", cx.scope));
        Ok(())
    }
}

fn runtimes() -> [(&'static str, Runtime); 2] {
    let current = Builder::new_current_thread().enable_all().build().unwrap();
    let multi = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    [("current_thread", current), ("multi_thread", multi)]
}

/// Runs the test body on each kind of runtime, bounded.
fn on_both_runtimes<F: Future<Output = ()>>(body: impl Fn(&'static str) -> F) {
    for (flavor, runtime) in runtimes() {
        runtime.block_on(async {
            tokio::time::timeout(BOUND, body(flavor))
                .await
                .unwrap_or_else(|_| panic!("{flavor}: the test did not finish within {BOUND:?}"));
        });
    }
}

/// An engine with the sync `limits` handler and the async `pool` handler; `pool` depends on
/// `limits`, so a pool change runs limits (sync) first, then pool (async). Built inside the
/// runtime, which it captures.
async fn engine(act: Act) -> (Reloader<Config>, MemorySource, Log) {
    let log = Log::default();
    let source = MemorySource::new("app.toml", Format::Toml, LIVE);
    let reloader = Reloader::<Config>::builder(source.clone())
        .handler("limits", Limits { log: log.clone() })
        .async_handler(
            "pool",
            Pool {
                log: log.clone(),
                act,
            },
        )
        .scope_depends_on("pool", &["limits"])
        .build_async()
        .await
        .unwrap();
    (reloader, source, log)
}

fn take(log: &Log) -> Vec<String> {
    std::mem::take(&mut log.lock().unwrap())
}

#[test]
fn an_awaited_reload_runs_sync_and_async_handlers_in_dependency_order() {
    on_both_runtimes(|flavor| async move {
        let (reloader, source, log) = engine(Act::Ok).await;
        source.set("max = 1\npool = 2\n");
        let event = reloader.reload().await;
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{flavor}: {event}"
        );
        assert_eq!(
            take(&log),
            [
                "limits:prepare",
                "pool:prepare",
                "limits:apply",
                "pool:apply"
            ],
            "{flavor}"
        );
        assert_eq!(reloader.handle().load().pool, 2, "{flavor}");
    });
}

#[test]
fn an_async_veto_rejects_and_applies_nothing() {
    on_both_runtimes(|flavor| async move {
        let (reloader, source, log) = engine(Act::Veto).await;
        source.set("max = 1\npool = 2\n");
        let event = reloader.reload().await;
        let ReloadResult::Rejected { reason, .. } = &event.result else {
            panic!("{flavor}: expected a veto, got {event}");
        };
        assert_eq!(reason, "vetoed by the `pool` handler: the pool is draining");
        assert_eq!(take(&log), ["limits:prepare", "pool:prepare"], "{flavor}");
        assert_eq!(reloader.handle().generation(), 1, "{flavor}");

        // The dry run that asks the handlers gives the same verdict, awaited.
        let candidate = SourceContent::single("c.toml", Format::Toml, "max = 1\npool = 3\n");
        let plan = reloader
            .plan_async(Ok(candidate), PlanOptions::new().run_prepare())
            .await;
        assert!(matches!(plan.decision, Decision::Reject { .. }), "{plan}");
        let verdicts = plan.prepare.expect("asked");
        assert!(
            matches!(verdicts[1].verdict, Verdict::Vetoed { .. }),
            "{flavor}"
        );
    });
}

/// The blocking dry run that asks handlers, called from runtime code: on a multi-thread runtime
/// it runs off the worker and asks both kinds; on a current-thread runtime with async handlers it
/// cannot, so it decides without asking them (and warns). Kills `delete !` in
/// `Reloader::plan_with` (cargo-mutants, issue 22): the handlers were asked on the runtime's own
/// thread. Bounded from outside the runtimes: with `refuses_blocking` replaced by `false` the
/// current-thread dry run waited for its own thread.
#[test]
fn a_blocking_dry_run_asking_handlers_from_runtime_code_never_blocks_the_runtime() {
    bounded("the dry run", dry_run_on_both_runtimes);
}

fn dry_run_on_both_runtimes() {
    on_both_runtimes(|flavor| async move {
        let (reloader, _source, log) = engine(Act::Ok).await;
        let candidate = SourceContent::single("c.toml", Format::Toml, "max = 1\npool = 3\n");
        let plan = reloader.plan_with(Ok(candidate), PlanOptions::new().run_prepare());
        assert!(matches!(plan.decision, Decision::Apply { .. }), "{plan}");
        if flavor == "multi_thread" {
            assert_eq!(plan.prepare.map(|v| v.len()), Some(2), "{flavor}: asked");
            assert_eq!(take(&log), ["limits:prepare", "pool:prepare"], "{flavor}");
        } else {
            assert!(plan.prepare.is_none(), "{flavor}: not asked");
            assert!(take(&log).is_empty(), "{flavor}");
        }
    });
}

#[test]
fn a_restart_only_change_or_an_invalid_file_is_refused_without_running_handlers() {
    on_both_runtimes(|flavor| async move {
        let (reloader, source, log) = engine(Act::Ok).await;
        source.set("max = 1\npool = 2\nlisten = \"0.0.0.0:80\"\n");
        let event = reloader.reload().await;
        let ReloadResult::Rejected { refused, .. } = &event.result else {
            panic!("{flavor}: expected the restart-only change rejected, got {event}");
        };
        assert_eq!(refused.len(), 1, "{flavor}: {event}");
        assert_eq!(refused[0].path.to_string(), "listen", "{flavor}: {event}");

        source.set("max = \"many\"\npool = 2\n");
        let event = reloader.reload().await;
        assert!(
            matches!(
                &event.result,
                ReloadResult::Failed {
                    error: ReloadError::Config(_),
                    rollback: Rollback::NotNeeded
                }
            ),
            "{flavor}: expected an invalid file refused, got {event}"
        );
        assert!(event.to_string().contains("max"), "{flavor}: {event}");

        assert_eq!(take(&log), Vec::<String>::new(), "{flavor}: no handler ran");
        assert_eq!(reloader.handle().generation(), 1, "{flavor}");
        assert_eq!(reloader.handle().load().pool, 1, "{flavor}");
    });
}

#[test]
fn an_async_failure_or_panic_rolls_back_both_kinds() {
    for act in [Act::Fail, Act::Panic] {
        on_both_runtimes(|flavor| async move {
            let (reloader, source, log) = engine(act).await;
            source.set("max = 2\npool = 2\n");
            let event = reloader.reload().await;
            let ReloadResult::Failed { error, rollback } = &event.result else {
                panic!("{flavor}: expected a failure, got {event}");
            };
            match (act, error) {
                (Act::Fail, ReloadError::Handler { scope, message }) => {
                    assert_eq!(
                        (scope.as_str(), message.as_str()),
                        ("pool", "cannot connect")
                    );
                }
                (Act::Panic, ReloadError::HandlerPanicked { scope, message }) => {
                    assert_eq!(
                        (scope.as_str(), message.as_str()),
                        ("pool", "pool exploded")
                    );
                }
                _ => panic!("{flavor}: unexpected error {error}"),
            }
            assert_eq!(
                *rollback,
                Rollback::Complete {
                    scopes: vec!["limits".into()]
                },
                "{flavor}"
            );
            let steps = take(&log);
            assert_eq!(steps.last().map(String::as_str), Some("limits:rollback"));
            assert_eq!(reloader.handle().load().max, 1, "{flavor}: nothing stored");
        });
    }
}

#[test]
fn awaited_reloads_coalesce_like_blocking_ones() {
    on_both_runtimes(|flavor| async move {
        let (reloader, source, _log) = engine(Act::Ok).await;
        source.set("max = 1\npool = 5\n");
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let reloader = reloader.clone();
                async move { reloader.reload().await }
            })
            .collect();
        let events = futures_join_all(calls).await;
        for event in &events {
            assert!(event.result.is_ok(), "{flavor}: {event}");
            assert_eq!(event.generation, 2, "{flavor}: {event}");
        }
        // One apply; the rest found its bytes (or shared its attempt): recorded once.
        let kinds: Vec<&str> = reloader.history().iter().map(|e| e.result.kind()).collect();
        assert_eq!(kinds, ["applied", "applied"], "{flavor}");
        assert!(reloader.requested_reloads() >= 8, "{flavor}");
    });
}

/// Awaits every future, polling them together (no extra crate: spawn each on the runtime).
async fn futures_join_all<T: Send + 'static>(
    futures: Vec<impl Future<Output = T> + Send + 'static>,
) -> Vec<T> {
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.expect("a reload task"));
    }
    out
}

/// The handler awaits until the 1 ms ticker has ticked `ticks` more times: only possible if the
/// current-thread runtime keeps running other tasks while the reload runs.
struct WaitsForTicks {
    ticks: Arc<AtomicUsize>,
    wanted: usize,
}

impl AsyncScopeHandler<Config> for WaitsForTicks {
    fn apply<'a>(&'a self, _: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        Box::pin(async move {
            let start = self.ticks.load(Ordering::SeqCst);
            let waited = tokio::time::timeout(BOUND, async {
                while self.ticks.load(Ordering::SeqCst) < start + self.wanted {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            });
            waited
                .await
                .map_err(|_| "the runtime's ticker stalled during the reload".into())
        })
    }
}

#[test]
fn a_current_thread_runtime_keeps_ticking_during_an_awaited_reload() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let ticks = Arc::new(AtomicUsize::new(0));
        let ticker = tokio::spawn({
            let ticks = Arc::clone(&ticks);
            async move {
                let mut interval = tokio::time::interval(Duration::from_millis(1));
                loop {
                    interval.tick().await;
                    ticks.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        let source = MemorySource::new("app.toml", Format::Toml, LIVE);
        let reloader = Reloader::<Config>::builder(source.clone())
            .async_handler(
                "pool",
                WaitsForTicks {
                    ticks: Arc::clone(&ticks),
                    wanted: 20,
                },
            )
            .build_async()
            .await
            .unwrap();
        source.set("max = 1\npool = 2\n");
        let event = reloader.reload().await;
        ticker.abort();
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{event}"
        );
    });
}

#[test]
fn a_handler_that_awaits_behaves_the_same_whoever_triggers() {
    let runtime = Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (reloader, source, log) = runtime.block_on(engine(Act::Ok));
    // From async code, awaited.
    source.set("max = 1\npool = 2\n");
    let awaited = runtime.block_on(reloader.reload());
    // From async code, the blocking call (it used to panic: a runtime inside a runtime).
    source.set("max = 1\npool = 3\n");
    let blocking = runtime.block_on(async { reloader.reload_now() });
    // From a plain thread (the watcher's kind).
    source.set("max = 1\npool = 4\n");
    let threaded = std::thread::scope(|s| s.spawn(|| reloader.reload_now()).join().unwrap());
    for event in [awaited, blocking, threaded] {
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{event}"
        );
    }
    assert_eq!(
        take(&log).len(),
        12,
        "limits and pool, prepare and apply, three times"
    );
    assert_eq!(reloader.handle().load().pool, 4);
}

/// Bounded from outside the runtime: were the call not refused, it would wait for the very
/// thread it blocks (cargo-mutants' `refuses_blocking` replaced by `false` hung here).
#[test]
fn the_blocking_call_on_a_current_thread_runtime_with_async_handlers_is_refused_clearly() {
    bounded("the blocking call", refused_on_a_current_thread_runtime);
}

/// Runs `test` on a thread of its own and fails if it has not finished within [`BOUND`]: a
/// blocking call that waits for its own runtime's thread stops that runtime's timers too, so
/// only a wait outside it can end the test.
fn bounded(what: &str, test: impl FnOnce() + Send + 'static) {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        test();
        let _ = done.send(());
    });
    match finished.recv_timeout(BOUND) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what} did not return within {BOUND:?}")
        }
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the test body failed"),
    }
}

fn refused_on_a_current_thread_runtime() {
    let runtime = Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (reloader, source, log) = engine(Act::Ok).await;
        source.set("max = 1\npool = 2\n");
        let event = reloader.reload_now();
        let ReloadResult::Failed { error, rollback } = &event.result else {
            panic!("expected a refusal, got {event}");
        };
        assert!(matches!(error, ReloadError::WouldBlockRuntime), "{error}");
        assert!(error.to_string().contains("reload().await"), "{error}");
        assert_eq!(*rollback, Rollback::NotNeeded);
        assert!(take(&log).is_empty(), "nothing was attempted");
        assert_eq!(reloader.history().len(), 1, "and nothing recorded");
        // So is the blocking build: the async handlers' `init` needs this thread.
        let log = Log::default();
        let error = Reloader::<Config>::builder(source.clone())
            .async_handler("pool", Pool { log, act: Act::Ok })
            .build()
            .unwrap_err();
        assert!(error.to_string().contains("build_async().await"), "{error}");
        // The awaited call works on the same runtime.
        let event = reloader.reload().await;
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{event}"
        );
    });
}

#[test]
fn the_blocking_call_inside_a_runtime_works_without_async_handlers() {
    for (flavor, runtime) in runtimes() {
        runtime.block_on(async {
            let log = Log::default();
            let source = MemorySource::new("app.toml", Format::Toml, LIVE);
            let reloader = Reloader::<Config>::builder(source.clone())
                .handler("limits", Limits { log: log.clone() })
                .build()
                .unwrap();
            source.set("max = 2\npool = 1\n");
            let event = reloader.reload_now();
            assert!(
                matches!(event.result, ReloadResult::Applied { .. }),
                "{flavor}: {event}"
            );
            assert_eq!(take(&log), ["limits:prepare", "limits:apply"], "{flavor}");
        });
    }
}

#[test]
fn async_handlers_need_a_runtime_at_build() {
    let source = MemorySource::new("app.toml", Format::Toml, LIVE);
    let log = Log::default();
    let error = Reloader::<Config>::builder(source.clone())
        .async_handler("pool", Pool { log, act: Act::Ok })
        .build()
        .unwrap_err();
    let BuildError::Setup(message) = &error else {
        panic!("expected a setup error, got {error:?}");
    };
    assert!(message.contains("tokio runtime"), "{message}");

    // Given explicitly, the handlers run on it even when built and reloaded outside it.
    let runtime = Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let log = Log::default();
    let reloader = Reloader::<Config>::builder(source.clone())
        .async_handler(
            "pool",
            Pool {
                log: log.clone(),
                act: Act::Ok,
            },
        )
        .runtime(runtime.handle().clone())
        .build()
        .unwrap();
    source.set("max = 1\npool = 2\n");
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(take(&log), ["pool:prepare", "pool:apply"]);
}

#[test]
fn an_async_closure_handler_applies() {
    on_both_runtimes(|flavor| async move {
        let seen = Arc::new(AtomicUsize::new(0));
        let source = MemorySource::new("app.toml", Format::Toml, LIVE);
        let reloader = Reloader::<Config>::builder(source.clone())
            .on_apply_async("pool", {
                let seen = Arc::clone(&seen);
                move |cx| {
                    let seen = Arc::clone(&seen);
                    Box::pin(async move {
                        tokio::task::yield_now().await;
                        seen.store(cx.new.pool as usize, Ordering::SeqCst);
                        Ok(())
                    })
                }
            })
            .build_async()
            .await
            .unwrap();
        source.set("max = 1\npool = 9\n");
        let event = reloader.reload().await;
        assert!(event.result.is_ok(), "{flavor}: {event}");
        assert_eq!(seen.load(Ordering::SeqCst), 9, "{flavor}");
    });
}

/// Forwards each event's generation; panics at `panic_at`; or never returns (`stuck`).
struct Forward {
    tx: tokio::sync::mpsc::UnboundedSender<u64>,
    panic_at: Option<u64>,
    stuck: bool,
}

impl AsyncReloadSubscriber for Forward {
    fn on_reload<'a>(&'a self, event: &'a ReloadEvent) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if self.stuck {
                std::future::pending::<()>().await;
            }
            if self.panic_at == Some(event.generation) {
                panic!("subscriber exploded");
            }
            let _ = self.tx.send(event.generation);
        })
    }
}

#[test]
fn async_subscribers_get_every_event_in_order_and_a_bad_one_delays_nothing() {
    on_both_runtimes(|flavor| async move {
        let (tx, mut fast) = tokio::sync::mpsc::unbounded_channel();
        let (panicky_tx, mut panicky) = tokio::sync::mpsc::unbounded_channel();
        let (stuck_tx, _stuck) = tokio::sync::mpsc::unbounded_channel();
        let source = MemorySource::new("app.toml", Format::Toml, LIVE);
        let reloader = Reloader::<Config>::builder(source.clone())
            .async_subscriber(Forward {
                tx: stuck_tx,
                panic_at: None,
                stuck: true,
            })
            .async_subscriber(Forward {
                tx: panicky_tx,
                panic_at: Some(2),
                stuck: false,
            })
            .async_subscriber(Forward {
                tx,
                panic_at: None,
                stuck: false,
            })
            .build_async()
            .await
            .unwrap();
        for pool in 2..=4 {
            source.set(format!("max = 1\npool = {pool}\n"));
            let event = reloader.reload().await;
            assert!(event.result.is_ok(), "{flavor}: {event}");
        }
        let mut got = Vec::new();
        while got.len() < 4 {
            got.push(fast.recv().await.expect("an event"));
        }
        assert_eq!(
            got,
            [1, 2, 3, 4],
            "{flavor}: the startup event, then each reload"
        );
        // The panicking one missed only the event it panicked on.
        let mut got = Vec::new();
        while got.len() < 3 {
            got.push(panicky.recv().await.expect("an event"));
        }
        assert_eq!(got, [1, 3, 4], "{flavor}");
    });
}
