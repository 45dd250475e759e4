//! Tests of [`super`].

use super::*;

/// An engine that records triggers and answers looks and triggers from a script.
struct FakeEngine {
    files: Vec<PathBuf>,
    looks: Arc<Mutex<Vec<Look>>>,
    triggers: Arc<Mutex<Vec<PathBuf>>>,
    outcomes: Arc<Mutex<Vec<Triggered>>>,
    /// Run during every dry run: a writer at work meanwhile.
    during_look: Option<Box<dyn Fn() + Send>>,
}

impl Engine for FakeEngine {
    fn watched_files(&self) -> Vec<PathBuf> {
        self.files.clone()
    }
    fn generation(&self) -> u64 {
        1
    }
    fn look(&self) -> Look {
        if let Some(write) = &self.during_look {
            write();
        }
        let mut looks = self.looks.lock().unwrap();
        if looks.is_empty() {
            Look::Reload
        } else {
            looks.remove(0)
        }
    }
    fn trigger(&self, file: PathBuf) -> Triggered {
        self.triggers.lock().unwrap().push(file);
        let mut outcomes = self.outcomes.lock().unwrap();
        if outcomes.is_empty() {
            Triggered::Done
        } else {
            outcomes.remove(0)
        }
    }
}

type Triggers = Arc<Mutex<Vec<PathBuf>>>;

fn fake(file: &std::path::Path, looks: Vec<Look>) -> (FakeEngine, Triggers) {
    let triggers = Arc::new(Mutex::new(Vec::new()));
    let engine = FakeEngine {
        files: vec![file.to_path_buf()],
        looks: Arc::new(Mutex::new(looks)),
        triggers: Arc::clone(&triggers),
        outcomes: Arc::default(),
        during_look: None,
    };
    (engine, triggers)
}

fn worker(file: &std::path::Path, looks: Vec<Look>, retries: u32) -> (Worker, Triggers) {
    let (engine, triggers) = fake(file, looks);
    (worker_for(engine, retries), triggers)
}

fn worker_for(engine: FakeEngine, retries: u32) -> Worker {
    let files = engine.files.clone();
    let timing = Timing {
        window: Duration::ZERO,
        max_delay: Duration::ZERO,
        retry_delay: Duration::ZERO,
        retries,
    };
    Worker {
        engine: Box::new(engine),
        debouncer: Debouncer::new(SystemClock, timing),
        timing,
        active: Active::Poll(PollBackend::new(Duration::from_secs(3600), &files)),
        at_trigger: fingerprint(&files),
        files,
        generation: 1,
        fallback_interval: Duration::from_secs(1),
        shared: Arc::default(),
        stats: WatchStats::default(),
        read_failed_for_now: false,
    }
}

#[test]
fn a_write_during_the_dry_run_is_looked_at_again_before_reloading() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (mut engine, triggers) = fake(&file, vec![]);
    let writer = file.clone();
    let step = Arc::new(Mutex::new(2));
    let steps = Arc::clone(&step);
    engine.during_look = Some(Box::new(move || {
        let mut step = steps.lock().unwrap();
        *step += 1;
        std::fs::write(&writer, format!("x = {step}")).unwrap();
    }));
    let mut w = worker_for(engine, 3);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    assert!(
        triggers.lock().unwrap().is_empty(),
        "the bytes changed during the dry run: the engine could read a torn file"
    );
    assert_eq!(w.stats.retries, 1);
}

#[test]
fn new_metadata_during_the_dry_run_is_looked_at_again_before_reloading() {
    // Same bytes before and after the dry run, but the file was written meanwhile (its
    // modification time moved): a writer may be at work, as in a truncate-then-rewrite.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (mut engine, triggers) = fake(&file, vec![]);
    let writer = file.clone();
    engine.during_look = Some(Box::new(move || {
        let f = std::fs::File::options().write(true).open(&writer).unwrap();
        let moved = f.metadata().unwrap().modified().unwrap() + Duration::from_secs(1);
        f.set_modified(moved).unwrap();
    }));
    let mut w = worker_for(engine, 3);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    assert!(
        triggers.lock().unwrap().is_empty(),
        "the file was touched during the dry run: look again first"
    );
    assert_eq!(w.stats.retries, 1);
}

fn out_of_descriptors() -> Look {
    Look::Unavailable(format!(
        "cannot read configuration: a.toml: {}",
        std::io::Error::from_raw_os_error(24)
    ))
}

#[test]
fn a_read_failing_for_now_is_reported_once_then_retried_until_it_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let looks = (0..5).map(|_| out_of_descriptors()).collect();
    let (engine, triggers) = fake(&file, looks);
    *engine.outcomes.lock().unwrap() = vec![Triggered::ReadFailedForNow];
    let mut w = worker_for(engine, 1);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    assert!(triggers.lock().unwrap().is_empty(), "a retry first");
    w.look();
    assert_eq!(
        triggers.lock().unwrap().len(),
        1,
        "then the failure is reported"
    );
    assert!(w.debouncer.is_pending(), "and a look is scheduled");
    for _ in 0..3 {
        w.look();
        assert_eq!(
            triggers.lock().unwrap().len(),
            1,
            "one failed reload, not one per look"
        );
        assert!(
            w.debouncer.is_pending(),
            "looking again while it cannot read"
        );
    }
    // Kills `+=` into `*=` in `look_again` (issue 22): each quiet look again is a retry.
    assert_eq!(
        w.stats.retries, 4,
        "one retry before the report, three after"
    );
    // Descriptors are back: the dry run reads the edit, the reload applies it.
    w.look();
    assert_eq!(triggers.lock().unwrap().len(), 2);
    w.look();
    assert_eq!(
        triggers.lock().unwrap().len(),
        2,
        "loaded: nothing more to do"
    );
    // Kills `settle` replaced by `()` (issue 22): once loaded, the read failure is over and
    // the retry budget full again.
    assert!(!w.read_failed_for_now, "settled");
    assert_eq!(w.debouncer.attempts(), 0);
}

#[test]
fn a_reload_whose_read_fails_for_now_leaves_the_edit_to_be_loaded() {
    // The watcher read the files, the engine could not a moment later.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (engine, triggers) = fake(&file, vec![]);
    *engine.outcomes.lock().unwrap() = vec![Triggered::ReadFailedForNow];
    let mut w = worker_for(engine, 3);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    assert_eq!(triggers.lock().unwrap().len(), 1);
    assert!(w.debouncer.is_pending(), "a look is scheduled");
    w.look();
    assert_eq!(
        triggers.lock().unwrap().len(),
        2,
        "the edit is loaded again"
    );
    w.look();
    assert_eq!(triggers.lock().unwrap().len(), 2);
}

#[test]
fn identical_bytes_never_trigger() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (mut w, triggers) = worker(&file, vec![], 3);
    w.look();
    std::fs::write(&file, "x = 1").unwrap();
    w.look();
    assert!(triggers.lock().unwrap().is_empty());
    assert_eq!(w.stats.skipped, 2);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    w.look();
    assert_eq!(*triggers.lock().unwrap(), vec![file.clone()]);
    // Kills `+=` into `*=` on `checks` in `consider` and on `triggers` in `reloaded` (issue 22).
    assert_eq!((w.stats.checks, w.stats.triggers), (4, 1));
}

#[test]
fn incomplete_content_is_retried_then_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let torn = || Look::Incomplete("cannot parse".into());
    let (mut w, triggers) = worker(&file, vec![torn(), torn(), torn()], 2);
    std::fs::write(&file, "x =").unwrap();
    w.look();
    w.look();
    assert!(triggers.lock().unwrap().is_empty(), "two retries first");
    assert_eq!(w.stats.retries, 2);
    w.look();
    assert_eq!(
        triggers.lock().unwrap().len(),
        1,
        "then the error is reported"
    );
}

#[test]
fn newly_watched_files_the_engine_already_knows_do_not_trigger() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (mut w, triggers) = worker(&file, vec![Look::Unchanged], 3);
    w.at_trigger.clear();
    w.look();
    assert!(triggers.lock().unwrap().is_empty());
    assert_eq!(w.at_trigger.len(), 1, "their content is adopted");
    // Kills `+=` into `*=` on `skipped` there (issue 22).
    assert_eq!(w.stats.skipped, 1);
}

/// Kills `&&` into `||` in `consider`'s `look == Look::Unchanged && only_new` (issue 22): a
/// newly watched file holding what the engine has not loaded is reloaded, not adopted.
#[test]
fn newly_watched_files_the_engine_has_not_loaded_trigger() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (mut w, triggers) = worker(&file, vec![Look::Reload], 3);
    w.at_trigger.clear();
    w.look();
    assert_eq!(*triggers.lock().unwrap(), vec![file.clone()]);
    assert_eq!(w.stats.skipped, 0);
}

/// Kills `+` into `-` in `next_wake` (issue 22): an idle watcher sleeps until its next refresh,
/// it does not wake at once and spin.
#[test]
fn an_idle_watcher_sleeps_until_its_next_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    let (w, _) = worker(&file, vec![], 3);
    let before = Instant::now();
    let wake = w.next_wake();
    assert!(
        wake >= before + REFRESH_EVERY,
        "wakes {:?} early",
        before + REFRESH_EVERY - wake
    );
    assert!(wake <= Instant::now() + REFRESH_EVERY);
}

/// The engine side of the watcher on a real [`Reloader`]. Kills the mutants of
/// `impl Engine for Reloader` the integration tests leave (issue 22): `generation` returning 0
/// or 1, `watched_files` returning nothing, and `look`'s guards replaced by `true` or `false`
/// (a validation error is reported at once, not retried as a torn write; a parse error is).
#[cfg(feature = "derive")]
#[test]
fn a_reloader_tells_the_watcher_its_files_its_generation_and_what_a_look_finds() {
    #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, crate::HotReload)]
    struct Cfg {
        #[reload(scope = "main")]
        value: u32,
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "value = 1").unwrap();
    let reloader = Reloader::<Cfg>::builder(crate::FileSource::new(&file))
        .validator(|cfg: &Cfg, violations| violations.check(cfg.value < 10, "value", "under 10"))
        .on_apply("main", |_| Ok(()))
        .build()
        .unwrap();
    let engine: &dyn Engine = &reloader;
    let first = reloader.handle().generation();
    assert_eq!(engine.watched_files(), std::slice::from_ref(&file));
    assert_eq!(engine.look(), Look::Unchanged);

    std::fs::write(&file, "value = 2").unwrap();
    assert_eq!(engine.look(), Look::Reload);
    assert_eq!(engine.trigger(file.clone()), Triggered::Done);
    std::fs::write(&file, "value = 3").unwrap();
    assert_eq!(engine.trigger(file.clone()), Triggered::Done);
    assert_eq!(
        engine.generation(),
        first + 2,
        "two reloads after the first load"
    );

    std::fs::write(&file, "value = 99").unwrap();
    assert_eq!(
        engine.look(),
        Look::Reload,
        "a validation error is reported at once"
    );
    std::fs::write(&file, "value =").unwrap();
    assert!(
        matches!(engine.look(), Look::Incomplete(_)),
        "a parse error may be a write in progress"
    );
}
