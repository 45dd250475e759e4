//! hotcfg in a tokio service: an async handler that rebuilds a connection pool (started from the
//! first configuration through the same code), an async subscriber that logs, request handlers
//! reading the live configuration wait-free, and a reload awaited from async code (as an admin
//! endpoint would). Runs once through an edit and exits.
//!
//! ```text
//! cargo run --example tokio_service
//! ```
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("service.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:8080\"\nconnections = 4\n")?;
    let pool = Arc::new(Pool::default());
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .async_handler("database", Arc::clone(&pool))
        .async_subscriber(LogReloads)
        .build_async()
        .await?;
    let handle = reloader.handle();

    // A request handler: one wait-free read of the live configuration per request.
    let request = |n: u32| {
        let config = handle.load();
        println!(
            "request {n}: {} connection(s) configured, pool has {}",
            config.connections,
            pool.size.load(Ordering::SeqCst)
        );
    };
    request(1);

    // An operator edits the file; an admin endpoint awaits the reload.
    std::fs::write(&path, "listen = \"127.0.0.1:8080\"\nconnections = 8\n")?;
    let event = reloader.reload().await;
    println!("admin: {event}");
    request(2);
    tokio::time::sleep(Duration::from_millis(50)).await; // let the subscriber print
    Ok(())
}
