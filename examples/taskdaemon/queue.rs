//! The work queue: bounded, with a capacity that changes live without losing an item.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::users::Claim;

/// One unit of queued work: a loop to start, or to resume.
#[derive(Debug)]
pub struct WorkItem {
    /// The loop id it will run as.
    pub id: u64,
    /// Its hold on its loop type, from its submit (or restore) until it ends.
    pub claim: Claim,
    /// Iterations already done (checkpointed by an earlier run); 0 for a new loop.
    pub done: u64,
}

impl WorkItem {
    /// Its loop type.
    pub fn loop_type(&self) -> &str {
        self.claim.loop_type()
    }
}

/// Why a submit was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue holds `capacity` items or more.
    Full {
        /// The capacity in force.
        capacity: usize,
    },
    /// The daemon is shutting down.
    Closed,
}

struct Inner {
    items: VecDeque<WorkItem>,
    /// Places taken by submits being committed: they count against the capacity.
    reserved: usize,
    capacity: usize,
    closed: bool,
}

/// A submit's place in the queue while it is committed; given back on drop unless
/// [`fill`](Reservation::fill)ed.
pub struct Reservation<'a> {
    queue: &'a WorkQueue,
}

impl Reservation<'_> {
    /// Queues the committed item in the reserved place (even if the queue closed meanwhile:
    /// it was acknowledged).
    pub fn fill(self, item: WorkItem) {
        let queue = self.queue;
        // The place becomes the item in one step, so the count never shows both.
        std::mem::forget(self);
        let mut inner = queue.lock();
        inner.reserved -= 1;
        inner.items.push_back(item);
        drop(inner);
        queue.ready.notify_one();
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.queue.lock().reserved -= 1;
    }
}

/// A FIFO of work items whose capacity the `limits` handler changes live.
pub struct WorkQueue {
    inner: Mutex<Inner>,
    ready: Notify,
}

impl WorkQueue {
    /// An empty queue.
    pub fn new(capacity: usize) -> Self {
        WorkQueue {
            inner: Mutex::new(Inner {
                items: VecDeque::new(),
                reserved: 0,
                capacity,
                closed: false,
            }),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a place for a submit about to be committed, if it may be accepted now: not closed,
    /// fewer items (queued or being committed) than the capacity. Submits hold their places
    /// while their commits run side by side, so together they never exceed the capacity.
    pub fn reserve(&self) -> Result<Reservation<'_>, SubmitError> {
        let mut inner = self.lock();
        if inner.closed {
            return Err(SubmitError::Closed);
        }
        if inner.items.len() + inner.reserved >= inner.capacity {
            return Err(SubmitError::Full {
                capacity: inner.capacity,
            });
        }
        inner.reserved += 1;
        Ok(Reservation { queue: self })
    }

    /// Adds items already committed to the store (restored ones). Ignores the capacity and a
    /// close: nothing acknowledged is lost.
    pub fn restore(&self, items: Vec<WorkItem>) {
        self.lock().items.extend(items);
        self.ready.notify_one();
    }

    /// Waits for the next item; `None` once closed.
    pub async fn pop(&self) -> Option<WorkItem> {
        loop {
            let notified = self.ready.notified();
            {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                if let Some(item) = inner.items.pop_front() {
                    return Some(item);
                }
            }
            notified.await;
        }
    }

    /// Changes the capacity. Items beyond a lowered capacity stay queued; new submits wait until
    /// the queue drains below it.
    pub fn set_capacity(&self, capacity: usize) {
        self.lock().capacity = capacity;
    }

    /// The capacity in force.
    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Items waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Places held by submits being committed (for tests).
    #[cfg(test)]
    pub fn reserved(&self) -> usize {
        self.lock().reserved
    }

    /// Loop types of the waiting items.
    pub fn queued_types(&self) -> Vec<String> {
        self.lock()
            .items
            .iter()
            .map(|i| i.loop_type().to_string())
            .collect()
    }

    /// Stops accepting and handing out items; returns what was still queued.
    pub fn close(&self) -> Vec<WorkItem> {
        let mut inner = self.lock();
        inner.closed = true;
        let left = inner.items.drain(..).collect();
        drop(inner);
        self.ready.notify_waiters();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: u64) -> WorkItem {
        WorkItem {
            id,
            claim: crate::users::TypeUsers::new().claim_existing("build"),
            done: 0,
        }
    }

    #[test]
    fn lowering_the_capacity_keeps_every_item() {
        let queue = WorkQueue::new(3);
        for id in 0..3 {
            queue.reserve().unwrap().fill(item(id));
        }
        assert!(matches!(
            queue.reserve(),
            Err(SubmitError::Full { capacity: 3 })
        ));
        queue.set_capacity(1);
        assert_eq!(queue.len(), 3);
        queue.set_capacity(5);
        queue.reserve().unwrap().fill(item(3));
        assert_eq!(queue.close().len(), 4);
        assert!(matches!(queue.reserve(), Err(SubmitError::Closed)));
    }

    #[test]
    fn submits_being_committed_count_against_the_capacity() {
        let queue = WorkQueue::new(2);
        let first = queue.reserve().unwrap();
        let second = queue.reserve().unwrap();
        assert!(matches!(
            queue.reserve(),
            Err(SubmitError::Full { capacity: 2 })
        ));
        drop(first); // its commit failed: the place is free again
        let third = queue.reserve().unwrap();
        second.fill(item(1));
        third.fill(item(2));
        assert_eq!(queue.len(), 2);
        assert!(matches!(
            queue.reserve(),
            Err(SubmitError::Full { capacity: 2 })
        ));
    }
}
