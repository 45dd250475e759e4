//! Issue 18: what "last known good" means, on the engine alone (a `MemorySource` that fails as
//! an unreachable store does): a version probation reverted is not good, in its run or after;
//! today's validation still judges the version; the option needs an audit log and snapshots;
//! the stale gauge. (Not under `fleet`: nothing here needs etcd, and the mutation tests of
//! `engine/last_known_good.rs` run without the etcd feature.)

use std::time::Duration;

use hotcfg::{
    BuildError, Format, Health, HotReload, MemorySource, ProbationStatus, Probe, ReloadResult,
    Reloader, ReloaderBuilder, SourceErrorKind, Trigger,
};
use hotcfg_tests::Sandbox;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
struct Config {
    #[reload(scope = "pool")]
    workers: u32,
}

const BOUND: Duration = Duration::from_secs(30);

fn engine(source: &MemorySource, sandbox: &Sandbox) -> ReloaderBuilder<Config> {
    Reloader::<Config>::builder(source.clone())
        .on_apply("pool", |_| Ok(()))
        .audit_log(sandbox.path("audit.jsonl"))
        .last_known_good()
}

fn down(source: &MemorySource) {
    source.fail_reads(SourceErrorKind::Unavailable, "the store cannot be reached");
}

#[test]
fn a_version_probation_reverted_is_not_last_known_good_in_its_run_or_a_later_one() {
    let sandbox = Sandbox::new();
    let source = MemorySource::new("app.toml", Format::Toml, "workers = 4");
    let unhealthy_at_9 = |probe: &Probe<Config>| match probe.new.workers {
        9 => Health::unhealthy("9 workers starve the database"),
        _ => Health::Healthy,
    };
    let reloader = engine(&source, &sandbox)
        .probation(Duration::from_millis(200), unhealthy_at_9)
        .probation_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    source.set("workers = 9");
    reloader.reload_now();
    let ended = reloader.wait_probation(BOUND);
    assert!(
        matches!(ended, ProbationStatus::Reverted { .. }),
        "{ended:?}"
    );
    assert_eq!(reloader.handle().load().workers, 4);
    drop(reloader);

    // A later run applies the same content again (the quarantine is in memory), and stops
    // before any verdict.
    let again = engine(&source, &sandbox).build().unwrap();
    assert_eq!(again.handle().load().workers, 9);
    drop(again);

    down(&source);
    let restarted = engine(&source, &sandbox).build().unwrap();
    assert_eq!(restarted.handle().load().workers, 4, "not the reverted 9");
    let Trigger::LastKnownGood(start) = &restarted.last_event().trigger else {
        panic!("{}", restarted.last_event());
    };
    assert_eq!(
        start.generation, 3,
        "the probation revert's generation: {start}"
    );
    assert_eq!(
        start.to_string(),
        format!(
            "generation 3 of an earlier run (applied at {}, sha256 {}): app.toml: the store \
             cannot be reached",
            start.applied_at,
            &start.sha256[..12]
        )
    );
    assert_eq!(restarted.stale().as_ref(), Some(start));
}

#[test]
fn a_source_that_answers_not_found_fails_the_start_even_with_a_version_kept() {
    let sandbox = Sandbox::new();
    let source = MemorySource::new("app.toml", Format::Toml, "workers = 4");
    drop(engine(&source, &sandbox).build().unwrap());
    source.fail_reads(SourceErrorKind::NotFound, "no such key");
    let err = engine(&source, &sandbox).build().unwrap_err();
    let BuildError::Config(error) = &err else {
        panic!("expected the read's own error, got {err}");
    };
    assert!(error.to_string().contains("no such key"), "{err}");
}

#[test]
fn a_last_known_good_version_that_todays_validation_refuses_is_not_started_from() {
    let sandbox = Sandbox::new();
    let source = MemorySource::new("app.toml", Format::Toml, "workers = 0");
    drop(engine(&source, &sandbox).build().unwrap());
    down(&source);
    let err = engine(&source, &sandbox)
        .validator(|c: &Config, v| {
            if c.workers == 0 {
                v.push("workers", "must be at least 1");
            }
        })
        .build()
        .unwrap_err();
    let BuildError::NoLastKnownGood { read, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(read.kind, SourceErrorKind::Unavailable);
    let text = err.to_string();
    assert!(
        text.starts_with("app.toml: the store cannot be reached; no last-known-good version"),
        "{text}"
    );
    assert!(text.contains("(generation 1, applied at "), "{text}");
    assert!(
        text.contains(
            "is refused now: invalid configuration: app.toml:1: `workers`: must be at least 1"
        ),
        "{text}"
    );
}

#[test]
fn last_known_good_needs_an_audit_log_and_snapshots() {
    let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
    let err = Reloader::<Config>::builder(source.clone())
        .last_known_good()
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("needs an audit_log"), "{err}");
    let sandbox = Sandbox::new();
    let err = engine(&source, &sandbox)
        .snapshots_kept(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("snapshots_kept(0)"), "{err}");
    // Without the option, an unreachable source fails as it always did.
    down(&source);
    let err = Reloader::<Config>::builder(source)
        .audit_log(sandbox.path("audit.jsonl"))
        .build()
        .unwrap_err();
    assert!(matches!(err, BuildError::Config(_)), "{err}");
}

#[test]
fn the_stale_gauge_is_1_from_a_last_known_good_start_until_the_source_answers() {
    let sandbox = Sandbox::new();
    let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // The last value set since the previous look (a snapshot drains what it reads).
    let gauge = || {
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .find(|(key, ..)| key.key().name() == hotcfg::metrics::CONFIG_STALE)
            .map(|(.., value)| value)
    };
    metrics::with_local_recorder(&recorder, || {
        drop(engine(&source, &sandbox).build().unwrap());
        assert_eq!(gauge(), Some(DebugValue::Gauge(0.0.into())));
        down(&source);
        let reloader = engine(&source, &sandbox).build().unwrap();
        assert_eq!(gauge(), Some(DebugValue::Gauge(1.0.into())));
        // A read that still fails leaves it stale.
        let event = reloader.reload_now();
        assert!(
            matches!(event.result, ReloadResult::Failed { .. }),
            "{event}"
        );
        assert!(reloader.stale().is_some());
        // The same content, read from the source: unchanged, recorded, no longer stale.
        source.set("workers = 2");
        let event = reloader.reload_now();
        assert!(matches!(event.result, ReloadResult::Unchanged), "{event}");
        assert_eq!(
            reloader.history().len(),
            3,
            "the unchanged read is recorded"
        );
        assert!(reloader.stale().is_none());
        assert_eq!(gauge(), Some(DebugValue::Gauge(0.0.into())));
    });
}
