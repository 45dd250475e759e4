//! What an engine tells about itself: the pipeline and policy it was built with, its `Debug`, a
//! history of length 0, how a watched file's change is described. Each test names the mutants
//! it kills (cargo-mutants, issue 22): before them only doc tests, which the mutation runs do
//! not run, read these.

use std::sync::{Arc, Mutex};

use hotcfg::{
    ApplyContext, BoxError, Format, MemorySource, Pipeline, PlanOptions, ReloadResult, Reloader,
    RestartPolicy, ScopeHandler, Source, SourceIdentity, Violations,
};
use hotcfg_tests::Sandbox;

use super::startup::{text, Config};

fn at_least_one_worker(config: &Config, v: &mut Violations) {
    if config.workers == 0 {
        v.push("workers", "must be at least 1");
    }
}

fn source(workers: usize, cert: &str) -> MemorySource {
    MemorySource::new("app.toml", Format::Toml, text(workers, cert))
}

/// Kills `Reloader::policy`, `Reloader::pipeline` and `Pipeline::restart_policy` replaced by
/// defaults, `Clone for Pipeline` replaced by `Default::default()` (the clone would lose the
/// validator and policy), and `Debug` for `Reloader`, `ReloaderBuilder`, `Pipeline` and
/// `Handlers` replaced by an empty `Ok`.
#[test]
fn an_engine_reads_back_the_pipeline_it_was_built_with_and_shows_it_in_debug() {
    let pipeline = Pipeline::<Config>::new()
        .validator(at_least_one_worker)
        .policy(RestartPolicy::Defer);
    let reloader = Reloader::builder(source(2, "/dev/null"))
        .pipeline(pipeline.clone())
        .build()
        .unwrap();
    assert_eq!(reloader.policy(), RestartPolicy::Defer, "not the default");
    assert_eq!(reloader.pipeline().restart_policy(), RestartPolicy::Defer);
    // The engine's own pipeline validates as the one it was given.
    let refused = source(0, "/dev/null").read().unwrap();
    let error = reloader.pipeline().load(&refused).unwrap_err();
    assert!(
        error.to_string().contains("`workers`: must be at least 1"),
        "{error}"
    );

    let builder = Reloader::builder(source(2, "/dev/null"))
        .pipeline(pipeline)
        .on_apply("pool", |_| Ok(()));
    let shown = format!("{builder:?}");
    for part in [
        "ReloaderBuilder { source: MemorySource",
        "pipeline: Pipeline {",
        "validator: true, policy: Defer",
        "handlers: Handlers { scopes: [\"pool\"] }",
    ] {
        assert!(shown.contains(part), "{part:?} not in {shown}");
    }

    let shown = format!("{reloader:?}");
    for part in [
        "Reloader { source: MemorySource",
        "\"app.toml\"",
        "pipeline: Pipeline { loader: Loader {",
        "validator: true, policy: Defer",
        "generation: 1",
    ] {
        assert!(shown.contains(part), "{part:?} not in {shown}");
    }
}

/// Kills `>` into `>=` in `Recorder::record`'s `history_len > 0` (with 0 kept, it would pop
/// an empty history for ever).
#[test]
fn a_history_of_length_0_keeps_no_events_but_the_last_one_is_known() {
    let source = source(2, "/dev/null");
    let reloader = Reloader::<Config>::builder(source.clone())
        .history_len(0)
        .build()
        .unwrap();
    source.set(text(3, "/dev/null"));
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert!(reloader.history().is_empty());
    assert_eq!(reloader.last_event().generation, 2);
}

/// Kills `describe` in `engine/referenced.rs` replaced by `""` or `"xyzzy"`: a watched file's
/// change names the file and the first 12 digits of each content's SHA-256, or says it cannot
/// be read.
#[test]
fn a_watched_files_change_names_the_file_and_both_contents_hashes() {
    let sandbox = Sandbox::new();
    let cert = sandbox.write("c.pem", "first");
    let source = source(2, &cert.display().to_string());
    let reloader = Reloader::<Config>::builder(source.clone()).build().unwrap();
    let sha = |text: &str| SourceIdentity::new("", text.as_bytes()).sha256[..12].to_string();

    sandbox.write("c.pem", "second");
    let event = reloader.reload_now();
    let change = event.changes.iter().find(|c| c.path == "cert").unwrap();
    let described = |text: &str| format!("{} (sha256 {})", cert.display(), sha(text));
    assert_eq!(change.old.as_deref(), Some(described("first").as_str()));
    assert_eq!(change.new.as_deref(), Some(described("second").as_str()));

    std::fs::remove_file(&cert).unwrap();
    let event = reloader.reload_now();
    let change = event.changes.iter().find(|c| c.path == "cert").unwrap();
    let unreadable = format!("{} (unreadable)", cert.display());
    assert_eq!(change.new.as_deref(), Some(unreadable.as_str()), "{event}");
}

/// Notes the generation each `prepare` and `apply` is told.
struct Generations(Arc<Mutex<Vec<(&'static str, u64)>>>);

impl ScopeHandler<Config> for Generations {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(("prepare", cx.generation));
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(("apply", cx.generation));
        Ok(())
    }
}

/// Kills `+` into `-` or `*` in `Reloader::plan_here`'s `live.generation() + 1`: a dry run's
/// `prepare` is told the generation the change would get, as a reload's is.
#[test]
fn a_dry_runs_prepare_is_told_the_generation_the_change_would_get() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let live = source(2, "/dev/null");
    let reloader = Reloader::<Config>::builder(live.clone())
        .handler("pool", Generations(Arc::clone(&seen)))
        .build()
        .unwrap();
    live.set(text(3, "/dev/null"));
    reloader.reload_now();
    seen.lock().unwrap().clear();
    let candidate = source(4, "/dev/null").read().unwrap();
    let plan = reloader.plan_with(Ok(candidate), PlanOptions::new().run_prepare());
    assert!(plan.prepare.is_some(), "{plan}");
    live.set(text(4, "/dev/null"));
    reloader.reload_now();
    assert_eq!(
        *seen.lock().unwrap(),
        [("prepare", 3), ("prepare", 3), ("apply", 3)],
        "the dry run's, then the reload's"
    );
}

/// Kills `>` into `>=` in `build_here`'s `snapshots_kept > 0`: with `snapshots_kept(0)` the
/// audit log names no snapshot and none is written.
#[test]
fn with_snapshots_kept_0_no_snapshot_is_written_or_named() {
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let live = source(2, "/dev/null");
    let reloader = Reloader::<Config>::builder(live.clone())
        .audit_log(&audit)
        .snapshots_kept(0)
        .build()
        .unwrap();
    live.set(text(3, "/dev/null"));
    reloader.reload_now();
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(!log.contains("\"snapshot\""), "{log}");
    assert!(!hotcfg::audit::snapshot_dir(&audit).exists());
}

/// Refuses a certificate whose file says "bad".
struct Tls;

impl ScopeHandler<Config> for Tls {
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        match std::fs::read_to_string(&cx.new.cert) {
            Ok(text) if text == "bad" => Err("the certificate is bad".into()),
            _ => Ok(()),
        }
    }
}

/// A reload that fails on a watched file's change, the configuration's bytes unchanged, is
/// followed by a recorded `unchanged` once the file is put back: the failure is over. Kills `&&`
/// into `||` in `Reloader::reported_live` (the failed event names the same bytes, so the
/// mutant took them as already reported live and recorded nothing).
#[test]
fn a_watched_file_put_back_after_a_failure_is_recorded_as_unchanged() {
    let sandbox = Sandbox::new();
    let cert = sandbox.write("c.pem", "good");
    let live = source(2, &cert.display().to_string());
    let reloader = Reloader::<Config>::builder(live)
        .handler("tls", Tls)
        .build()
        .unwrap();
    sandbox.write("c.pem", "bad");
    let failed = reloader.reload_now();
    assert!(
        matches!(failed.result, ReloadResult::Failed { .. }),
        "{failed}"
    );
    sandbox.write("c.pem", "good");
    let event = reloader.reload_now();
    assert!(matches!(event.result, ReloadResult::Unchanged), "{event}");
    let kinds: Vec<&str> = reloader.history().iter().map(|e| e.result.kind()).collect();
    assert_eq!(kinds, ["applied", "failed", "unchanged"], "recorded");
}
