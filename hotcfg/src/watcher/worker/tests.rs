//! Tests of [`super`].

use super::*;

mod fakes;
mod native_events;
mod steps;

use crate::test_support::warnings;
use fakes::*;

#[test]
fn a_write_during_the_dry_run_is_looked_at_again_before_reloading() {
    let (_tmp, file) = config_file();
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
    let (_tmp, file) = config_file();
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

/// A worker whose engine's dry runs answer `looks` and whose reloads fail to read `failures`
/// times, on a file edited since the last reload.
fn edited_while_reads_fail(
    file: &std::path::Path,
    looks: Vec<Look>,
    failures: usize,
    retries: u32,
) -> (Worker, Triggers) {
    let (engine, triggers) = fake(file, looks);
    *engine.outcomes.lock().unwrap() = vec![Triggered::ReadFailedForNow; failures];
    let w = worker_for(engine, retries);
    std::fs::write(file, "x = 2").unwrap();
    (w, triggers)
}

fn out_of_descriptors() -> Look {
    Look::Unavailable(format!(
        "cannot read configuration: a.toml: {}",
        std::io::Error::from_raw_os_error(24)
    ))
}

#[test]
fn a_read_failing_for_now_is_reported_once_then_retried_until_it_loads() {
    let (_tmp, file) = config_file();
    let looks = (0..5).map(|_| out_of_descriptors()).collect();
    let (mut w, triggers) = edited_while_reads_fail(&file, looks, 1, 1);
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
    let (_tmp, file) = config_file();
    let (mut w, triggers) = edited_while_reads_fail(&file, vec![], 1, 3);
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

/// Kills `!` deleted in `reloaded` (issue 22): the operator is told that the files cannot be
/// read for now at the first failed reload, and not again at each further one.
#[test]
fn a_read_failing_for_now_is_warned_about_at_the_first_failed_reload_only() {
    let (_tmp, file) = config_file();
    let (mut w, triggers) = edited_while_reads_fail(&file, vec![], 2, 3);
    let (warnings, _guard) = warnings();
    let told = || {
        let warnings = warnings.lock().unwrap();
        warnings
            .iter()
            .filter(|m| m.contains("cannot be read for now"))
            .count()
    };
    w.look();
    assert_eq!(told(), 1, "told at the first failed reload");
    w.look();
    assert_eq!(triggers.lock().unwrap().len(), 2, "a second failed reload");
    assert_eq!(told(), 1, "not told again");
}

#[test]
fn identical_bytes_never_trigger() {
    let (_tmp, file) = config_file();
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
    let (_tmp, file) = config_file();
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
    let (_tmp, file) = config_file();
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
    let (_tmp, file) = config_file();
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
    let (_tmp, file) = config_file();
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

#[cfg(feature = "derive")]
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, crate::HotReload)]
struct Cfg {
    #[reload(scope = "main")]
    value: u32,
}

/// A reloader of [`Cfg`] from `source` whose values must be under 10.
#[cfg(feature = "derive")]
fn reloader(source: impl crate::Source) -> Reloader<Cfg> {
    Reloader::<Cfg>::builder(source)
        .validator(|cfg: &Cfg, violations| violations.check(cfg.value < 10, "value", "under 10"))
        .on_apply("main", |_| Ok(()))
        .build()
        .unwrap()
}

/// The engine side of the watcher on a real [`Reloader`]. Kills the mutants of
/// `impl Engine for Reloader` the integration tests leave (issue 22): `generation` returning 0
/// or 1, `watched_files` returning nothing, and `look`'s guards replaced by `true` or `false`
/// (a validation error is reported at once, not retried as a torn write; a parse error is).
#[cfg(feature = "derive")]
#[test]
fn a_reloader_tells_the_watcher_its_files_its_generation_and_what_a_look_finds() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("a.toml");
    std::fs::write(&file, "value = 1").unwrap();
    let reloader = reloader(crate::FileSource::new(&file));
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

/// Kills `look`'s guard `is_temporary` replaced by `false` (issue 22; session 4 left it, thinking
/// it needed the process out of descriptors): a source that cannot be read for now is
/// "unavailable" to a dry run, and a reload of it "failed for now"; one that is gone is
/// incomplete (maybe a save in progress).
#[cfg(feature = "derive")]
#[test]
fn a_reloader_tells_the_watcher_when_its_source_cannot_be_read_for_now() {
    use crate::{Format, MemorySource, SourceErrorKind};
    let source = MemorySource::new("app.toml", Format::Toml, "value = 1");
    let reloader = reloader(source.clone());
    let engine: &dyn Engine = &reloader;
    source.fail_reads(SourceErrorKind::Unavailable, "out of file descriptors");
    let look = engine.look();
    assert!(
        matches!(&look, Look::Unavailable(why) if why.contains("out of file descriptors")),
        "unavailable for now, not incomplete: {look:?}"
    );
    assert_eq!(
        engine.trigger("app.toml".into()),
        Triggered::ReadFailedForNow
    );
    source.fail_reads(SourceErrorKind::NotFound, "no such file");
    assert!(matches!(engine.look(), Look::Incomplete(_)));
    assert_eq!(engine.trigger("app.toml".into()), Triggered::Done);
}
