//! The reload engine: every result path, handler ordering and rollback, coalescing, readers,
//! audit log, metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotcfg::{
    ApplyContext, BoxError, BuildError, Decision, FileSource, HotReload, Loader, ReloadError,
    ReloadResult, Reloader, RestartPolicy, Rollback, ScopeHandler, Stage, Trigger, Violations,
};
use hotcfg_tests::{ReaderProgress, Rendezvous, Sandbox};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct AppConfig {
    #[reload(restart)]
    listen: String,
    #[reload(nested)]
    limits: Limits,
    #[reload(scope = "loops")]
    loops: BTreeMap<String, u32>,
    #[reload(scope = "templates")]
    templates: BTreeMap<String, String>,
    #[reload(scope = "auth", secret)]
    token: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "limits")]
struct Limits {
    max: u32,
    queue: u32,
}

fn config_text(listen: &str, max: u32, loops: &[(&str, u32)], token: &str) -> String {
    let mut text = format!(
        "listen = \"{listen}\"\ntoken = \"{token}\"\n\n[limits]\nmax = {max}\nqueue = 10\n\n[templates]\nstatus = \"{{{{id}}}}\"\n\n[loops]\n"
    );
    for (name, iterations) in loops {
        text.push_str(&format!("{name} = {iterations}\n"));
    }
    text
}

fn base() -> String {
    config_text("127.0.0.1:7000", 4, &[("fast", 10)], "s3cret-token")
}

fn validate(config: &AppConfig, v: &mut Violations) {
    v.check(config.limits.max >= 1, "limits.max", "must be at least 1");
    v.check(
        config.limits.queue >= config.limits.max,
        "limits.queue",
        "must be at least limits.max",
    );
}

/// Records every handler step as "scope:step" in one shared log.
#[derive(Clone, Default)]
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.log.lock().unwrap())
    }
    fn push(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
}

struct Recording {
    rec: Recorder,
    veto: Option<&'static str>,
    fail: bool,
    panic: bool,
}

impl Recording {
    fn ok(rec: &Recorder) -> Self {
        Recording {
            rec: rec.clone(),
            veto: None,
            fail: false,
            panic: false,
        }
    }
}

impl ScopeHandler<AppConfig> for Recording {
    fn prepare(&self, cx: &ApplyContext<'_, AppConfig>) -> Result<(), BoxError> {
        self.rec.push(format!("{}:prepare", cx.scope));
        match self.veto {
            Some(reason) => Err(reason.into()),
            None => Ok(()),
        }
    }
    fn apply(&self, cx: &ApplyContext<'_, AppConfig>) -> Result<(), BoxError> {
        let paths: Vec<&str> = cx.changes.iter().map(|c| c.path.as_str()).collect();
        self.rec
            .push(format!("{}:apply[{}]", cx.scope, paths.join(",")));
        if self.panic {
            panic!("handler exploded");
        }
        if self.fail {
            return Err("device busy".into());
        }
        Ok(())
    }
    fn rollback(&self, cx: &ApplyContext<'_, AppConfig>) -> Result<(), BoxError> {
        self.rec.push(format!("{}:rollback", cx.scope));
        Ok(())
    }
}

fn builder(sandbox: &Sandbox) -> hotcfg::ReloaderBuilder<AppConfig> {
    let path = sandbox.write("app.toml", &base());
    Reloader::<AppConfig>::builder(FileSource::new(path)).validator(validate)
}

#[test]
fn a_hot_change_is_applied_and_becomes_visible() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("limits", Recording::ok(&rec))
        .build()
        .unwrap();
    let handle = reloader.handle();
    assert_eq!(handle.generation(), 1);

    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 8, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Applied {
        applied,
        pending_restart,
        ..
    } = &event.result
    else {
        panic!("expected success, got {event}");
    };
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].path, "limits.max");
    assert_eq!(applied[0].old.as_deref(), Some("4"));
    assert_eq!(applied[0].new.as_deref(), Some("8"));
    assert!(pending_restart.is_empty());
    assert_eq!(event.generation, 2);
    assert_eq!(event.trigger, Trigger::Manual);
    assert_eq!(handle.load().limits.max, 8);
    assert_eq!(handle.generation(), 2);
    assert_eq!(rec.take(), ["limits:prepare", "limits:apply[limits.max]"]);
}

#[test]
fn identical_bytes_and_equal_values_are_unchanged_and_run_nothing() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("limits", Recording::ok(&rec))
        .build()
        .unwrap();
    let event = reloader.reload_now();
    assert_eq!(event.result, ReloadResult::Unchanged);
    // A comment changes the bytes but no value.
    sandbox.write("app.toml", &format!("# a comment\n{}", base()));
    let event = reloader.reload_now();
    assert_eq!(event.result, ReloadResult::Unchanged, "{event}");
    assert_eq!(reloader.handle().generation(), 1);
    assert!(rec.take().is_empty());
}

#[test]
fn restart_only_changes_are_rejected_under_the_reject_policy() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("limits", Recording::ok(&rec))
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7001", 8, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Rejected { reason, refused } = &event.result else {
        panic!("expected rejection, got {event}");
    };
    assert!(reason.contains("need a restart: listen"), "{reason}");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].path, "listen");
    // Nothing applied: not even the hot change that came with it.
    let live = reloader.handle().load_full_config();
    assert_eq!(live.limits.max, 4);
    assert_eq!(live.listen, "127.0.0.1:7000");
    assert!(rec.take().is_empty());
    assert_eq!(event.changes.len(), 2, "the event shows every change");
}

trait LoadFull {
    fn load_full_config(&self) -> AppConfig;
}
impl LoadFull for hotcfg::Handle<AppConfig> {
    fn load_full_config(&self) -> AppConfig {
        self.snapshot().config().clone()
    }
}

#[test]
fn restart_only_changes_are_deferred_and_reported_pending_under_defer() {
    let sandbox = Sandbox::new();
    let reloader = builder(&sandbox)
        .policy(RestartPolicy::Defer)
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7001", 8, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Applied {
        applied,
        pending_restart,
        warnings,
    } = &event.result
    else {
        panic!("expected success, got {event}");
    };
    assert_eq!(applied.len(), 1);
    assert_eq!(pending_restart[0].path, "listen");
    assert!(warnings[0].contains("deferred until restart: listen"));
    let live = reloader.handle().load_full_config();
    assert_eq!(live.limits.max, 8, "the hot change is live");
    assert_eq!(
        live.listen, "127.0.0.1:7000",
        "the restart-only field keeps its running value"
    );
    assert_eq!(reloader.pending_restart().len(), 1);

    // A restart-only change alone: nothing to store, still pending.
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7002", 8, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    assert_eq!(
        event.result.pending_restart()[0].new.as_deref(),
        Some("\"127.0.0.1:7002\"")
    );
    assert_eq!(reloader.handle().generation(), 2);

    // The file matches the running value again: nothing pending.
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 8, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    assert_eq!(event.result, ReloadResult::Unchanged, "{event}");
    assert!(reloader.pending_restart().is_empty());
}

#[test]
fn identical_bytes_after_a_deferred_only_reload_are_unchanged() {
    // A reload that only defers restart-only changes stores nothing, so the live snapshot still
    // names the old bytes; the engine must compare with the bytes it last saw (issue 22).
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .policy(RestartPolicy::Defer)
        .handler("limits", Recording::ok(&rec))
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7001", 4, &[("fast", 10)], "s3cret-token"),
    );
    let deferred = reloader.reload_now();
    let ReloadResult::Applied {
        applied,
        pending_restart,
        ..
    } = &deferred.result
    else {
        panic!("expected a deferral, got {deferred}");
    };
    assert!(applied.is_empty(), "{deferred}");
    assert_eq!(pending_restart[0].path, "listen");

    let again = reloader.reload_now();
    assert_eq!(again.result, ReloadResult::Unchanged, "{again}");
    assert!(again.changes.is_empty(), "{again}");
    assert_eq!(reloader.handle().generation(), 1);
    assert_eq!(reloader.pending_restart().len(), 1, "still pending");
    assert!(rec.take().is_empty(), "no handler ran");
    // The deferral's event already says these bytes are what the engine follows: the repeat is
    // not recorded again (issue 14).
    let results: Vec<&str> = reloader.history().iter().map(|e| e.result.kind()).collect();
    assert_eq!(results, ["applied", "applied"]);
}

#[test]
fn a_validation_failure_names_file_line_and_key_and_changes_nothing() {
    let sandbox = Sandbox::new();
    let reloader = builder(&sandbox).build().unwrap();
    let path = sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 0, &[("fast", 10)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Failed {
        error: ReloadError::Config(err),
        rollback: Rollback::NotNeeded,
    } = &event.result
    else {
        panic!("expected a validation failure, got {event}");
    };
    assert_eq!(err.stage, Stage::Validate);
    assert_eq!(
        err.to_string(),
        format!(
            "invalid configuration: {}:5: `limits.max`: must be at least 1",
            path.display()
        )
    );
    assert_eq!(reloader.handle().load().limits.max, 4);
    assert_eq!(reloader.handle().generation(), 1);
}

#[test]
fn syntax_and_type_errors_name_line_and_column() {
    let sandbox = Sandbox::new();
    let reloader = builder(&sandbox).build().unwrap();
    let path = sandbox.write("app.toml", "listen = \"a\"\n[limits\nmax = 1\n");
    let event = reloader.reload_now();
    let text = event.to_string();
    assert!(
        text.contains(&format!("{}:2:", path.display())) && text.contains("invalid TOML"),
        "{text}"
    );
    sandbox.write("app.toml", &base().replace("max = 4", "max = \"four\""));
    let event = reloader.reload_now();
    let ReloadResult::Failed {
        error: ReloadError::Config(err),
        ..
    } = &event.result
    else {
        panic!("expected a parse failure, got {event}");
    };
    assert_eq!(err.stage, Stage::Parse);
    let problem = &err.problems[0];
    assert_eq!(problem.key.as_deref(), Some("limits.max"));
    assert_eq!(problem.line, Some(5));
    assert_eq!(
        problem.source.as_deref(),
        Some(path.display().to_string().as_str())
    );
    assert_eq!(reloader.handle().load().limits.max, 4);
}

#[test]
fn a_missing_file_at_startup_fails_fast_with_the_path() {
    let sandbox = Sandbox::new();
    let path = sandbox.path("missing.toml");
    let err = Reloader::<AppConfig>::builder(FileSource::new(&path))
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read configuration: {}: file not found",
            path.display()
        )
    );
}

#[test]
fn a_veto_rejects_the_reload_before_anything_is_applied() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("limits", Recording::ok(&rec))
        .handler(
            "loops",
            Recording {
                veto: Some("loop type `fast` is used by 2 running loops"),
                ..Recording::ok(&rec)
            },
        )
        .scope_depends_on("loops", &["limits"])
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 8, &[], "s3cret-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Rejected { reason, refused } = &event.result else {
        panic!("expected a veto, got {event}");
    };
    assert_eq!(
        reason,
        "vetoed by the `loops` handler: loop type `fast` is used by 2 running loops"
    );
    assert_eq!(refused[0].path, "loops.fast");
    assert_eq!(
        rec.take(),
        ["limits:prepare", "loops:prepare"],
        "no apply ran"
    );
    assert_eq!(reloader.handle().load().limits.max, 4);
}

#[test]
fn handlers_run_in_dependency_order_and_roll_back_in_reverse_on_error() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("loops", Recording::ok(&rec))
        .handler("limits", Recording::ok(&rec))
        .handler("templates", Recording::ok(&rec))
        .handler(
            "auth",
            Recording {
                fail: true,
                ..Recording::ok(&rec)
            },
        )
        .scope_depends_on("loops", &["limits", "templates"])
        .scope_depends_on("auth", &["loops"])
        .build()
        .unwrap();
    // A loops change runs its dependencies first, even though they did not change.
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 4, &[("fast", 11)], "s3cret-token"),
    );
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(
        rec.take(),
        [
            "limits:prepare",
            "templates:prepare",
            "loops:prepare",
            "limits:apply[]",
            "templates:apply[]",
            "loops:apply[loops.fast]",
        ]
    );
    // An auth change fails after its dependencies applied: they roll back in reverse order.
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 4, &[("fast", 11)], "other-token"),
    );
    let event = reloader.reload_now();
    let ReloadResult::Failed {
        error: ReloadError::Handler { scope, message },
        rollback: Rollback::Complete { scopes },
    } = &event.result
    else {
        panic!("expected a handler failure, got {event}");
    };
    assert_eq!((scope.as_str(), message.as_str()), ("auth", "device busy"));
    assert_eq!(scopes, &["loops", "templates", "limits"]);
    let log = rec.take();
    assert_eq!(
        &log[4..],
        [
            "limits:apply[]",
            "templates:apply[]",
            "loops:apply[]",
            "auth:apply[token]",
            "loops:rollback",
            "templates:rollback",
            "limits:rollback",
        ]
    );
    assert_eq!(reloader.handle().generation(), 2);
    assert_eq!(reloader.handle().load().token, "s3cret-token");
}

#[test]
fn a_panicking_handler_is_rolled_back_and_the_engine_keeps_working() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("limits", Recording::ok(&rec))
        .handler(
            "templates",
            Recording {
                panic: true,
                ..Recording::ok(&rec)
            },
        )
        .build()
        .unwrap();
    let mut text = config_text("127.0.0.1:7000", 8, &[("fast", 10)], "s3cret-token");
    text = text.replace("status = \"{{id}}\"", "status = \"#{{id}}\"");
    sandbox.write("app.toml", &text);
    let event = reloader.reload_now();
    let ReloadResult::Failed {
        error: ReloadError::HandlerPanicked { scope, message },
        rollback: Rollback::Complete { .. },
    } = &event.result
    else {
        panic!("expected a caught panic, got {event}");
    };
    assert_eq!(
        (scope.as_str(), message.as_str()),
        ("templates", "handler exploded")
    );
    assert_eq!(
        rec.take(),
        [
            "limits:prepare",
            "templates:prepare",
            "limits:apply[limits.max]",
            "templates:apply[templates.status]",
            "limits:rollback",
        ],
        "the panicking handler is not rolled back, the one applied before it is"
    );
    assert_eq!(reloader.handle().load().limits.max, 4);
    // The engine still works: a later good change applies.
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 9, &[("fast", 10)], "s3cret-token"),
    );
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Applied { .. }
    ));
    assert_eq!(reloader.handle().load().limits.max, 9);
}

#[test]
fn triggers_during_a_reload_coalesce_into_exactly_one_more() {
    let sandbox = Sandbox::new();
    let entered = Arc::new(Rendezvous::new(2));
    let release = Arc::new(Rendezvous::new(2));
    let applies = Arc::new(AtomicUsize::new(0));
    let block_first = Arc::new(AtomicBool::new(true));
    let reloader = {
        let (entered, release, applies, block_first) = (
            entered.clone(),
            release.clone(),
            applies.clone(),
            block_first.clone(),
        );
        builder(&sandbox)
            .on_apply("limits", move |_| {
                applies.fetch_add(1, Ordering::SeqCst);
                if block_first.swap(false, Ordering::SeqCst) {
                    entered.wait("the test to see the first reload in its handler");
                    release.wait("the test to release the first reload");
                }
                Ok(())
            })
            .build()
            .unwrap()
    };
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 5, &[("fast", 10)], "s3cret-token"),
    );
    let first = {
        let reloader = reloader.clone();
        std::thread::spawn(move || reloader.reload_now())
    };
    entered.wait("the first reload to enter its handler");
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 7, &[("fast", 10)], "s3cret-token"),
    );
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let reloader = reloader.clone();
            std::thread::spawn(move || reloader.trigger(Trigger::Signal))
        })
        .collect();
    // Let the waiters take their tickets before the first reload finishes.
    hotcfg_tests::wait_until("three triggers to queue", Duration::from_secs(10), || {
        reloader_requests(&reloader) >= 4
    });
    release.wait("the first reload to take the release");
    let first = first.join().unwrap();
    let results: Vec<_> = waiters.into_iter().map(|w| w.join().unwrap()).collect();
    assert_eq!(first.generation, 2);
    assert_eq!(
        applies.load(Ordering::SeqCst),
        2,
        "one reload plus exactly one more"
    );
    for event in &results {
        assert_eq!(
            event.generation, 3,
            "every waiter sees the newest content applied"
        );
    }
    assert_eq!(reloader.handle().load().limits.max, 7);
    assert_eq!(reloader.history().len(), 3, "startup + two reloads");
}

fn reloader_requests(reloader: &Reloader<AppConfig>) -> u64 {
    reloader.requested_reloads()
}

#[test]
fn readers_keep_their_snapshot_across_swaps() {
    let sandbox = Sandbox::new();
    let reloader = builder(&sandbox).build().unwrap();
    let handle = reloader.handle();
    let limits = handle.project(|c: &AppConfig| &c.limits);
    let mut changes = handle.subscribe();
    let held = handle.snapshot();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 6, &[("fast", 10)], "s3cret-token"),
    );
    reloader.reload_now();
    assert_eq!(held.limits.max, 4, "the held snapshot is the old version");
    assert_eq!(held.generation(), 1);
    assert_eq!(handle.load().limits.max, 6);
    assert_eq!(limits.load().max, 6, "the projection sees the new version");
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().generation(), 2);
}

#[test]
fn readers_never_observe_a_rolled_back_config() {
    let sandbox = Sandbox::new();
    // Readers check every version they load; the `limits` handler waits, while its change is
    // applied and not yet committed or rolled back, until every reader has loaded again, so
    // each round has reads inside the window a rolled-back version could leak through.
    let progress = ReaderProgress::new(3);
    let stalls = Arc::new(Mutex::new(Vec::<String>::new()));
    // Any max of 13 or more is refused by the `loops` handler, after `limits` applied.
    let reloader = {
        let (progress, stalls) = (progress.clone(), stalls.clone());
        builder(&sandbox)
            .on_apply("limits", move |cx: &ApplyContext<'_, AppConfig>| {
                let before = progress.counts();
                let what = format!("while generation {} is applied", cx.generation);
                if let Err(stall) = progress.wait_for_reads_since(&before, &what) {
                    stalls.lock().unwrap().push(stall);
                }
                Ok(())
            })
            .on_apply("loops", |cx: &ApplyContext<'_, AppConfig>| {
                if cx.new.limits.max >= 13 {
                    Err("too many".into())
                } else {
                    Ok(())
                }
            })
            .scope_depends_on("loops", &["limits"])
            .build()
            .unwrap()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let seen_refused = Arc::new(Mutex::new(BTreeSet::<u32>::new()));
    let readers: Vec<_> = (0..3)
        .map(|reader| {
            let (handle, stop) = (reloader.handle(), stop.clone());
            let (progress, seen_refused) = (progress.clone(), seen_refused.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let max = handle.load().limits.max;
                    if max >= 13 {
                        seen_refused.lock().unwrap().insert(max);
                    }
                    progress.read(reader);
                }
            })
        })
        .collect();
    progress.wait_until_all_started();
    for round in 0..60u32 {
        let max = if round % 2 == 0 {
            13 + round
        } else {
            1 + round % 12
        };
        sandbox.write(
            "app.toml",
            &config_text("127.0.0.1:7000", max, &[("fast", round)], "s3cret-token")
                .replace("queue = 10", "queue = 100"),
        );
        let event = reloader.reload_now();
        if max >= 13 {
            assert!(
                matches!(
                    &event.result,
                    ReloadResult::Failed {
                        error: ReloadError::Handler { scope, message },
                        rollback: Rollback::Complete { scopes },
                    } if scope == "loops" && message == "too many" && scopes == &["limits"]
                ),
                "round {round}: {event}"
            );
        } else {
            assert!(
                matches!(event.result, ReloadResult::Applied { .. }),
                "round {round}: {event}"
            );
            assert_eq!(reloader.handle().load().limits.max, max);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.join().unwrap();
    }
    assert!(
        seen_refused.lock().unwrap().is_empty(),
        "readers saw rolled-back values of limits.max: {:?}",
        seen_refused.lock().unwrap()
    );
    assert!(
        stalls.lock().unwrap().is_empty(),
        "{:?}",
        stalls.lock().unwrap()
    );
    assert_eq!(
        progress.windows(),
        (60, 60),
        "(apply windows, windows every reader read in)"
    );
}

#[test]
fn history_is_bounded_and_subscribers_cannot_block_or_break_reloads() {
    let sandbox = Sandbox::new();
    let gate = Arc::new(Mutex::new(()));
    let held = gate.lock().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let reloader = {
        let (gate, seen) = (gate.clone(), seen.clone());
        builder(&sandbox)
            .history_len(3)
            .subscriber(move |_: &hotcfg::ReloadEvent| {
                let _wait = gate.lock().unwrap(); // slow: blocked until the test lets go
                seen.fetch_add(1, Ordering::SeqCst);
            })
            .subscriber(|_: &hotcfg::ReloadEvent| panic!("a broken subscriber"))
            .build()
            .unwrap()
    };
    let mut events = reloader.events();
    for max in 5..10 {
        sandbox.write(
            "app.toml",
            &config_text("127.0.0.1:7000", max, &[("fast", 10)], "s3cret-token"),
        );
        assert!(matches!(
            reloader.reload_now().result,
            ReloadResult::Applied { .. }
        ));
    }
    assert_eq!(
        reloader.handle().generation(),
        6,
        "reloads finished while a subscriber was stuck"
    );
    let history = reloader.history();
    assert_eq!(history.len(), 3);
    assert_eq!(
        history.iter().map(|e| e.generation).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(events.try_recv().unwrap().generation, 2);
    drop(held);
    hotcfg_tests::wait_until(
        "the slow subscriber to see all 6 events",
        Duration::from_secs(10),
        || seen.load(Ordering::SeqCst) == 6,
    );
}

#[test]
fn restart_policies_parse_by_name_and_a_deferring_plan_says_what_waits() {
    // Both found by cargo-mutants (issue 22): neither was checked by the engine's tests.
    assert_eq!("reject".parse::<RestartPolicy>(), Ok(RestartPolicy::Reject));
    assert_eq!("defer".parse::<RestartPolicy>(), Ok(RestartPolicy::Defer));
    assert_eq!(
        "later".parse::<RestartPolicy>(),
        Err("unknown restart policy `later`: expected `reject` or `defer`".to_string())
    );
    let sandbox = Sandbox::new();
    let reloader = builder(&sandbox)
        .policy(RestartPolicy::Defer)
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 8, &[("fast", 10)], "s3cret-token"),
    );
    let hot_only = reloader.plan().to_string();
    assert!(!hot_only.contains("deferred until restart"), "{hot_only}");
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7001", 8, &[("fast", 10)], "s3cret-token"),
    );
    let with_restart = reloader.plan().to_string();
    assert!(
        with_restart.contains("\n  deferred until restart: listen"),
        "{with_restart}"
    );
}

#[test]
fn plan_is_a_dry_run() {
    let sandbox = Sandbox::new();
    let rec = Recorder::default();
    let reloader = builder(&sandbox)
        .handler("loops", Recording::ok(&rec))
        .handler("limits", Recording::ok(&rec))
        .scope_depends_on("loops", &["limits"])
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text(
            "127.0.0.1:7000",
            4,
            &[("fast", 10), ("slow", 1)],
            "s3cret-token",
        ),
    );
    let plan = reloader.plan();
    assert_eq!(plan.handlers, ["limits", "loops"]);
    let Decision::Apply { applied, .. } = &plan.decision else {
        panic!("expected apply, got {plan}");
    };
    assert_eq!(applied[0].path, "loops.slow");
    assert!(
        plan.to_string().contains("with handlers: limits -> loops"),
        "{plan}"
    );
    assert!(rec.take().is_empty(), "a plan runs no handler");
    assert_eq!(reloader.handle().generation(), 1);

    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7001", 4, &[("fast", 10)], "s3cret-token"),
    );
    assert!(matches!(reloader.plan().decision, Decision::Reject { .. }));
    sandbox.write("app.toml", "not toml at all = = =");
    let plan = reloader.plan();
    let Decision::Invalid { error } = &plan.decision else {
        panic!("expected an invalid plan, got {plan}");
    };
    assert_eq!(error.stage, Stage::Parse);
    assert_eq!(plan.error(), Some(error));
    let json = serde_json::to_value(reloader.plan()).unwrap();
    assert_eq!(json["decision"], "invalid");
}

#[test]
fn setup_mistakes_are_caught_at_build() {
    let sandbox = Sandbox::new();
    let err = builder(&sandbox)
        .on_apply("limit", |_| Ok(()))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Setup(_)));
    assert!(
        err.to_string()
            .contains("scope `limit` is not used by any field"),
        "{err}"
    );
    let err = builder(&sandbox)
        .scope_depends_on("loops", &["limits"])
        .scope_depends_on("limits", &["loops"])
        .build()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "scope dependencies form a cycle: limits -> loops -> limits"
    );
}

#[test]
fn env_overlays_and_defaults_apply_on_top_of_files() {
    let sandbox = Sandbox::new();
    let path = sandbox.write(
        "app.toml",
        "listen = \"x\"\ntoken = \"t\"\n[limits]\nmax = 2\n",
    );
    let defaults = AppConfig {
        listen: "d".into(),
        limits: Limits { max: 1, queue: 50 },
        loops: BTreeMap::new(),
        templates: BTreeMap::new(),
        token: "d".into(),
    };
    // A prefix unique to this test keeps parallel tests apart.
    std::env::set_var("HOTCFG_ENGINE_TEST_LIMITS__QUEUE", "77");
    let reloader = Reloader::<AppConfig>::builder(FileSource::new(path))
        .loader(
            Loader::new()
                .defaults(defaults)
                .env_prefix("HOTCFG_ENGINE_TEST_"),
        )
        .build()
        .unwrap();
    let live = reloader.handle().snapshot();
    assert_eq!((live.limits.max, live.limits.queue), (2, 77));
    assert_eq!(live.listen, "x");
}

#[test]
fn the_audit_log_records_every_attempt_redacted_and_chained() {
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let reloader = builder(&sandbox).audit_log(&audit).build().unwrap();
    let good = config_text("127.0.0.1:7000", 4, &[("fast", 10)], "n3w-s3cret");
    sandbox.write("app.toml", &good);
    reloader.reload_now(); // applied (a secret change)
    reloader.reload_now(); // the same bytes again: nothing new, not recorded (issue 14)
    sandbox.write("app.toml", &format!("# a comment\n{good}"));
    reloader.reload_now(); // unchanged: other bytes, the same values
    sandbox.write("app.toml", &good.replace("127.0.0.1:7000", "0.0.0.0:1"));
    reloader.reload_now(); // rejected
    sandbox.write("app.toml", &good.replace("max = 4", "max = 0"));
    reloader.reload_now(); // failed
    drop(reloader);

    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        !text.contains("s3cret"),
        "a secret leaked into the audit log:\n{text}"
    );
    let records = hotcfg::verify_audit_log(&audit).unwrap();
    let results: Vec<&str> = records.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(
        results,
        ["applied", "applied", "unchanged", "rejected", "failed"]
    );
    let triggers: Vec<&str> = records.iter().map(|r| r.trigger.kind.as_str()).collect();
    assert_eq!(
        triggers,
        ["startup", "manual", "manual", "manual", "manual"]
    );
    let secret = &records[1].changes[0];
    assert_eq!(
        (
            secret.path.as_str(),
            secret.class.as_str(),
            secret.kind.as_str()
        ),
        ("token", "auth", "modified")
    );
    assert_eq!(secret.old.as_deref(), Some(hotcfg::REDACTED));
    assert_eq!(records[3].changes[0].class, "restart");
    assert!(records[4]
        .error
        .as_deref()
        .unwrap()
        .contains("`limits.max`: must be at least 1"));
    assert_eq!(records[0].prev, hotcfg::audit::GENESIS);
    assert_eq!(
        records[1].source.as_ref().unwrap().sha256,
        hotcfg_tests::sha256_hex(good.as_bytes())
    );
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for key in [
        "generation",
        "time",
        "trigger",
        "source",
        "result",
        "changes",
        "pending_restart",
        "rollback",
        "error",
        "duration_ms",
        "prev",
    ] {
        assert!(
            first.get(key).is_some(),
            "audit record lacks `{key}`: {first}"
        );
    }
    assert!(first["time"].as_str().unwrap().ends_with('Z'));

    // Reopening continues the chain.
    let reloader = builder(&sandbox).audit_log(&audit).build().unwrap();
    drop(reloader);
    assert_eq!(hotcfg::verify_audit_log(&audit).unwrap().len(), 6);

    // Editing a line breaks the chain at the next one.
    let tampered = text.replacen("\"applied\"", "\"rejected\"", 1);
    std::fs::write(&audit, tampered).unwrap();
    let err = hotcfg::verify_audit_log(&audit).unwrap_err();
    assert_eq!(err.line, 2, "{err}");
}

#[cfg(unix)]
#[test]
fn the_audit_log_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let _reloader = builder(&sandbox).audit_log(&audit).build().unwrap();
    let mode = std::fs::metadata(&audit).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn metrics_report_results_generation_and_pending_restart() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let sandbox = Sandbox::new();
    metrics::with_local_recorder(&recorder, || {
        let reloader = builder(&sandbox)
            .policy(RestartPolicy::Defer)
            .build()
            .unwrap();
        sandbox.write(
            "app.toml",
            &config_text("127.0.0.1:9", 8, &[("fast", 10)], "s3cret-token"),
        );
        reloader.reload_now();
        sandbox.write("app.toml", "broken = = =");
        reloader.reload_now();
    });
    let mut counters = BTreeMap::new();
    let mut gauges = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        match value {
            DebugValue::Counter(v) => {
                counters.insert(name, v);
            }
            DebugValue::Gauge(v) => {
                gauges.insert(name, v.into_inner());
            }
            DebugValue::Histogram(_) => {}
        }
    }
    assert_eq!(counters["hotcfg_reloads_total{result=applied}"], 2);
    assert_eq!(counters["hotcfg_reloads_total{result=failed}"], 1);
    assert_eq!(gauges["hotcfg_config_generation{}"], 2.0);
    assert_eq!(gauges["hotcfg_last_reload_success{}"], 0.0);
    assert_eq!(gauges["hotcfg_pending_restart_fields{}"], 1.0);
    assert!(gauges["hotcfg_last_success_timestamp_seconds{}"] > 1.7e9);
}

#[test]
fn status_queries_do_not_wait_for_a_running_reload() {
    let sandbox = Sandbox::new();
    let entered = Arc::new(Rendezvous::new(2));
    let release = Arc::new(Rendezvous::new(2));
    let reloader = {
        let (entered, release) = (entered.clone(), release.clone());
        builder(&sandbox)
            .on_apply("limits", move |_| {
                entered.wait("the test to see the reload in its handler");
                release.wait("the test to release the reload");
                Ok(())
            })
            .build()
            .unwrap()
    };
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 5, &[("fast", 10)], "s3cret-token"),
    );
    let running = {
        let reloader = reloader.clone();
        std::thread::spawn(move || reloader.reload_now())
    };
    entered.wait("the reload to enter its handler");
    // Answered from the last finished attempt, while the handler still runs (and holds the
    // engine).
    assert_eq!(reloader.history().len(), 1);
    assert!(reloader.pending_restart().is_empty());
    assert_eq!(reloader.last_event().trigger, Trigger::Startup);
    assert_eq!(reloader.watched_files().len(), 1);
    release.wait("the reload to take the release");
    assert_eq!(running.join().unwrap().generation, 2);
    assert_eq!(reloader.history().len(), 2);
}

#[test]
fn an_audit_log_without_disk_sync_still_records_every_attempt_at_once() {
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let reloader = builder(&sandbox)
        .audit_log(&audit)
        .audit_sync(hotcfg::AuditSync::Os)
        .build()
        .unwrap();
    sandbox.write(
        "app.toml",
        &config_text("127.0.0.1:7000", 6, &[("fast", 10)], "s3cret-token"),
    );
    reloader.reload_now();
    // Readable by another process as soon as the reload returned, chained as usual.
    let records = hotcfg::verify_audit_log(&audit).unwrap();
    let results: Vec<&str> = records.iter().map(|r| r.result.as_str()).collect();
    assert_eq!(results, ["applied", "applied"]);
}
