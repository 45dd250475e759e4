//! The reader threads of the model-based stress test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use hotcfg::{Reloader, Snapshot};
use hotcfg_tests::ReaderProgress;

use super::system::{Model, INVALID_A, VETO};

/// Readers: each loads the live version in a loop, checks its generation never goes back and its
/// values were never refused, and records every generation it sees with the version it saw.
/// `progress` counts their loads (the `a` handler waits on it); `broken` collects violations.
pub(super) struct Readers {
    stop: Arc<AtomicBool>,
    pub(super) seen: Arc<Mutex<Vec<(u64, Model)>>>,
    pub(super) broken: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

/// Reader threads of the model-based stress test.
pub(super) const READERS: usize = 3;

impl Readers {
    /// Starts the readers and returns once each has loaded at least once.
    pub(super) fn start(
        reloader: &Reloader<Model>,
        progress: &ReaderProgress,
        broken: &Arc<Mutex<Vec<String>>>,
    ) -> Readers {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..READERS)
            .map(|reader| {
                let handle = reloader.handle();
                let (stop, seen, broken) = (stop.clone(), seen.clone(), broken.clone());
                let progress = progress.clone();
                std::thread::spawn(move || {
                    let mut last = 0u64;
                    let mut reads = 0u64;
                    // Stop is checked after a load: every reader loads at least once (and
                    // `start` waits for that first load before the first step).
                    loop {
                        let snapshot: Arc<Snapshot<Model>> = handle.snapshot();
                        let generation = snapshot.generation();
                        if generation < last {
                            broken
                                .lock()
                                .unwrap()
                                .push(format!("generation went back: {last} -> {generation}"));
                        }
                        if snapshot.a >= INVALID_A || snapshot.b >= VETO {
                            broken.lock().unwrap().push(format!(
                                "a refused version is live: {:?}",
                                snapshot.config()
                            ));
                        }
                        if generation != last {
                            seen.lock()
                                .unwrap()
                                .push((generation, snapshot.config().clone()));
                            last = generation;
                        }
                        reads += 1;
                        progress.read(reader);
                        if reads.is_multiple_of(64) {
                            std::thread::yield_now();
                        }
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                    reads
                })
            })
            .collect();
        progress.wait_until_all_started();
        Readers {
            stop,
            seen,
            broken: broken.clone(),
            threads,
        }
    }

    pub(super) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|t| t.join().unwrap()).sum()
    }
}
