//! What handlers get beyond reloads (issue 14): `init` with the first configuration, run by
//! `build()` in dependency order; the configuration's directory and `resolve` in `ApplyContext`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotcfg::{
    ApplyContext, BoxError, BuildError, ConfigWatcher, FileSource, Format, HotReload, MemorySource,
    ReloadResult, Reloader, ScopeHandler, WatchOptions,
};
use hotcfg_tests::{wait_until, Sandbox};
use serde::{Deserialize, Serialize};

/// A pool and a watched certificate (`reloader_api` uses it too).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
pub(super) struct Config {
    #[reload(scope = "pool")]
    pub(super) workers: usize,
    #[reload(scope = "tls", watch)]
    pub(super) cert: PathBuf,
}

/// A subsystem that starts empty and follows the configuration through one code path: `apply`,
/// which `init` calls. Logs "scope:step:workers".
struct Pool {
    size: Arc<Mutex<usize>>,
    log: Arc<Mutex<Vec<String>>>,
    fail_init: Option<&'static str>,
}

impl Pool {
    fn new(log: &Arc<Mutex<Vec<String>>>) -> (Pool, Arc<Mutex<usize>>) {
        let size = Arc::new(Mutex::new(0));
        let pool = Pool {
            size: Arc::clone(&size),
            log: Arc::clone(log),
            fail_init: None,
        };
        (pool, size)
    }
}

impl ScopeHandler<Config> for Pool {
    fn init(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        assert!(cx.is_startup());
        assert!(std::ptr::eq(cx.old, cx.new), "no older configuration");
        assert!(cx.changes.is_empty());
        assert_eq!(cx.generation, 1);
        match self.fail_init {
            Some("panic") => panic!("no such device"),
            Some(error) => Err(error.into()),
            None => self.apply(cx),
        }
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        let step = if cx.is_startup() { "init" } else { "apply" };
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{step}:{}", cx.scope, cx.new.workers));
        *self.size.lock().unwrap() = cx.new.workers;
        Ok(())
    }
}

/// Logs what it resolves `cert` to, at init and on every apply.
struct Tls {
    seen: Seen,
}

impl ScopeHandler<Config> for Tls {
    fn init(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.apply(cx)
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        let dir = cx.config_dir.map(Path::to_path_buf);
        self.seen
            .lock()
            .unwrap()
            .push((dir, cx.resolve(&cx.new.cert)));
        Ok(())
    }
}

type Seen = Arc<Mutex<Vec<(Option<PathBuf>, PathBuf)>>>;

/// An engine on `source` with a [`Tls`] handler, and what it saw.
fn with_tls(source: impl hotcfg::Source) -> (Reloader<Config>, Seen) {
    let seen = Seen::default();
    let tls = Tls {
        seen: Arc::clone(&seen),
    };
    let reloader = Reloader::<Config>::builder(source)
        .handler("tls", tls)
        .build()
        .unwrap();
    (reloader, seen)
}

pub(super) fn text(workers: usize, cert: &str) -> String {
    format!("workers = {workers}\ncert = \"{cert}\"\n")
}

#[test]
fn handlers_start_from_the_first_configuration_in_dependency_order() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", &text(3, "/dev/null"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (pool, size) = Pool::new(&log);
    let (other_pool, _) = Pool::new(&log);
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .handler("tls", other_pool)
        .handler("pool", pool)
        .scope_depends_on("tls", &["pool"])
        .build()
        .unwrap();
    // Set up by build() through apply's code, dependencies first, before any reload.
    assert_eq!(*log.lock().unwrap(), ["pool:init:3", "tls:init:3"]);
    assert_eq!(*size.lock().unwrap(), 3);
    assert_eq!(reloader.history().len(), 1, "only the startup event");

    log.lock().unwrap().clear();
    sandbox.write("app.toml", &text(5, "/dev/null"));
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(*log.lock().unwrap(), ["pool:apply:5"]);
    assert_eq!(*size.lock().unwrap(), 5);
}

#[test]
fn a_handler_that_cannot_start_fails_build_with_its_error() {
    for (failure, message) in [
        ("device busy", "device busy"),
        ("panic", "panicked: no such device"),
    ] {
        let sandbox = Sandbox::new();
        let path = sandbox.write("app.toml", &text(3, "/dev/null"));
        let audit = sandbox.path("audit.jsonl");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (mut pool, _) = Pool::new(&log);
        pool.fail_init = Some(failure);
        let error = Reloader::<Config>::builder(FileSource::new(&path))
            .handler("pool", pool)
            .audit_log(&audit)
            .build()
            .unwrap_err();
        let BuildError::Init {
            scope,
            message: got,
        } = &error
        else {
            panic!("expected an init failure, got {error:?}");
        };
        assert_eq!((scope.as_str(), got.as_str()), ("pool", message));
        assert_eq!(
            error.to_string(),
            format!("the `pool` handler cannot start from the first configuration: {message}")
        );
        // The engine never started: no startup record.
        let records = std::fs::read_to_string(&audit).unwrap_or_default();
        assert_eq!(records, "", "{failure}");
    }
}

#[test]
fn a_closure_handler_does_not_run_at_startup() {
    let calls = Arc::new(Mutex::new(0));
    let counted = Arc::clone(&calls);
    let source = MemorySource::new("app.toml", Format::Toml, text(3, "a.pem"));
    Reloader::<Config>::builder(source)
        .on_apply("pool", move |_| {
            *counted.lock().unwrap() += 1;
            Ok(())
        })
        .build()
        .unwrap();
    assert_eq!(*calls.lock().unwrap(), 0);
}

#[test]
fn handlers_resolve_relative_paths_as_the_watcher_does() {
    let sandbox = Sandbox::new();
    std::fs::create_dir(sandbox.path("certs")).unwrap();
    sandbox.write("certs/a.pem", "A");
    let path = sandbox.write("app.toml", &text(3, "certs/a.pem"));
    let (reloader, seen) = with_tls(FileSource::new(&path));
    let dir = path.parent().unwrap().to_path_buf();
    let cert = dir.join("certs/a.pem");
    assert_eq!(*seen.lock().unwrap(), [(Some(dir.clone()), cert.clone())]);
    // The file a handler resolves is the file the engine watches for `cert`.
    assert!(reloader.watched_files().contains(&cert));

    // Its content changes, the path does not: the handler is told, and resolves the same file.
    sandbox.write("certs/a.pem", "A2");
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(seen.lock().unwrap()[1], (Some(dir.clone()), cert));

    // An absolute path is taken as it is.
    sandbox.write("app.toml", &text(3, "/etc/hostname"));
    reloader.reload_now();
    let last = seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, (Some(dir), PathBuf::from("/etc/hostname")));
}

#[test]
fn without_a_directory_paths_are_taken_as_they_are() {
    let source = MemorySource::new("app.toml", Format::Toml, text(3, "certs/a.pem"));
    let (_reloader, seen) = with_tls(source);
    assert_eq!(
        *seen.lock().unwrap(),
        [(None, PathBuf::from("certs/a.pem"))]
    );
}

#[test]
fn a_manual_reload_after_the_watcher_applied_the_edit_records_nothing_more() {
    let sandbox = Sandbox::new();
    let path = sandbox.write("app.toml", &text(3, "/dev/null"));
    let audit = sandbox.path("audit.jsonl");
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .audit_log(&audit)
        .build()
        .unwrap();
    let mut events = reloader.events();
    let options = WatchOptions::default().debounce(Duration::from_millis(20));
    let watcher = ConfigWatcher::start(reloader.clone(), options).unwrap();

    sandbox.write("app.toml", &text(4, "/dev/null"));
    let handle = reloader.handle();
    wait_until("the watcher's reload", Duration::from_secs(30), || {
        handle.generation() == 2
    });

    // The operator reloads too: told "unchanged", nothing recorded twice.
    let again = reloader.reload_now();
    assert_eq!(again.result, ReloadResult::Unchanged, "{again}");
    assert_eq!(again.generation, 2);
    drop(watcher);
    let kinds: Vec<&str> = reloader.history().iter().map(|e| e.result.kind()).collect();
    assert_eq!(kinds, ["applied", "applied"]);
    let applied = events.try_recv().expect("the watcher's event");
    assert!(
        matches!(applied.result, ReloadResult::Applied { .. }),
        "{applied}"
    );
    assert!(events.try_recv().is_err(), "no second event broadcast");
    assert_eq!(hotcfg::verify_audit_log(&audit).unwrap().len(), 2);
    assert_eq!(reloader.last_event().generation, 2);
}

#[test]
fn finding_the_live_bytes_again_after_a_failure_is_recorded() {
    let sandbox = Sandbox::new();
    let good = text(3, "/dev/null");
    let path = sandbox.write("app.toml", &good);
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .build()
        .unwrap();
    sandbox.write("app.toml", "workers = = 3");
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Failed { .. }
    ));
    sandbox.write("app.toml", &good);
    assert_eq!(reloader.reload_now().result, ReloadResult::Unchanged);
    assert_eq!(reloader.reload_now().result, ReloadResult::Unchanged);
    let kinds: Vec<&str> = reloader.history().iter().map(|e| e.result.kind()).collect();
    assert_eq!(kinds, ["applied", "failed", "unchanged"]);
}
