//! Running work: the concurrency slots, the loops, their progress and checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hotcfg::Handle;
use tokio::sync::{watch, Notify};

use crate::config::TaskDaemonConfig;
use crate::parked::Parked;
use crate::queue::{SubmitError, WorkItem, WorkQueue};
use crate::store::Store;
use crate::users::{ClaimRefused, TypeUsers};

/// How long a loop waits before retrying a completion record the store refused (a full disk).
const COMPLETION_RETRY: Duration = Duration::from_millis(200);

/// Concurrency slots whose number changes live. Lowering it never stops a running loop: new
/// loops wait until enough have finished.
pub struct Slots {
    max: AtomicUsize,
    taken: AtomicUsize,
    freed: Notify,
}

impl Slots {
    /// `max` slots, none taken.
    pub fn new(max: usize) -> Self {
        Slots {
            max: AtomicUsize::new(max),
            taken: AtomicUsize::new(0),
            freed: Notify::new(),
        }
    }

    /// Waits for a free slot and takes it.
    pub async fn acquire(self: &Arc<Self>) -> SlotGuard {
        loop {
            let freed = self.freed.notified();
            let taken = self.taken.load(Ordering::SeqCst);
            if taken < self.max.load(Ordering::SeqCst)
                && self
                    .taken
                    .compare_exchange(taken, taken + 1, Ordering::SeqCst, Ordering::SeqCst)
                    .is_ok()
            {
                return SlotGuard(Arc::clone(self));
            }
            freed.await;
        }
    }

    /// Changes the number of slots.
    pub fn set_max(&self, max: usize) {
        self.max.store(max, Ordering::SeqCst);
        self.freed.notify_waiters();
    }

    /// The number of slots.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

/// A taken slot, freed on drop.
pub struct SlotGuard(Arc<Slots>);

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.0.taken.fetch_sub(1, Ordering::SeqCst);
        self.0.freed.notify_waiters();
    }
}

/// A running loop, as `status` shows it.
pub struct LoopState {
    /// Its loop type.
    pub loop_type: String,
    /// Iterations completed.
    pub iterations: AtomicU64,
    /// The configuration generation live when it started.
    pub started_generation: u64,
}

/// Jobs using a loop type, as a veto names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Users {
    pub running: usize,
    pub queued: usize,
}

/// Everything the loops share.
pub struct Work {
    handle: OnceLock<Handle<TaskDaemonConfig>>,
    data_dir: OnceLock<PathBuf>,
    store: OnceLock<Store>,
    pub queue: WorkQueue,
    pub slots: Arc<Slots>,
    pub running: Mutex<BTreeMap<u64, Arc<LoopState>>>,
    /// The claims of every job on its loop type: what a reload may not remove.
    pub users: Arc<TypeUsers>,
    /// Jobs whose loop type the live configuration does not define.
    pub parked: Parked,
    /// Templates read from `templates.template_files`, by file stem.
    pub file_templates: ArcSwap<BTreeMap<String, String>>,
    pub stopping: watch::Sender<bool>,
}

impl Work {
    /// State with no work yet. The scope handlers are built on it before the engine exists;
    /// [`attach`](Work::attach) connects it to the engine's handle once the engine has started.
    pub fn new() -> Arc<Self> {
        let (stopping, _) = watch::channel(false);
        Arc::new(Work {
            handle: OnceLock::new(),
            data_dir: OnceLock::new(),
            store: OnceLock::new(),
            queue: WorkQueue::new(0),
            slots: Arc::new(Slots::new(0)),
            running: Mutex::new(BTreeMap::new()),
            users: TypeUsers::new(),
            parked: Parked::default(),
            file_templates: ArcSwap::from_pointee(BTreeMap::new()),
            stopping,
        })
    }

    /// Connects to the live configuration and the durable state in `data_dir`, and sizes
    /// everything from the configuration.
    pub fn attach(
        &self,
        handle: Handle<TaskDaemonConfig>,
        data_dir: PathBuf,
    ) -> Result<(), String> {
        for dir in ["loops", "finished"] {
            let path = data_dir.join(dir);
            std::fs::create_dir_all(&path)
                .map_err(|e| format!("cannot create data directory {}: {e}", path.display()))?;
        }
        let store = Store::open(&data_dir)?;
        let config = handle.snapshot();
        self.queue.set_capacity(config.limits.queue_capacity);
        self.slots.set_max(config.limits.max_concurrent);
        let _ = self.store.set(store);
        let _ = self.data_dir.set(data_dir);
        let _ = self.handle.set(handle);
        Ok(())
    }

    /// The durable state.
    pub fn store(&self) -> &Store {
        self.store
            .get()
            .expect("Work::attach runs before any work starts")
    }

    /// The live configuration.
    pub fn handle(&self) -> &Handle<TaskDaemonConfig> {
        self.handle
            .get()
            .expect("Work::attach runs before any work starts")
    }

    fn data_dir(&self) -> &Path {
        self.data_dir
            .get()
            .expect("Work::attach runs before any work starts")
    }

    fn running(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<LoopState>>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Loop ids and states, by id.
    pub fn running_loops(&self) -> Vec<(u64, Arc<LoopState>)> {
        self.running()
            .iter()
            .map(|(id, s)| (*id, Arc::clone(s)))
            .collect()
    }

    /// Jobs using `loop_type`, for a reload's veto message: running loops and queued items
    /// (the rest of the [claims](TypeUsers) are being submitted, started or are parked).
    pub fn users_of(&self, loop_type: &str) -> Users {
        let running = self
            .running()
            .values()
            .filter(|s| s.loop_type == loop_type)
            .count();
        let queued = self
            .queue
            .queued_types()
            .iter()
            .filter(|t| *t == loop_type)
            .count();
        Users { running, queued }
    }

    /// Queues a new loop of `loop_type`; the id is returned only once the job is committed.
    /// The job claims its type before anything else (see [`TypeUsers`]), so no reload removes it
    /// meanwhile. Concurrent submits hold a place in the queue each and share commits (the
    /// store's group commit). Blocks on the disk: call it off the async workers.
    pub fn submit(&self, loop_type: &str) -> Result<u64, String> {
        let handle = self.handle();
        let claim = self
            .users
            .claim_new(loop_type, || handle.load().loops.contains_key(loop_type))
            .map_err(|refused| {
                let known: Vec<String> = handle.load().loops.keys().cloned().collect();
                let why = match refused {
                    ClaimRefused::Unknown => "",
                    ClaimRefused::Closing => " (a reload is removing it)",
                };
                format!(
                    "unknown loop type `{loop_type}`{why} (known: {})",
                    known.join(", ")
                )
            })?;
        let place = self.queue.reserve().map_err(|err| match err {
            SubmitError::Full { capacity } => format!("queue full ({capacity} items)"),
            SubmitError::Closed => "shutting down".to_string(),
        })?;
        let id = self
            .store()
            .submit(loop_type)
            .map_err(|err| format!("{err}; the item was not queued"))?;
        // Committed, so acknowledged even if a shutdown closed the queue meanwhile: the next
        // start runs it.
        place.fill(WorkItem { id, claim, done: 0 });
        Ok(id)
    }

    /// Starts queued loops as slots free up, until the queue closes; resumes parked jobs when a
    /// reload defines their type again.
    pub async fn dispatch(self: Arc<Self>) {
        tokio::spawn(Arc::clone(&self).resume_parked_on_reload());
        loop {
            let slot = self.slots.acquire().await;
            let Some(item) = self.queue.pop().await else {
                return;
            };
            let work = Arc::clone(&self);
            tokio::spawn(async move {
                work.run_loop(item).await;
                drop(slot);
            });
        }
    }

    /// Runs one loop: every iteration takes one snapshot of the configuration, so a reload never
    /// changes a definition in the middle of an iteration.
    async fn run_loop(self: &Arc<Self>, item: WorkItem) {
        let state = Arc::new(LoopState {
            loop_type: item.loop_type().to_string(),
            iterations: AtomicU64::new(item.done),
            started_generation: self.handle().generation(),
        });
        self.running().insert(item.id, Arc::clone(&state));
        let mut stopping = self.stopping.subscribe();
        let item_id = item.id;
        let log_path = self
            .data_dir()
            .join("loops")
            .join(format!("{}.log", item.id));
        loop {
            let config = self.handle().snapshot();
            let Some(def) = config.loops.get(item.loop_type()) else {
                // Only a job restored at start can get here (the loops handler never removes a
                // claimed type); kept rather than dropped.
                self.running().remove(&item_id);
                self.parked.park(item);
                return;
            };
            let done = state.iterations.load(Ordering::SeqCst);
            if done >= def.max_iterations {
                let line = self.render(&config, "done", &item, done, def.max_iterations);
                drop(config);
                if self.complete(&item, done, &mut stopping).await {
                    let path = self
                        .data_dir()
                        .join("finished")
                        .join(format!("{}.txt", item.id));
                    if let Err(err) = append_line(&path, &line) {
                        tracing::warn!(id = item.id, %err, "cannot write the finished line (the completion is recorded)");
                    }
                    tracing::info!(id = item.id, loop_type = %item.loop_type(), iterations = done, "loop finished");
                }
                break;
            }
            let iteration = done + 1;
            let line = self.render(&config, &def.template, &item, iteration, def.max_iterations);
            crate::probation::LOOPS.iteration(config.generation(), &line);
            if let Err(err) = append_line(&log_path, &line) {
                tracing::warn!(id = item.id, %err, "cannot write loop output");
            }
            state.iterations.store(iteration, Ordering::SeqCst);
            // A failed checkpoint is logged and shown in `status`; the loop goes on (a crash
            // would resume it from its previous checkpoint).
            let _ = self
                .store_write(move |store| store.checkpoint(item_id, iteration))
                .await;
            let delay = Duration::from_millis(def.delay_ms);
            drop(config);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stopping.wait_for(|s| *s) => {
                    tracing::info!(id = item.id, iterations = iteration, "loop checkpointed for shutdown");
                    break;
                }
            }
        }
        self.running().remove(&item_id);
    }

    /// Queues the parked jobs whose loop type the live configuration defines. Their claims
    /// keep the type from being removed again before they run.
    fn resume_parked(&self) {
        let defined = self.parked.take_defined(&self.handle().snapshot());
        if !defined.is_empty() {
            tracing::info!(
                resumed = defined.len(),
                "parked jobs resumed: their loop type is defined again"
            );
            self.queue.restore(defined);
        }
    }

    /// Resumes parked jobs after every committed reload, until the daemon stops.
    async fn resume_parked_on_reload(self: Arc<Self>) {
        let mut committed = self.handle().subscribe();
        let mut stopping = self.stopping.subscribe();
        // A reload committed before the subscription is not announced to it: look once now.
        self.resume_parked();
        loop {
            tokio::select! {
                changed = committed.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = stopping.wait_for(|s| *s) => return,
            }
            self.resume_parked();
        }
    }

    /// Runs a store write on the blocking pool: it may wait for the disk.
    async fn store_write<T: Send + 'static>(
        self: &Arc<Self>,
        write: impl FnOnce(&Store) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, crate::store::StoreError> {
        let work = Arc::clone(self);
        tokio::task::spawn_blocking(move || write(work.store()))
            .await
            .unwrap_or_else(|err| Err(crate::store::StoreError::new(format!("write task: {err}"))))
    }

    /// Records a loop's completion, retrying while the store refuses it. `false` if the daemon
    /// began stopping first: the job stays unfinished, and the next start finishes it.
    async fn complete(
        self: &Arc<Self>,
        item: &WorkItem,
        iterations: u64,
        stopping: &mut watch::Receiver<bool>,
    ) -> bool {
        loop {
            let id = item.id;
            if self
                .store_write(move |store| store.finish(id, iterations))
                .await
                .is_ok()
            {
                return true;
            }
            tokio::select! {
                _ = tokio::time::sleep(COMPLETION_RETRY) => {}
                _ = stopping.wait_for(|s| *s) => return false,
            }
        }
    }

    /// Renders template `name` for an iteration.
    pub fn render(
        &self,
        config: &TaskDaemonConfig,
        name: &str,
        item: &WorkItem,
        iteration: u64,
        max: u64,
    ) -> String {
        let files = self.file_templates.load();
        let template = match name {
            "progress" => config.templates.progress.as_str(),
            "done" => config.templates.done.as_str(),
            other => files
                .get(other)
                .map(String::as_str)
                .unwrap_or("{type} {id}: {iteration}/{max}"),
        };
        template
            .replace("{id}", &item.id.to_string())
            .replace("{type}", item.loop_type())
            .replace("{iteration}", &iteration.to_string())
            .replace("{max}", &max.to_string())
    }

    /// Queues the unfinished jobs of earlier runs: loops with a checkpoint first (they resume
    /// from it as soon as slots free up), then the others, each in id order. Jobs whose loop
    /// type the configuration no longer defines are parked.
    pub fn restore(&self) -> Result<usize, String> {
        let mut jobs = self.store().unfinished().map_err(|e| e.to_string())?;
        jobs.sort_by_key(|job| (job.state != "running", job.id));
        let count = jobs.len();
        let live = self.handle().snapshot();
        let mut queued = Vec::new();
        for job in jobs {
            let item = WorkItem {
                id: job.id,
                claim: self.users.claim_existing(&job.loop_type),
                done: job.iterations,
            };
            if live.loops.contains_key(&job.loop_type) {
                queued.push(item);
            } else {
                self.parked.park(item);
            }
        }
        self.queue.restore(queued);
        Ok(count)
    }

    /// Stops taking work and lets loops stop after their current iteration. Writes nothing: the
    /// queue and the checkpoints are already durable, so a shutdown never replaces them with
    /// less. Returns loops still running after `grace`.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let left = self.queue.close();
        if !left.is_empty() {
            tracing::info!(
                queued = left.len(),
                "queued items stay in the database for the next start"
            );
        }
        let _ = self.stopping.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while !self.running().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.running().len()
    }
}

fn append_line(path: &Path, line: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(file, "{line}")
}
