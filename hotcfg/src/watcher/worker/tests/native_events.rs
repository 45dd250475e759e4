//! The native backend's events as the worker takes them: what it counts, what it looks at,
//! and when it falls back to polling (issue 22: no unit test drove `take_all`, `on_native`,
//! `reconcile` or `fall_back`).

use notify::event::{AccessKind, AccessMode, DataChange, ModifyKind, RemoveKind};
use notify::EventKind;

use super::*;

fn on(kind: EventKind, path: &std::path::Path) -> Msg {
    Msg::Native(Ok(notify::Event::new(kind).add_path(path.to_path_buf())))
}

fn closed_after_writing() -> EventKind {
    EventKind::Access(AccessKind::Close(AccessMode::Write))
}

fn written() -> EventKind {
    EventKind::Modify(ModifyKind::Data(DataChange::Any))
}

fn failed(error: notify::Error) -> Msg {
    Msg::Native(Err(error))
}

/// Gives `w` the messages as one batch, as its thread does with what is queued. Whether the
/// watcher goes on.
fn take(w: &mut Worker, msgs: Vec<Msg>) -> bool {
    let mut queue = msgs.into_iter();
    let first = queue.next().expect("a message");
    w.take_all(first, || queue.next())
}

fn limit_errors() -> [MakeError; 2] {
    [
        || notify::Error::new(notify::ErrorKind::MaxFilesWatch),
        // inotify's max_user_watches.
        || notify::Error::io(std::io::Error::from_raw_os_error(28)),
    ]
}

#[test]
fn every_native_event_is_counted_and_only_those_about_watched_files_are_changes() {
    let (_tmp, file) = config_file();
    let (mut w, _) = worker(&file, vec![], 3);
    go_native(&mut w);
    let other = file.with_file_name("b.log");
    let batch = vec![
        on(closed_after_writing(), &file),
        on(written(), &file),
        on(written(), &file),
        on(written(), &other),
        on(EventKind::Access(AccessKind::Read), &file),
    ];
    assert!(
        take(&mut w, batch),
        "no stop in the batch: the watcher goes on"
    );
    let stats = &w.stats;
    assert_eq!(
        (stats.fs_events, stats.changes, stats.completions),
        (5, 3, 1),
        "five events; three about the file (a read is none); one completed a save"
    );
    assert!(w.debouncer.is_pending(), "a look is scheduled");
}

#[test]
fn a_stop_ends_the_batch_and_nothing_after_it_is_taken() {
    let (_tmp, file) = config_file();
    let (mut w, _) = worker(&file, vec![], 3);
    go_native(&mut w);
    assert!(!take(&mut w, vec![on(written(), &file), Msg::Stop]));
    assert_eq!(w.stats.fs_events, 1, "what came before the stop is taken");
    assert!(!take(&mut w, vec![Msg::Stop, on(written(), &file)]));
    assert_eq!(w.stats.fs_events, 1, "what comes after it is not");
}

#[test]
fn a_watch_limit_reported_by_the_native_watcher_falls_back_to_polling() {
    for limit in limit_errors() {
        let (_tmp, file) = config_file();
        let (mut w, _) = worker(&file, vec![], 3);
        go_native(&mut w);
        let before = Instant::now();
        assert!(take(&mut w, vec![failed(limit())]));
        let Active::Poll(poll) = &w.active else {
            panic!("{}: still native", limit());
        };
        assert_eq!(poll.interval, w.fallback_interval);
        assert_eq!((w.stats.fs_events, w.stats.fallbacks), (1, 1));
        let look = w
            .debouncer
            .deadline()
            .expect("a change may have gone unseen: look");
        assert!(
            look >= before + w.fallback_interval,
            "only a poll can see quiet: the debounce lasts an interval"
        );

        // Sent by the native watcher before it was dropped: nobody counts on it any more.
        assert!(take(&mut w, vec![on(written(), &file)]));
        assert_eq!((w.stats.fs_events, w.stats.changes), (1, 0));
        w.publish();
        assert_eq!(w.shared.stats().backend, Backend::Poll);
    }
}

#[test]
fn another_native_watcher_error_keeps_it_and_looks_at_the_files_again() {
    let (_tmp, file) = config_file();
    let (mut w, _) = worker(&file, vec![], 3);
    let watches = go_native(&mut w);
    let overflow = notify::Error::generic("event queue overflowed");
    assert!(take(&mut w, vec![failed(overflow)]));
    assert!(
        matches!(&w.active, Active::Native(native) if native.dirty),
        "still native, resolving the paths again at the next step"
    );
    assert_eq!((w.stats.fs_events, w.stats.fallbacks), (1, 0));
    assert!(
        w.step(),
        "events may have been lost: the files are looked at"
    );
    assert_eq!(w.stats.rearms, 0, "the same directory: no new watch");
    assert_eq!(watches.calls().len(), 1, "only the first watch");
}

#[test]
fn a_replaced_directory_is_watched_anew() {
    let (_tmp, file) = config_file();
    let dir = file.parent().unwrap().to_path_buf();
    let (mut w, _) = worker(&file, vec![], 3);
    let watches = go_native(&mut w);
    assert!(take(
        &mut w,
        vec![on(EventKind::Remove(RemoveKind::Folder), &dir)]
    ));
    assert!(w.step(), "events before the new watch were not seen: look");
    assert_eq!(w.stats.rearms, 1);
    assert_eq!(
        watches.calls(),
        [
            ("watch", dir.clone()),
            ("unwatch", dir.clone()),
            ("watch", dir)
        ]
    );
}

#[test]
fn a_directory_that_cannot_be_watched_again_falls_back_to_polling() {
    let errors = limit_errors()
        .into_iter()
        .chain([(|| notify::Error::generic("the watcher is gone")) as MakeError]);
    for error in errors {
        let (_tmp, file) = config_file();
        let dir = file.parent().unwrap().to_path_buf();
        let (mut w, _) = worker(&file, vec![], 3);
        let watches = go_native(&mut w);
        watches.fail_with(error);
        assert!(take(
            &mut w,
            vec![on(EventKind::Remove(RemoveKind::Folder), &dir)]
        ));
        w.step();
        assert!(
            matches!(w.active, Active::Poll(_)),
            "{}: still native",
            error()
        );
        assert_eq!((w.stats.rearms, w.stats.fallbacks), (0, 1));
    }
}
