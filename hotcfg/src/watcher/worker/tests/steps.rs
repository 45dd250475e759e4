//! The worker's step between looks (polls, picking up the files a reload names), what it
//! shares with the [`ConfigWatcher`](crate::watcher::ConfigWatcher), and its thread (issue 22:
//! no unit test drove `step`, `refresh_files`, `publish` or `run`).

use std::sync::mpsc;

use super::*;

/// Waits until the polling backend's next poll is due: a clock deadline a millisecond away,
/// not an event (nothing else could say when it has passed).
fn until_the_poll_is_due(w: &Worker) {
    let Active::Poll(poll) = &w.active else {
        panic!("a polling worker");
    };
    std::thread::sleep(poll.next().saturating_duration_since(Instant::now()));
}

#[test]
fn a_step_polls_when_a_poll_is_due_and_says_whether_to_look() {
    let (_tmp, file) = config_file();
    let (mut w, _) = worker(&file, vec![], 3);
    assert!(!w.step(), "no poll due, nothing changed: no look");
    assert_eq!(w.stats.polls, 0);

    w.active = Active::Poll(PollBackend::new(Duration::from_millis(1), &w.files));
    std::fs::write(&file, "x = 2").unwrap();
    until_the_poll_is_due(&w);
    assert!(w.step(), "the poll saw new bytes: look");
    assert_eq!((w.stats.polls, w.stats.changes), (1, 1));
    until_the_poll_is_due(&w);
    assert!(!w.step(), "the next poll saw nothing new");
    assert_eq!((w.stats.polls, w.stats.changes), (2, 1));
}

#[test]
fn a_reload_the_watcher_did_not_start_brings_in_the_files_it_names() {
    let (_tmp, file) = config_file();
    let dir = file.parent().unwrap().to_path_buf();
    let sub = dir.join("conf.d");
    std::fs::create_dir(&sub).unwrap();
    let extra = sub.join("b.toml");
    std::fs::write(&extra, "y = 1").unwrap();
    let (engine, triggers) = fake(&file, vec![Look::Unchanged]);
    let live = engine.live.clone();
    let mut w = worker_for(engine, 3);
    let watches = go_native(&mut w);

    live.reloaded_naming(&[file.clone(), extra.clone()]);
    assert!(w.step(), "a new file's content is not known yet: look");
    assert_eq!(w.files, [file.clone(), extra.clone()]);
    assert_eq!(w.generation, 2);
    assert_eq!(
        watches.calls(),
        [("watch", dir.clone()), ("watch", sub.clone())],
        "its directory is watched too"
    );
    assert_eq!(w.stats.rearms, 1);
    w.look();
    assert!(
        triggers.lock().unwrap().is_empty(),
        "the engine has that content already: adopted, not reloaded"
    );

    live.reloaded_naming(std::slice::from_ref(&file));
    assert!(!w.step(), "a file no longer named needs no look");
    assert_eq!(w.files, std::slice::from_ref(&file));
    assert_eq!(w.at_trigger.keys().collect::<Vec<_>>(), [&file]);
    assert_eq!(watches.calls().last(), Some(&("unwatch", sub)));
    assert_eq!(w.generation, 3);
}

#[test]
fn the_files_are_asked_for_only_after_a_new_generation() {
    let (_tmp, file) = config_file();
    let (engine, _) = fake(&file, vec![]);
    let live = engine.live.clone();
    let mut w = worker_for(engine, 3);
    live.reloaded_naming(&[]);
    w.generation = 2;
    assert!(!w.step());
    assert_eq!(w.files, [file], "the same generation: the same files");
}

#[test]
fn publish_shares_the_stats_the_backend_and_whether_a_look_is_pending() {
    let (_tmp, file) = config_file();
    let (mut w, _) = worker(&file, vec![], 3);
    std::fs::write(&file, "x = 2").unwrap();
    w.look();
    w.debouncer.change();
    w.publish();
    let shared = w.shared.stats();
    assert_eq!((shared.backend, shared.pending), (Backend::Poll, true));
    assert_eq!((shared.checks, shared.triggers), (1, 1));
    assert_eq!(shared, w.stats);
}

/// Waits (at most 10 s) until `what` holds of the stats the watcher thread published.
fn until_published(shared: &Shared, what: &str, holds: impl Fn(&WatchStats) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !holds(&shared.stats()) {
        assert!(
            Instant::now() < deadline,
            "not published within 10 s: {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The thread end to end: `run` replaced by `()`, or looping on after a stop, were caught only
/// by the integration tests' timeouts (issue 22).
#[test]
fn the_watcher_thread_takes_events_looks_publishes_and_stops_when_told() {
    let (_tmp, file) = config_file();
    let (mut w, triggers) = worker(&file, vec![], 3);
    go_native(&mut w);
    let shared = Arc::clone(&w.shared);
    let (tx, rx) = mpsc::channel();
    let (stopped_tx, stopped) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        w.run(rx);
        stopped_tx.send(()).unwrap();
    });
    std::fs::write(&file, "x = 2").unwrap();
    let event = notify::Event::new(notify::EventKind::Access(notify::event::AccessKind::Close(
        notify::event::AccessMode::Write,
    )))
    .add_path(file.clone());
    tx.send(Msg::Native(Ok(event))).unwrap();
    until_published(&shared, "the edit reloaded", |stats| stats.triggers == 1);
    assert_eq!(*triggers.lock().unwrap(), [file]);
    tx.send(Msg::Stop).unwrap();
    stopped
        .recv_timeout(Duration::from_secs(10))
        .expect("the watcher thread stops within 10 s when told");
    thread.join().unwrap();
}
