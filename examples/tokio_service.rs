//! hotcfg in a tokio (axum) service: an async handler that rebuilds a connection pool (started
//! from the first configuration through the same code), an async subscriber that logs, request
//! handlers reading the live configuration wait-free, the file watcher and SIGHUP as tasks on the
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

use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::routing::{get, post};
use axum::Router;
use hotcfg::watcher::{ConfigWatcher, WatchOptions};
use hotcfg::{
    ApplyContext, AsyncReloadSubscriber, AsyncScopeHandler, BoxFuture, FileSource, Handle,
    HotReload, ReloadEvent, Reloader, StepFuture,
};
use tower::ServiceExt;

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

// README: begin
/// What the service's request handlers share.
#[derive(Clone)]
struct App {
    config: Handle<Config>,
    reloader: Reloader<Config>,
    pool: Arc<Pool>,
}

/// `GET /`: one wait-free read of the live configuration per request.
async fn status(State(app): State<App>) -> String {
    let config = app.config.load();
    let pool = app.pool.size.load(Ordering::SeqCst);
    format!("{} connection(s), pool has {pool}", config.connections)
}

/// `POST /admin/reload`: awaits a reload; the runtime keeps serving meanwhile.
async fn admin_reload(State(app): State<App>) -> String {
    app.reloader.reload().await.to_string()
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
    // Everything on this runtime: the file watcher and SIGHUP are tasks; their reloads run on
    // its blocking pool.
    let runtime = tokio::runtime::Handle::current();
    let watcher = ConfigWatcher::spawn_on(reloader.clone(), WatchOptions::default(), &runtime)?;
    let _sighup = hotcfg::reload_on_sighup_task(reloader.clone(), &runtime)?;

    let app = Router::new()
        .route("/", get(status))
        .route("/admin/reload", post(admin_reload))
        .with_state(App {
            config: reloader.handle(),
            reloader: reloader.clone(),
            pool,
        });
    // README: end
    // The example sends its requests to the router directly (no socket): see `call`.
    println!("GET /: {}", call(&app, "GET", "/").await?);

    // An operator saves the file: the watcher's task reloads.
    let mut events = reloader.events();
    std::fs::write(dir.path().join(".service.toml.tmp"), CONNECTIONS_8)?;
    std::fs::rename(dir.path().join(".service.toml.tmp"), &path)?;
    let event = tokio::time::timeout(Duration::from_secs(10), events.recv()).await??;
    println!("watcher: {event}");
    println!("GET /: {}", call(&app, "GET", "/").await?);

    // An admin asks for a reload: nothing new to apply.
    println!(
        "POST /admin/reload: {}",
        call(&app, "POST", "/admin/reload").await?
    );
    watcher.stop().await;
    tokio::time::sleep(Duration::from_millis(50)).await; // let the subscriber print
    Ok(())
}

const CONNECTIONS_8: &str = "listen = \"127.0.0.1:8080\"\nconnections = 8\n";

/// One request through `app`, as a server would hand it over; the response body as text.
async fn call(app: &Router, method: &str, uri: &str) -> Result<String, Box<dyn std::error::Error>> {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .body(Body::empty())?;
    let response = app.clone().oneshot(request).await?;
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}
