//! Running work: the concurrency slots, the loops, their progress and checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hotcfg::Handle;
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::config::TaskDaemonConfig;
use crate::queue::{WorkItem, WorkQueue};

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

/// What a checkpoint file holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Loop id.
    pub id: u64,
    /// Loop type.
    pub loop_type: String,
    /// Iterations completed.
    pub iterations: u64,
}

/// Everything the loops share.
pub struct Work {
    handle: OnceLock<Handle<TaskDaemonConfig>>,
    data_dir: OnceLock<PathBuf>,
    pub queue: WorkQueue,
    pub slots: Arc<Slots>,
    pub running: Mutex<BTreeMap<u64, Arc<LoopState>>>,
    /// Templates read from `templates.template_files`, by file stem.
    pub file_templates: ArcSwap<BTreeMap<String, String>>,
    pub next_id: AtomicU64,
    pub finished: AtomicU64,
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
            queue: WorkQueue::new(0),
            slots: Arc::new(Slots::new(0)),
            running: Mutex::new(BTreeMap::new()),
            file_templates: ArcSwap::from_pointee(BTreeMap::new()),
            next_id: AtomicU64::new(1),
            finished: AtomicU64::new(0),
            stopping,
        })
    }

    /// Connects to the live configuration and sizes everything from it.
    pub fn attach(
        &self,
        handle: Handle<TaskDaemonConfig>,
        data_dir: PathBuf,
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(data_dir.join("loops"))?;
        std::fs::create_dir_all(data_dir.join("finished"))?;
        let config = handle.snapshot();
        self.queue.set_capacity(config.limits.queue_capacity);
        self.slots.set_max(config.limits.max_concurrent);
        let _ = self.data_dir.set(data_dir);
        let _ = self.handle.set(handle);
        Ok(())
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

    /// How many running loops and queued items use `loop_type`.
    pub fn users_of(&self, loop_type: &str) -> (usize, usize) {
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
        (running, queued)
    }

    /// Queues a new loop of `loop_type`.
    pub fn submit(&self, loop_type: &str) -> Result<u64, String> {
        if !self.handle().load().loops.contains_key(loop_type) {
            let known: Vec<String> = self.handle().load().loops.keys().cloned().collect();
            return Err(format!(
                "unknown loop type `{loop_type}` (known: {})",
                known.join(", ")
            ));
        }
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.queue
            .push(WorkItem {
                id,
                loop_type: loop_type.to_string(),
            })
            .map(|()| id)
            .map_err(|err| match err {
                crate::queue::SubmitError::Full { capacity } => {
                    format!("queue full ({capacity} items)")
                }
                crate::queue::SubmitError::Closed => "shutting down".to_string(),
            })
    }

    /// Starts queued loops as slots free up, until the queue closes.
    pub async fn dispatch(self: Arc<Self>) {
        loop {
            let slot = self.slots.acquire().await;
            let Some(item) = self.queue.pop().await else {
                return;
            };
            let work = Arc::clone(&self);
            tokio::spawn(async move {
                work.run_loop(item, 0).await;
                drop(slot);
            });
        }
    }

    fn checkpoint_path(&self, id: u64) -> PathBuf {
        self.data_dir().join("loops").join(format!("{id}.json"))
    }

    /// Runs one loop: every iteration takes one snapshot of the configuration, so a reload never
    /// changes a definition in the middle of an iteration.
    async fn run_loop(self: &Arc<Self>, item: WorkItem, done_before: u64) {
        let state = Arc::new(LoopState {
            loop_type: item.loop_type.clone(),
            iterations: AtomicU64::new(done_before),
            started_generation: self.handle().generation(),
        });
        self.running().insert(item.id, Arc::clone(&state));
        let mut stopping = self.stopping.subscribe();
        let log_path = self
            .data_dir()
            .join("loops")
            .join(format!("{}.log", item.id));
        loop {
            let config = self.handle().snapshot();
            let Some(def) = config.loops.get(&item.loop_type) else {
                // Cannot happen while the loops handler vetoes removing types in use.
                tracing::error!(id = item.id, loop_type = %item.loop_type, "loop type vanished");
                break;
            };
            let done = state.iterations.load(Ordering::SeqCst);
            if done >= def.max_iterations {
                let line = self.render(&config, "done", &item, done, def.max_iterations);
                let _ = append_line(
                    &self
                        .data_dir()
                        .join("finished")
                        .join(format!("{}.txt", item.id)),
                    &line,
                );
                let _ = std::fs::remove_file(self.checkpoint_path(item.id));
                self.finished.fetch_add(1, Ordering::SeqCst);
                tracing::info!(id = item.id, loop_type = %item.loop_type, iterations = done, "loop finished");
                break;
            }
            let iteration = done + 1;
            let line = self.render(&config, &def.template, &item, iteration, def.max_iterations);
            if let Err(err) = append_line(&log_path, &line) {
                tracing::warn!(id = item.id, %err, "cannot write loop output");
            }
            state.iterations.store(iteration, Ordering::SeqCst);
            self.write_checkpoint(item.id, &item.loop_type, iteration);
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
        self.running().remove(&item.id);
    }

    fn write_checkpoint(&self, id: u64, loop_type: &str, iterations: u64) {
        let checkpoint = Checkpoint {
            id,
            loop_type: loop_type.to_string(),
            iterations,
        };
        let path = self.checkpoint_path(id);
        let tmp = path.with_extension("json.tmp");
        let written = serde_json::to_vec(&checkpoint)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(err) = written {
            tracing::warn!(id, %err, "cannot write checkpoint");
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
            .replace("{type}", &item.loop_type)
            .replace("{iteration}", &iteration.to_string())
            .replace("{max}", &max.to_string())
    }

    /// Restores unfinished loops and queued items saved by an earlier run.
    pub fn restore(self: &Arc<Self>) -> usize {
        let mut items = Vec::new();
        let mut resumed = Vec::new();
        if let Ok(text) = std::fs::read_to_string(self.data_dir().join("queue.json")) {
            if let Ok(saved) = serde_json::from_str::<Vec<WorkItem>>(&text) {
                items.extend(saved);
            }
            let _ = std::fs::remove_file(self.data_dir().join("queue.json"));
        }
        if let Ok(dir) = std::fs::read_dir(self.data_dir().join("loops")) {
            for entry in dir.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("json") {
                    continue;
                }
                if let Some(cp) = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice::<Checkpoint>(&b).ok())
                {
                    resumed.push(cp);
                }
            }
        }
        let max_id = items
            .iter()
            .map(|i| i.id)
            .chain(resumed.iter().map(|c| c.id))
            .max()
            .unwrap_or(0);
        self.next_id.fetch_max(max_id + 1, Ordering::SeqCst);
        let count = items.len() + resumed.len();
        self.queue.restore(items);
        for cp in resumed {
            let work = Arc::clone(self);
            tokio::spawn(async move {
                let slot = work.slots.acquire().await;
                let item = WorkItem {
                    id: cp.id,
                    loop_type: cp.loop_type,
                };
                work.run_loop(item, cp.iterations).await;
                drop(slot);
            });
        }
        count
    }

    /// Stops taking work, lets loops checkpoint, saves the queue. Returns loops still running
    /// after `grace`.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let left = self.queue.close();
        if !left.is_empty() {
            if let Ok(bytes) = serde_json::to_vec(&left) {
                let _ = std::fs::write(self.data_dir().join("queue.json"), bytes);
            }
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
