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
    let disk = SmallDisk::mount_or_skip("1m")?;
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", "workers = 1");
    let steps = Steps::default();
    let reloader = Reloader::<Config>::builder(FileSource::new(path))
        .handler("limits", steps.clone())
        .audit_log(disk.path("audit.jsonl"))
        .audit_failure(on_failure)
        // The record's own write is what fails here; a lost snapshot fails the same way
        // (tests/integration/revert.rs).
        .snapshots_kept(0)
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
    let Some(disk) = SmallDisk::mount_or_skip("1m") else {
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

/// The daemon's `--on-audit-failure continue`: on a full disk a reload is applied with the
/// warning in its reply; once space returns the log takes records again and still verifies.
#[test]
fn the_daemon_can_be_told_to_continue_when_its_audit_log_cannot_be_written() {
    use crate::daemon::{binary, config, run, TOKEN};
    use hotcfg_tests::daemon::{Daemon, LIMIT};
    use hotcfg_tests::wait_until;

    let Some(disk) = SmallDisk::mount_or_skip("1m") else {
        return;
    };
    let sandbox = Sandbox::new();
    sandbox.write("taskdaemon.toml", &config(3, 100));
    let audit = disk.path("audit.jsonl");
    let options = ["--policy", "reject", "--on-audit-failure", "continue"];
    let daemon = Daemon::start_with(binary(), &options, sandbox, &audit);
    let mut client = daemon.client(TOKEN);

    disk.fill();
    let text = std::fs::read_to_string(daemon.sandbox.path("taskdaemon.toml")).unwrap();
    // Each edit is applied by the file watcher or by the reload asked here, whichever is first;
    // the event that applied it is in the history either way.
    let make_live = |client: &mut hotcfg_tests::daemon::Client, n: u32| {
        daemon.edit(|_| text.replace("max_concurrent = 3", &format!("max_concurrent = {n}")));
        client.call("reload");
        wait_until(&format!("max_concurrent = {n} to be live"), LIMIT, || {
            client.call("status")["max_concurrent"] == n
        });
        let history = client.call("history");
        let events = history["events"].as_array().cloned().unwrap_or_default();
        let applied_n = |summary: &str| {
            summary
                .lines()
                .any(|l| l.contains("max_concurrent") && l.ends_with(&format!("-> {n}")))
        };
        events
            .into_iter()
            .find(|e| e["result"] == "applied" && e["summary"].as_str().is_some_and(applied_n))
            .unwrap_or_else(|| panic!("no applied event for max_concurrent = {n}: {history}"))
    };
    // The snapshot of the content (a new file) is the first write to fail, then the record.
    let lost_record = "the audit record of this reload was not written: ";
    let mut warnings = Vec::new();
    for n in 4..100 {
        let summary = make_live(&mut client, n)["summary"].to_string();
        if summary.contains("warning") {
            warnings.push(summary.clone());
        }
        if summary.contains(lost_record) {
            break;
        }
    }
    let first = warnings.first().expect("a reload applied with a warning");
    assert!(
        first.contains("warning: cannot keep the snapshot of this version in "),
        "{first}"
    );
    let last = warnings.last().unwrap();
    assert!(last.contains(lost_record), "{warnings:?}");
    assert!(daemon.stderr().contains("audit"), "{}", daemon.stderr());

    disk.free();
    let before = client.call("history")["audit"]["records"].as_u64().unwrap();
    make_live(&mut client, 200);
    let history = client.call("history");
    assert_eq!(history["audit"]["verified"], true, "{history}");
    assert!(
        history["audit"]["records"].as_u64().unwrap() > before,
        "{history}"
    );
    let (code, out) = run(
        &[
            "history",
            "--audit-log",
            audit.to_str().unwrap(),
            "--verify",
        ],
        daemon.sandbox.dir(),
    );
    assert_eq!(code, 0, "{out}");
    drop(daemon); // before the disk is unmounted
}

#[test]
fn the_daemons_audit_failure_choice_is_checked_on_the_command_line() {
    use crate::daemon::run;

    let sandbox = Sandbox::new();
    let (code, out) = run(&["--on-audit-failure", "sometimes"], sandbox.dir());
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("fail-closed") && out.contains("continue"),
        "{out}"
    );
    let (code, out) = run(&["--on-audit-failure", "continue"], sandbox.dir());
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("--audit-log"), "{out}");
}
