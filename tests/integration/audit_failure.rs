//! Issue 12: what a failed audit write means for the reload whose record it was.

use std::sync::{Arc, Mutex};

use hotcfg::{
    ApplyContext, AuditFailure, BoxError, FileSource, HotReload, ReloadError, ReloadResult,
    Reloader, Rollback, ScopeHandler,
};
use hotcfg_tests::{Sandbox, SmallDisk};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    workers: u32,
}

/// Remembers every apply and rollback, by the `workers` value it was given.
#[derive(Clone, Default)]
struct Steps(Arc<Mutex<Vec<String>>>);

impl ScopeHandler<Config> for Steps {
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("apply {}", cx.new.workers));
        Ok(())
    }

    fn rollback(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.0
            .lock()
            .unwrap()
            .push(format!("rollback to {}", cx.old.workers));
        Ok(())
    }
}

/// An engine on `workers = 1` whose audit log is on a small tmpfs, or `None` (with a message)
/// where the test cannot mount one.
fn engine_on_small_disk(
    on_failure: AuditFailure,
) -> Option<(Reloader<Config>, Sandbox, SmallDisk, Steps)> {
    let disk = match SmallDisk::mount("1m") {
        Ok(disk) => disk,
        Err(err) => {
            eprintln!("skipped: cannot mount a tmpfs here (it needs root): {err}");
            return None;
        }
    };
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", "workers = 1");
    let steps = Steps::default();
    let reloader = Reloader::<Config>::builder(FileSource::new(path))
        .handler("limits", steps.clone())
        .audit_log(disk.path("audit.jsonl"))
        .audit_failure(on_failure)
        .build()
        .unwrap();
    Some((reloader, sandbox, disk, steps))
}

/// Fills the disk, then edits and reloads until an audit write fails (the first records may
/// still fit in the free end of the log's last page). Returns that reload's event, the value it
/// tried to apply and the audit write failures counted meanwhile.
fn reload_until_the_audit_fails(
    reloader: &Reloader<Config>,
    sandbox: &Sandbox,
    disk: &SmallDisk,
    failed: impl Fn(&ReloadResult) -> bool,
) -> (Arc<hotcfg::ReloadEvent>, u32, u64) {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    disk.fill();
    for workers in 2..200 {
        sandbox.write("app.toml", &format!("workers = {workers}"));
        let event = metrics::with_local_recorder(&recorder, || reloader.reload_now());
        if failed(&event.result) {
            return (event, workers, audit_write_failures(snapshotter.snapshot()));
        }
    }
    panic!("200 audit records were written to a full disk");
}

fn audit_write_failures(snapshot: metrics_util::debugging::Snapshot) -> u64 {
    snapshot
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "hotcfg_audit_write_failures_total")
        .map(|(.., value)| match value {
            DebugValue::Counter(n) => n,
            other => panic!("a counter, not {other:?}"),
        })
        .sum()
}

#[test]
fn by_default_a_reload_whose_record_cannot_be_written_is_rolled_back() {
    let Some((reloader, sandbox, disk, steps)) = engine_on_small_disk(AuditFailure::default())
    else {
        return;
    };
    let (event, workers, failures) =
        reload_until_the_audit_fails(&reloader, &sandbox, &disk, |r| {
            !matches!(r, ReloadResult::Applied { .. })
        });
    let ReloadResult::Failed { error, rollback } = &event.result else {
        panic!("expected a failure, got {event}");
    };
    assert!(
        matches!(error, ReloadError::AuditUnwritable { .. })
            && error
                .to_string()
                .starts_with("the audit log is not writable: "),
        "{error}"
    );
    assert_eq!(
        rollback,
        &Rollback::Complete {
            scopes: vec!["limits".to_string()]
        }
    );
    let steps = steps.0.lock().unwrap().clone();
    assert_eq!(
        steps[steps.len() - 2..],
        [
            format!("apply {workers}"),
            format!("rollback to {}", workers - 1)
        ]
    );
    assert_eq!(reloader.handle().load().workers, workers - 1);
    assert_eq!(reloader.handle().generation(), u64::from(workers) - 1);
    // The record of the failure itself could not be written either: both counted.
    assert_eq!(failures, 2);

    // Space returns: the refused content is applied on the next reload, and the log verifies:
    // one record per applied version (startup included), none for the refused attempt.
    disk.free();
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(reloader.handle().load().workers, workers);
    let records = hotcfg::verify_audit_log(disk.path("audit.jsonl")).unwrap();
    assert_eq!(records.len() as u32, workers);
    assert!(records.iter().all(|r| r.result == "applied"));
}

#[test]
fn under_continue_it_is_applied_with_a_warning_and_counted() {
    let Some((reloader, sandbox, disk, steps)) = engine_on_small_disk(AuditFailure::Continue)
    else {
        return;
    };
    let (event, workers, failures) = reload_until_the_audit_fails(
        &reloader,
        &sandbox,
        &disk,
        |r| !matches!(r, ReloadResult::Applied { warnings, .. } if warnings.is_empty()),
    );
    let ReloadResult::Applied { warnings, .. } = &event.result else {
        panic!("expected applied, got {event}");
    };
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("the audit record of this reload was not written: "),
        "{warnings:?}"
    );
    assert_eq!(
        steps.0.lock().unwrap().last(),
        Some(&format!("apply {workers}"))
    );
    assert_eq!(reloader.handle().generation(), u64::from(workers));
    assert_eq!(failures, 1);
    disk.free();
    // Only whole records: the one that failed left nothing behind.
    let records = hotcfg::verify_audit_log(disk.path("audit.jsonl")).unwrap();
    assert_eq!(records.len() as u32, workers - 1);
}

#[test]
fn an_engine_that_cannot_write_its_startup_record_does_not_start_unless_told_to() {
    let Ok(disk) = SmallDisk::mount("1m") else {
        eprintln!("skipped: cannot mount a tmpfs here (it needs root)");
        return;
    };
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", "workers = 1");
    disk.fill();
    let build = |on_failure| {
        Reloader::<Config>::builder(FileSource::new(&path))
            .audit_log(disk.path("audit.jsonl"))
            .audit_failure(on_failure)
            .build()
    };
    let err = build(AuditFailure::FailClosed).unwrap_err();
    assert!(err.to_string().contains("is not writable"), "{err}");
    let reloader = build(AuditFailure::Continue).unwrap();
    assert_eq!(reloader.handle().load().workers, 1);
}
