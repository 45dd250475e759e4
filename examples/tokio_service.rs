//! hotcfg in a tokio service: an async handler that rebuilds a connection pool (started from the
//! first configuration through the same code), an async subscriber that logs, request handlers
//! reading the live configuration wait-free, the file watcher and SIGHUP as tasks on the
//! service's runtime, and a reload awaited from async code (as an admin endpoint would). Runs
//! once through an edit and exits. The README's tokio example is the code between the
//! `README: begin` and `README: end` lines (a test checks that they agree).
//!
//! ```text
//! cargo run --example tokio_service
//! ```
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotcfg::watcher::{ConfigWatcher, WatchOptions};
use hotcfg::{
    ApplyContext, AsyncReloadSubscriber, AsyncScopeHandler, BoxFuture, FileSource, HotReload,
    ReloadEvent, Reloader, StepFuture,
};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
struct Config {
    /// Where clients connect: changing it needs a restart.
    #[reload(restart)]
    listen: String,
    /// Connections to the database, rebuilt live.
    #[reload(scope = "database")]
    connections: usize,
}

// README: begin
/// A pool whose resize awaits (connecting takes I/O).
#[derive(Default)]
struct Pool {
    size: AtomicUsize,
}

impl AsyncScopeHandler<Config> for Arc<Pool> {
    fn init<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        self.apply(cx) // start from the first configuration through the reload's code
    }
    fn apply<'a>(&'a self, cx: &'a ApplyContext<'a, Config>) -> StepFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(20)).await; // connect...
            self.size.store(cx.new.connections, Ordering::SeqCst);
            println!("pool: {} connection(s)", cx.new.connections);
            Ok(())
        })
    }
}

/// Logs every reload (the startup event first).
struct LogReloads;

impl AsyncReloadSubscriber for LogReloads {
    fn on_reload<'a>(&'a self, event: &'a ReloadEvent) -> BoxFuture<'a, ()> {
        Box::pin(async move { println!("reload: {event}") })
    }
}
// README: end

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("service.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:8080\"\nconnections = 4\n")?;
    let pool = Arc::new(Pool::default());
    // README: begin
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .async_handler("database", Arc::clone(&pool)) // awaits I/O on this runtime
        .async_subscriber(LogReloads) // logs every reload from a task of its own
        .build_async()
        .await?;
    let handle = reloader.handle();
    // Everything on this runtime: the file watcher and SIGHUP are tasks, reloading through
    // `trigger_async`.
    let runtime = tokio::runtime::Handle::current();
    let watcher = ConfigWatcher::spawn_on(reloader.clone(), WatchOptions::default(), &runtime)?;
    let _sighup = hotcfg::reload_on_sighup_task(reloader.clone(), &runtime)?;

    // A request handler: one wait-free read of the live configuration per request.
    let request = |n: u32| {
        let config = handle.load();
        let pool = pool.size.load(Ordering::SeqCst);
        println!(
            "request {n}: {} connection(s), pool has {pool}",
            config.connections
        );
    };
    // README: end
    request(1);

    // An operator saves the file: the watcher's task reloads.
    let mut events = reloader.events();
    std::fs::write(dir.path().join(".service.toml.tmp"), CONNECTIONS_8)?;
    std::fs::rename(dir.path().join(".service.toml.tmp"), &path)?;
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
    println!("watcher: {event}");
    request(2);

    // An admin endpoint awaits a reload.
    // README: begin
    // e.g. from POST /admin/reload:
    let event = reloader.reload().await;
    // README: end
    println!("admin: {event}");
    watcher.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the subscriber print
    Ok(())
}

const CONNECTIONS_8: &str = "listen = \"127.0.0.1:8080\"\nconnections = 8\n";
