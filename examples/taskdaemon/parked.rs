//! Parked jobs: acknowledged jobs whose loop type the live configuration does not define (it
//! was removed while the daemon was stopped). They are kept, with their claim on the type, shown
//! in `status`, and queued again when a reload defines the type.

use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::config::TaskDaemonConfig;
use crate::queue::WorkItem;

/// The parked jobs.
#[derive(Default)]
pub struct Parked {
    items: Mutex<Vec<WorkItem>>,
}

impl Parked {
    fn lock(&self) -> MutexGuard<'_, Vec<WorkItem>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps `item` until its loop type is defined again.
    pub fn park(&self, item: WorkItem) {
        tracing::warn!(
            id = item.id,
            loop_type = %item.loop_type(),
            "loop type not defined: the job is parked until a reload defines it again"
        );
        self.lock().push(item);
    }

    /// Takes out the jobs whose loop type `live` defines.
    pub fn take_defined(&self, live: &TaskDaemonConfig) -> Vec<WorkItem> {
        let mut items = self.lock();
        let (defined, still): (Vec<_>, Vec<_>) = std::mem::take(&mut *items)
            .into_iter()
            .partition(|item| live.loops.contains_key(item.loop_type()));
        *items = still;
        defined
    }

    /// `(id, loop type, iterations done)` of each, by id.
    pub fn list(&self) -> Vec<(u64, String, u64)> {
        let mut parked: Vec<_> = self
            .lock()
            .iter()
            .map(|item| (item.id, item.loop_type().to_string(), item.done))
            .collect();
        parked.sort();
        parked
    }
}
