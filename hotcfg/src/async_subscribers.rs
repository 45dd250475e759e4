//! Async subscribers: told of every reload event on the tokio runtime the engine captured, each
//! from a task of its own, so a slow or failing one delays neither the reloads nor the others.

use std::sync::Arc;

use tokio::runtime::Handle as RuntimeHandle;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::async_handlers::BoxFuture;
use crate::event::ReloadEvent;

/// Receives every reload event, as async code (the async counterpart of
/// [`ReloadSubscriber`](crate::ReloadSubscriber)), registered with
/// [`ReloaderBuilder::async_subscriber`](crate::ReloaderBuilder::async_subscriber).
///
/// Each subscriber has its own task on the captured runtime and gets the events in order,
/// starting with the startup event. One that is slower than the reloads misses the oldest events
/// it has not taken yet (at most 256 wait; a warning says how many were missed); a panic in one
/// call is caught and logged, and the next event is delivered as usual.
///
/// ```
/// use hotcfg::{AsyncReloadSubscriber, BoxFuture, ReloadEvent};
///
/// struct Log;
/// impl AsyncReloadSubscriber for Log {
///     fn on_reload<'a>(&'a self, event: &'a ReloadEvent) -> BoxFuture<'a, ()> {
///         Box::pin(async move { println!("reload: {event}") })
///     }
/// }
/// ```
pub trait AsyncReloadSubscriber: Send + Sync + 'static {
    /// Called with each event, one at a time, in order.
    fn on_reload<'a>(&'a self, event: &'a ReloadEvent) -> BoxFuture<'a, ()>;
}

/// Starts the task that delivers `startup`, then every event of `events`, to `subscriber`.
pub(crate) fn deliver(
    runtime: &RuntimeHandle,
    subscriber: Arc<dyn AsyncReloadSubscriber>,
    startup: Arc<ReloadEvent>,
    mut events: broadcast::Receiver<Arc<ReloadEvent>>,
) {
    let task = async move {
        call(&subscriber, startup).await;
        loop {
            match events.recv().await {
                Ok(event) => call(&subscriber, event).await,
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "an async reload subscriber fell behind");
                }
                Err(RecvError::Closed) => return,
            }
        }
    };
    drop(runtime.spawn(task));
}

/// One call, in a task of its own so that a panic ends that call only.
async fn call(subscriber: &Arc<dyn AsyncReloadSubscriber>, event: Arc<ReloadEvent>) {
    let subscriber = Arc::clone(subscriber);
    let called = tokio::spawn(async move { subscriber.on_reload(&event).await }).await;
    if let Err(error) = called {
        tracing::error!(%error, "an async reload subscriber panicked");
    }
}
