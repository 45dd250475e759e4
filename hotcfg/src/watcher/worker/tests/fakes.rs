//! What the worker's tests drive it with: an engine answering from a script, a native watcher
//! that records its watches, and a log of the warnings given.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

/// An engine that records triggers and answers looks and triggers from a script.
pub(super) struct FakeEngine {
    pub live: Live,
    pub looks: Arc<Mutex<Vec<Look>>>,
    pub triggers: Triggers,
    pub outcomes: Arc<Mutex<Vec<Triggered>>>,
    /// Run during every dry run: a writer at work meanwhile.
    pub during_look: Option<Box<dyn Fn() + Send>>,
}

/// The engine's live state, which a test changes after handing the engine to the worker.
#[derive(Clone)]
pub(super) struct Live {
    files: Arc<Mutex<Vec<PathBuf>>>,
    generation: Arc<AtomicU64>,
}

impl Live {
    /// A reload the watcher did not start (SIGHUP, the API) made the configuration name `files`.
    pub fn reloaded_naming(&self, files: &[PathBuf]) {
        *self.files.lock().unwrap() = files.to_vec();
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Engine for FakeEngine {
    fn watched_files(&self) -> Vec<PathBuf> {
        self.live.files.lock().unwrap().clone()
    }
    fn generation(&self) -> u64 {
        self.live.generation.load(Ordering::SeqCst)
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

pub(super) type Triggers = Arc<Mutex<Vec<PathBuf>>>;

/// A configuration file `a.toml` holding `x = 1`, by its canonical path (the native backend
/// watches resolved directories), in a directory that lasts as long as the guard.
pub(super) fn config_file() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().canonicalize().unwrap().join("a.toml");
    std::fs::write(&file, "x = 1").unwrap();
    (tmp, file)
}

pub(super) fn fake(file: &Path, looks: Vec<Look>) -> (FakeEngine, Triggers) {
    let triggers = Arc::new(Mutex::new(Vec::new()));
    let engine = FakeEngine {
        live: Live {
            files: Arc::new(Mutex::new(vec![file.to_path_buf()])),
            generation: Arc::new(AtomicU64::new(1)),
        },
        looks: Arc::new(Mutex::new(looks)),
        triggers: Arc::clone(&triggers),
        outcomes: Arc::default(),
        during_look: None,
    };
    (engine, triggers)
}

pub(super) fn worker(file: &Path, looks: Vec<Look>, retries: u32) -> (Worker, Triggers) {
    let (engine, triggers) = fake(file, looks);
    (worker_for(engine, retries), triggers)
}

/// A worker on `engine`, polling every hour (so never during a test), with no debounce: a
/// change makes the look due at once.
pub(super) fn worker_for(engine: FakeEngine, retries: u32) -> Worker {
    let files = engine.watched_files();
    let generation = engine.generation();
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
        generation,
        fallback_interval: Duration::from_secs(1),
        shared: Arc::default(),
        stats: WatchStats::default(),
        read_failed_for_now: false,
    }
}

/// A `watch` or `unwatch` call, and the directory it named.
pub(super) type Call = (&'static str, PathBuf);

/// Makes the error a native watcher fails with (`notify::Error` is not `Clone`).
pub(super) type MakeError = fn() -> notify::Error;

/// What a [`FakeWatcher`] was asked to do, and how it fails.
#[derive(Clone, Default)]
pub(super) struct Watches {
    calls: Arc<Mutex<Vec<Call>>>,
    /// The error every `watch` fails with from now on, if any.
    failure: Arc<Mutex<Option<MakeError>>>,
}

impl Watches {
    /// The `watch` and `unwatch` calls so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub fn fail_with(&self, error: MakeError) {
        *self.failure.lock().unwrap() = Some(error);
    }
}

/// A native watcher that sends no events (the tests hand the worker its events) and records
/// the directories it is asked to watch.
struct FakeWatcher(Watches);

impl notify::Watcher for FakeWatcher {
    fn new<F: notify::EventHandler>(_: F, _: notify::Config) -> notify::Result<Self> {
        Ok(FakeWatcher(Watches::default()))
    }
    fn watch(&mut self, path: &Path, _: notify::RecursiveMode) -> notify::Result<()> {
        if let Some(error) = *self.0.failure.lock().unwrap() {
            return Err(error());
        }
        self.0
            .calls
            .lock()
            .unwrap()
            .push(("watch", path.to_path_buf()));
        Ok(())
    }
    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.0
            .calls
            .lock()
            .unwrap()
            .push(("unwatch", path.to_path_buf()));
        Ok(())
    }
    fn kind() -> notify::WatcherKind {
        notify::WatcherKind::NullWatcher
    }
}

/// Switches `w` to a native backend on a [`FakeWatcher`], its watches in place as at the start.
pub(super) fn go_native(w: &mut Worker) -> Watches {
    let watches = Watches::default();
    let mut native = NativeBackend::new(Box::new(FakeWatcher(watches.clone())));
    assert!(
        native
            .reconcile(&w.files)
            .expect("the fake watcher watches"),
        "the files' directory is watched"
    );
    w.active = Active::Native(native);
    watches
}
