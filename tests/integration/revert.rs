//! Snapshots and revert to a chosen generation (issue 17, part B): every applied version's
//! content is kept beside the audit log; `revert_to(N)` puts it through the normal pipeline with
//! a `revert` trigger, writes the file back, and refuses clearly when it cannot.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotcfg::audit::{read_records, snapshot_dir, SnapshotError};
use hotcfg::{
    ApplyContext, AuditRecord, BoxError, ConfigWatcher, Decision, FileSource, Format, HotReload,
    MemorySource, ReloadResult, Reloader, ReloaderBuilder, RevertError, ScopeHandler, Source,
    SourceContent, SourceError, SourceErrorKind, Trigger, Violations, WatchMode, WatchOptions,
};
use hotcfg_tests::{sha256_hex, wait_until, Sandbox};
use serde::{Deserialize, Serialize};

mod failing;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "pool")]
    workers: u32,
    #[reload(scope = "banner")]
    banner: String,
}

/// Records every value it applies; vetoes `workers` equal to `veto` (0: never).
#[derive(Clone, Default)]
struct Pool {
    applied: Arc<Mutex<Vec<u32>>>,
    veto: Arc<AtomicU32>,
}

impl ScopeHandler<Config> for Pool {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        if cx.new.workers == self.veto.load(Ordering::SeqCst) {
            return Err(format!("{} workers are not allowed now", cx.new.workers).into());
        }
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.applied.lock().unwrap().push(cx.new.workers);
        Ok(())
    }
}

fn text(workers: u32) -> String {
    format!("workers = {workers}\nbanner = \"v{workers}\"\n")
}

/// A file-backed engine with an audit log, at generation 1 with `workers = 2`, then 4, then 8
/// (generations 2 and 3). `max`: today's validation refuses more workers than it says.
struct Setup {
    sandbox: Sandbox,
    path: PathBuf,
    pool: Pool,
    max: Arc<AtomicU32>,
    reloader: Reloader<Config>,
}

fn builder(sandbox: &Sandbox, pool: &Pool, max: &Arc<AtomicU32>) -> ReloaderBuilder<Config> {
    let max = Arc::clone(max);
    Reloader::<Config>::builder(FileSource::new(sandbox.path("app.toml")))
        .handler("pool", pool.clone())
        .validator(move |config: &Config, v: &mut Violations| {
            let max = max.load(Ordering::SeqCst);
            if config.workers > max {
                v.push("workers", format!("at most {max} workers today"));
            }
        })
        .audit_log(sandbox.path("audit.jsonl"))
}

fn setup() -> Setup {
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", &text(2));
    let pool = Pool::default();
    let max = Arc::new(AtomicU32::new(100));
    let reloader = builder(&sandbox, &pool, &max).build().unwrap();
    for workers in [4, 8] {
        sandbox.write("app.toml", &text(workers));
        let event = reloader.reload_now();
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{event}"
        );
    }
    assert_eq!(reloader.handle().generation(), 3);
    Setup {
        sandbox,
        path,
        pool,
        max,
        reloader,
    }
}

fn records(sandbox: &Sandbox) -> Vec<AuditRecord> {
    hotcfg::verify_audit_log(sandbox.path("audit.jsonl")).unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn every_commit_names_a_snapshot_kept_private_beside_the_audit_log() {
    let setup = setup();
    let dir = snapshot_dir(&setup.sandbox.path("audit.jsonl"));
    assert_eq!(dir, setup.sandbox.path("audit.snapshots"));
    assert_eq!(mode(&dir), 0o700);
    let written = records(&setup.sandbox);
    assert_eq!(written.len(), 3);
    for record in &written {
        let id = record
            .snapshot
            .as_deref()
            .expect("a commit names its snapshot");
        let file = dir.join(id);
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(sha256_hex(&bytes), id, "content-addressed");
        assert_eq!(mode(&file), 0o600);
    }
    // A failed attempt applies nothing and names no snapshot.
    setup.sandbox.write("app.toml", "workers = ");
    setup.reloader.reload_now();
    assert_eq!(records(&setup.sandbox).last().unwrap().snapshot, None);
}

#[test]
fn revert_restores_the_values_runs_the_handlers_writes_the_file_and_records_it() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let setup = setup();
    std::fs::set_permissions(&setup.path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let event = metrics::with_local_recorder(&recorder, || setup.reloader.revert_to(1)).unwrap();

    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(event.generation, 4, "a revert is a new generation");
    let config = setup.reloader.handle().load();
    assert_eq!((config.workers, config.banner.as_str()), (2, "v2"));
    assert_eq!(*setup.pool.applied.lock().unwrap(), vec![4, 8, 2]);
    assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(2));
    assert_eq!(mode(&setup.path), 0o640, "the file keeps its mode");
    let sha = sha256_hex(text(2).as_bytes());
    let Trigger::Revert(target) = &event.trigger else {
        panic!("trigger {}", event.trigger);
    };
    assert_eq!(
        (target.generation, target.sha256.as_str()),
        (1, sha.as_str())
    );
    assert_eq!(
        event.to_string().lines().next().unwrap(),
        format!(
            "applied 2 change(s) [revert to generation 1 (sha256 {}); {} (sha256 {}); live generation 4; {:.1} ms]",
            &sha[..12],
            setup.path.display(),
            &sha[..12],
            event.duration.as_secs_f64() * 1000.0
        )
    );

    let record = records(&setup.sandbox).pop().unwrap();
    assert_eq!(record.trigger.kind, "revert");
    assert_eq!(record.trigger.generation, Some(1));
    assert_eq!(record.trigger.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(record.result, "applied");
    assert_eq!(record.generation, 4);
    assert_eq!(record.snapshot, records(&setup.sandbox)[0].snapshot);
    let mut changed: Vec<_> = record.changes.iter().map(|c| c.path.as_str()).collect();
    changed.sort();
    assert_eq!(changed, ["banner", "workers"]);

    let counters: BTreeMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(v) => {
                let key = key.key();
                let labels: Vec<_> = key.labels().map(|l| l.value().to_string()).collect();
                Some((format!("{}{{{}}}", key.name(), labels.join(",")), v))
            }
            _ => None,
        })
        .collect();
    assert_eq!(counters["hotcfg_reverts_total{requested}"], 1);
    assert_eq!(counters["hotcfg_reloads_total{applied}"], 1);
}

#[test]
fn the_watcher_finds_the_restored_file_unchanged_and_records_nothing() {
    let setup = setup();
    let options = WatchOptions::default()
        .mode(WatchMode::Poll {
            interval: Duration::from_millis(20),
        })
        .debounce(Duration::from_millis(20));
    let watcher = ConfigWatcher::start(setup.reloader.clone(), options).unwrap();
    let mut events = setup.reloader.events();
    let before = watcher.stats().triggers;

    let revert = setup.reloader.revert_to(2).unwrap();
    wait_until(
        "the watcher to reload after seeing the restored file",
        Duration::from_secs(10),
        || watcher.stats().triggers > before,
    );

    assert_eq!(events.try_recv().unwrap(), revert);
    assert!(events.try_recv().is_err(), "no second event was broadcast");
    assert_eq!(setup.reloader.handle().generation(), 4);
    assert_eq!(setup.reloader.history().last().unwrap(), &revert);
    let written = records(&setup.sandbox);
    assert_eq!(
        written.len(),
        4,
        "no record after the revert's: {written:#?}"
    );
}

#[test]
fn content_that_fails_todays_validation_is_refused_with_the_reason_and_the_file_is_untouched() {
    let setup = setup();
    setup.max.store(3, Ordering::SeqCst);
    let err = setup.reloader.revert_to(2).unwrap_err();
    let RevertError::Refused {
        generation,
        reason,
        event,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(*generation, 2);
    assert!(reason.contains("at most 3 workers today"), "{reason}");
    assert!(
        err.to_string()
            .starts_with("revert to generation 2 refused: "),
        "{err}"
    );
    assert!(matches!(event.trigger, Trigger::Revert(_)));
    assert_eq!(setup.reloader.handle().generation(), 3);
    assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(8));
    let record = records(&setup.sandbox).pop().unwrap();
    assert_eq!(
        (record.trigger.kind.as_str(), record.result.as_str()),
        ("revert", "failed")
    );
    assert!(record.error.unwrap().contains("at most 3 workers today"));
}

#[test]
fn a_handler_veto_refuses_the_revert_and_the_file_gets_its_bytes_back() {
    let setup = setup();
    setup
        .sandbox
        .write("app.toml", "# edited, not reloaded yet\n");
    setup.pool.veto.store(4, Ordering::SeqCst);
    let err = setup.reloader.revert_to(2).unwrap_err();
    let RevertError::Refused { reason, event, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        reason,
        "vetoed by the `pool` handler: 4 workers are not allowed now"
    );
    assert!(
        matches!(event.result, ReloadResult::Rejected { .. }),
        "{event}"
    );
    assert_eq!(setup.reloader.handle().load().workers, 8);
    assert_eq!(
        std::fs::read_to_string(&setup.path).unwrap(),
        "# edited, not reloaded yet\n",
        "the file holds what it held before the revert"
    );
}

#[test]
fn a_missing_snapshot_is_an_error_naming_the_generation_and_the_file() {
    let setup = setup();
    let id = records(&setup.sandbox)[1].snapshot.clone().unwrap();
    let file = setup.sandbox.path("audit.snapshots").join(&id);
    std::fs::remove_file(&file).unwrap();
    let err = setup.reloader.revert_to(2).unwrap_err();
    assert!(matches!(
        err,
        RevertError::Snapshot(SnapshotError::Missing { generation: 2, .. })
    ));
    assert_eq!(
        err.to_string(),
        format!(
            "cannot revert: the snapshot of generation 2 is missing: {} (pruned or removed)",
            file.display()
        )
    );
    assert_eq!(setup.reloader.handle().generation(), 3, "nothing attempted");
    assert_eq!(records(&setup.sandbox).len(), 3, "nothing recorded");
}

#[test]
fn a_truncated_or_altered_snapshot_is_an_error_naming_the_generation_and_the_file() {
    let setup = setup();
    let id = records(&setup.sandbox)[0].snapshot.clone().unwrap();
    let file = setup.sandbox.path("audit.snapshots").join(&id);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = setup.reloader.revert_to(1).unwrap_err().to_string();
    let expected = format!(
        "cannot revert: the snapshot of generation 1 is corrupt: {}: its {} byte(s) hash to sha256",
        file.display(),
        bytes.len() / 2
    );
    assert!(err.starts_with(&expected), "{err}");

    let altered = String::from_utf8(bytes)
        .unwrap()
        .replace("workers = 2", "workers = 9");
    std::fs::write(&file, altered).unwrap();
    let err = setup.reloader.plan_revert(1).unwrap_err().to_string();
    assert!(
        err.contains("not to its name (truncated or altered)"),
        "{err}"
    );
    assert_eq!(setup.reloader.handle().load().workers, 8);
}

#[test]
fn a_generation_never_applied_or_without_an_audit_log_is_a_clear_error() {
    let setup = setup();
    let err = setup.reloader.revert_to(9).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "cannot revert: no record in {} applied generation 9",
            setup.sandbox.path("audit.jsonl").display()
        )
    );
    let source = MemorySource::new("app.toml", Format::Toml, text(2));
    let bare = Reloader::<Config>::builder(source).build().unwrap();
    assert!(matches!(
        bare.revert_to(1).unwrap_err(),
        RevertError::Snapshot(SnapshotError::NoAuditLog)
    ));
}

/// Reads like a file but cannot write back.
#[derive(Debug)]
struct ReadOnly(MemorySource);

impl Source for ReadOnly {
    fn read(&self) -> Result<SourceContent, SourceError> {
        self.0.read()
    }
    fn name(&self) -> String {
        self.0.name()
    }
}

#[test]
fn a_source_that_cannot_write_back_says_so_and_nothing_changes() {
    let sandbox = Sandbox::new();
    let memory = MemorySource::new("app.toml", Format::Toml, text(2));
    let reloader = Reloader::<Config>::builder(ReadOnly(memory.clone()))
        .audit_log(sandbox.path("audit.jsonl"))
        .build()
        .unwrap();
    memory.set(text(4));
    reloader.reload_now();
    let err = reloader.revert_to(1).unwrap_err();
    let RevertError::Restore { generation, error } = &err else {
        panic!("{err}");
    };
    assert_eq!((*generation, error.kind), (1, SourceErrorKind::Unsupported));
    assert_eq!(
        err.to_string(),
        "cannot revert to generation 1: app.toml: this source cannot write an earlier version \
         back (it only reads); nothing was changed"
    );
    assert_eq!(reloader.handle().load().workers, 4);
}

#[test]
fn a_memory_source_is_restored_too() {
    let sandbox = Sandbox::new();
    let memory = MemorySource::new("app.toml", Format::Toml, text(2));
    let reloader = Reloader::<Config>::builder(memory.clone())
        .audit_log(sandbox.path("audit.jsonl"))
        .build()
        .unwrap();
    memory.set(text(4));
    reloader.reload_now();
    reloader.revert_to(1).unwrap();
    assert_eq!(memory.text(), text(2));
    assert_eq!(reloader.handle().load().workers, 2);
}

#[test]
fn the_dry_run_shows_what_a_revert_would_change_and_changes_nothing() {
    let setup = setup();
    let plan = setup.reloader.plan_revert(1).unwrap();
    let Decision::Apply { applied, .. } = &plan.decision else {
        panic!("{plan:?}");
    };
    let mut changes: Vec<_> = applied
        .iter()
        .map(|c| {
            format!(
                "{}: {} -> {}",
                c.path,
                c.old.as_deref().unwrap(),
                c.new.as_deref().unwrap()
            )
        })
        .collect();
    changes.sort();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes[0].starts_with("banner: ")
            && changes[0].contains("v8")
            && changes[0].ends_with("v2\""),
        "{changes:?}"
    );
    assert_eq!(changes[1], "workers: 8 -> 2");
    assert_eq!(setup.reloader.handle().generation(), 3);
    assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(8));
    assert_eq!(records(&setup.sandbox).len(), 3);
}

#[test]
fn retention_keeps_the_newest_snapshots_and_never_the_live_ones_away() {
    let sandbox = Sandbox::new();
    sandbox.write("app.toml", &text(1));
    let pool = Pool::default();
    let max = Arc::new(AtomicU32::new(100));
    let reloader = builder(&sandbox, &pool, &max)
        .snapshots_kept(2)
        .build()
        .unwrap();
    for workers in 2..=5 {
        sandbox.write("app.toml", &text(workers));
        reloader.reload_now();
    }
    let dir = sandbox.path("audit.snapshots");
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    let restorable = reloader.restorable().unwrap();
    let kept: Vec<u64> = restorable
        .iter()
        .filter(|(_, state)| state.is_ok())
        .map(|(g, _)| *g)
        .collect();
    assert_eq!(kept, [4, 5]);
    assert!(matches!(
        restorable[&1],
        Err(SnapshotError::Missing { generation: 1, .. })
    ));
    // Reverting to the older kept one makes it the newest: the live one is kept.
    reloader.revert_to(4).unwrap();
    sandbox.write("app.toml", &text(6));
    reloader.reload_now();
    let kept: Vec<u64> = reloader
        .restorable()
        .unwrap()
        .into_iter()
        .filter(|(_, state)| state.is_ok())
        .map(|(g, _)| g)
        .collect();
    assert_eq!(
        kept,
        [4, 6, 7],
        "generation 6 restored 4's content, still kept"
    );
    assert_eq!(reloader.handle().generation(), 7);
}

#[test]
fn after_a_restart_an_earlier_runs_generation_is_found_in_the_log() {
    let setup = setup();
    let Setup {
        sandbox, pool, max, ..
    } = setup;
    drop(setup.reloader);
    let reloader = builder(&sandbox, &pool, &max).build().unwrap();
    assert_eq!(reloader.handle().generation(), 1);
    let event = reloader.revert_to(2).unwrap();
    assert_eq!(reloader.handle().load().workers, 4);
    assert_eq!(event.generation, 2);
    let all = read_records(&sandbox.path("audit.jsonl")).unwrap();
    assert_eq!(all.len(), 5);
}

#[test]
fn revert_to_async_does_the_same_from_async_code() {
    let setup = setup();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = runtime.block_on(setup.reloader.revert_to_async(1)).unwrap();
    assert_eq!(event.generation, 4);
    assert_eq!(setup.reloader.handle().load().workers, 2);
}

#[test]
fn a_snapshot_that_cannot_be_written_fails_the_commit_like_its_record_would() {
    let setup = setup();
    let dir = setup.sandbox.path("audit.snapshots");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "in the way").unwrap();
    setup.sandbox.write("app.toml", &text(16));
    let event = setup.reloader.reload_now();
    let ReloadResult::Failed { error, rollback } = &event.result else {
        panic!("{event}");
    };
    assert_eq!(
        rollback,
        &hotcfg::Rollback::Complete {
            scopes: vec!["pool".into()]
        }
    );
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "the audit log is not writable: cannot keep the snapshot of this version in {}",
            dir.display()
        )),
        "{message}"
    );
    assert_eq!(setup.reloader.handle().load().workers, 8, "nothing applied");
}

#[test]
fn under_continue_a_lost_snapshot_is_a_warning_and_the_record_names_none() {
    let sandbox = Sandbox::new();
    sandbox.write("app.toml", &text(1));
    let (pool, max) = (Pool::default(), Arc::new(AtomicU32::new(100)));
    let reloader = builder(&sandbox, &pool, &max)
        .audit_failure(hotcfg::AuditFailure::Continue)
        .build()
        .unwrap();
    let dir = sandbox.path("audit.snapshots");
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::write(&dir, "in the way").unwrap();
    sandbox.write("app.toml", &text(2));
    let event = reloader.reload_now();
    let ReloadResult::Applied { warnings, .. } = &event.result else {
        panic!("{event}");
    };
    assert!(
        warnings[0].ends_with("; it cannot be restored"),
        "{warnings:?}"
    );
    let record = records(&sandbox).pop().unwrap();
    assert_eq!((record.result.as_str(), record.snapshot), ("applied", None));
    assert!(matches!(
        reloader.revert_to(2).unwrap_err(),
        RevertError::Snapshot(SnapshotError::NotKept { generation: 2, .. })
    ));
}

mod cli {
    //! `rollback --to GEN` and `history` on the command line.

    use super::*;
    use hotcfg::cli::{Cli, Command, EXIT_INVALID, EXIT_OK};
    use hotcfg::Pipeline;

    fn cli(max: u32) -> Cli<Config> {
        Cli::from(Pipeline::<Config>::new().validator(
            move |config: &Config, v: &mut Violations| {
                if config.workers > max {
                    v.push("workers", format!("at most {max} workers today"));
                }
            },
        ))
    }

    fn run(cli: &Cli<Config>, command: Command) -> (u8, String) {
        let mut out = Vec::new();
        let code = cli.run(&command, &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    fn rollback(setup: &Setup, to: u64, dry_run: bool) -> Command {
        Command::Rollback {
            to,
            config: setup.path.clone(),
            audit_log: setup.sandbox.path("audit.jsonl"),
            dry_run,
            json: false,
        }
    }

    #[test]
    fn rollback_writes_the_file_back_and_the_running_engine_applies_it_as_an_edit() {
        let setup = setup();
        let (code, out) = run(&cli(100), rollback(&setup, 1, false));
        assert_eq!(code, EXIT_OK, "{out}");
        assert!(out.contains("workers"), "the plan is shown: {out}");
        let sha = sha256_hex(text(2).as_bytes());
        assert!(
            out.ends_with(&format!(
                "restored {} to the content of generation 1 (sha256 {}): a process watching it \
                 applies it as an edit of the file\n",
                setup.path.display(),
                &sha[..12]
            )),
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(2));
        let event = setup.reloader.reload_now();
        assert_eq!(event.source.as_ref().unwrap().sha256, sha);
        assert_eq!(setup.reloader.handle().load().workers, 2);
    }

    #[test]
    fn a_dry_run_shows_the_plan_and_writes_nothing() {
        let setup = setup();
        let (code, out) = run(&cli(100), rollback(&setup, 2, true));
        assert_eq!(code, EXIT_OK, "{out}");
        assert!(out.contains("workers") && out.contains("8 -> 4"), "{out}");
        assert!(
            out.ends_with(&format!("dry run: {} not written\n", setup.path.display())),
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(8));
    }

    #[test]
    fn rollback_refuses_content_todays_checks_refuse_and_a_missing_generation() {
        let setup = setup();
        let (code, out) = run(&cli(3), rollback(&setup, 2, false));
        assert_eq!(code, EXIT_INVALID, "{out}");
        assert!(out.contains("at most 3 workers today"), "{out}");
        assert!(
            out.ends_with("nothing restored: generation 2's content would be refused today\n"),
            "{out}"
        );
        assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(8));

        let (code, out) = run(&cli(100), rollback(&setup, 7, false));
        assert_eq!(code, EXIT_INVALID, "{out}");
        assert_eq!(
            out,
            format!(
                "nothing restored: no record in {} applied generation 7\n",
                setup.sandbox.path("audit.jsonl").display()
            )
        );
    }

    #[test]
    fn rollback_replaces_a_file_that_cannot_be_used() {
        let setup = setup();
        setup.sandbox.write("app.toml", "workers = = broken");
        let (code, out) = run(&cli(100), rollback(&setup, 2, false));
        assert_eq!(code, EXIT_OK, "{out}");
        assert!(out.contains("the current file cannot be used"), "{out}");
        assert_eq!(std::fs::read_to_string(&setup.path).unwrap(), text(4));
    }

    #[test]
    fn history_marks_the_versions_rollback_can_restore() {
        let setup = setup();
        let id = records(&setup.sandbox)[0].snapshot.clone().unwrap();
        std::fs::remove_file(setup.sandbox.path("audit.snapshots").join(id)).unwrap();
        let history = Command::History {
            audit_log: setup.sandbox.path("audit.jsonl"),
            verify: false,
        };
        let (code, out) = run(&cli(100), history);
        assert_eq!(code, EXIT_OK, "{out}");
        let marks: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("restorable") || l.contains("snapshot"))
            .map(str::trim)
            .collect();
        assert_eq!(marks.len(), 3, "{out}");
        assert!(marks[0].starts_with("not restorable: the snapshot of generation 1 is missing"));
        assert_eq!(marks[1], "restorable: rollback --to 2");
        assert_eq!(marks[2], "restorable: rollback --to 3");
    }
}
