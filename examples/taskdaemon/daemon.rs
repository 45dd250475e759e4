//! Starting, running and stopping the daemon.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use hotcfg::{FileSource, Pipeline, Reloader, RestartPolicy, Validate};
use tokio::net::TcpListener;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter};

use crate::config::{TaskDaemonConfig, DEFAULT_CONFIG};
use crate::handlers::{
    read_template_files, LimitsHandler, LoopsHandler, MonitoringHandler, TemplatesHandler,
};
use crate::http::{Api, EventLog};
use crate::rate::RateLimiter;
use crate::work::Work;

/// How to run.
pub struct Settings {
    pub config: PathBuf,
    /// The log filter until the configuration's own `monitoring.log_level` takes over.
    pub initial_log_level: &'static str,
    pub audit_log: Option<PathBuf>,
    /// What a failed audit write means (restart-only: read once, at start).
    pub audit_failure: hotcfg::AuditFailure,
    pub policy: RestartPolicy,
    /// How long a change is on probation, what reverts it, commit-confirmed.
    pub probation: crate::probation::ProbationArgs,
    /// Follow an etcd key instead of the file.
    #[cfg(feature = "etcd")]
    pub etcd: Option<EtcdSettings>,
}

/// Where a daemon of a fleet reads its configuration, and its name in status reports.
#[cfg(feature = "etcd")]
pub struct EtcdSettings {
    /// Comma-separated endpoints.
    pub endpoints: String,
    pub key: String,
    /// Defaults to HOSTNAME:PORT.
    pub node_id: Option<String>,
    /// TLS and user for a secured etcd.
    pub access: hotcfg::cli::EtcdAccess,
}

/// A started daemon.
pub struct Running {
    pub reloader: Reloader<TaskDaemonConfig>,
    pub work: Arc<Work>,
    pub addr: SocketAddr,
    _triggers: Vec<Box<dyn std::any::Any + Send>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pid_file: Option<PathBuf>,
    /// Follows the etcd key and reports this node's results (etcd mode).
    #[cfg(feature = "etcd")]
    pub follower: Option<hotcfg::etcd::EtcdFollower>,
}

/// The daemon's validation, policy and scope dependencies, declared once for the engine and the
/// operator commands.
pub fn pipeline(policy: RestartPolicy) -> Pipeline<TaskDaemonConfig> {
    Pipeline::new()
        .validator(TaskDaemonConfig::validate)
        .policy(policy)
        .scope_depends_on("loops", &["limits", "templates"])
}

/// The operator commands, with the daemon's own [`pipeline`].
pub fn operator_cli(policy: RestartPolicy) -> hotcfg::cli::Cli<TaskDaemonConfig> {
    let cli = hotcfg::cli::Cli::from(pipeline(policy));
    #[cfg(feature = "schemars")]
    let cli = cli.with_json_schema();
    cli
}

/// Changes the log filter live.
pub type LevelSetter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// The log filter `RUST_LOG` sets, when it is set and valid; it then wins over the
/// configuration's `monitoring.log_level`.
fn log_filter_from_env() -> Option<EnvFilter> {
    let spec = std::env::var("RUST_LOG")
        .ok()
        .filter(|s| !s.trim().is_empty())?;
    match EnvFilter::try_new(&spec) {
        Ok(filter) => Some(filter),
        Err(err) => {
            eprintln!("taskdaemon: ignoring RUST_LOG=`{spec}`: {err}");
            None
        }
    }
}

/// Installs the global subscriber once (writing to stderr) and returns a way to change its level.
/// When `RUST_LOG` is set, it is the filter and the returned setter changes nothing.
fn log_level_setter(initial: &str) -> LevelSetter {
    static HANDLE: OnceLock<Option<reload::Handle<EnvFilter, tracing_subscriber::Registry>>> =
        OnceLock::new();
    static FROM_ENV: OnceLock<bool> = OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        let from_env = log_filter_from_env();
        let _ = FROM_ENV.set(from_env.is_some());
        let (filter, handle) =
            reload::Layer::new(from_env.unwrap_or_else(|| EnvFilter::new(initial)));
        let installed = tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    // Colours only on a terminal: a log file keeps `key=value` searchable.
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_target(false),
            )
            .try_init();
        installed.ok().map(|()| handle)
    });
    let handle = handle.clone();
    let from_env = FROM_ENV.get().copied().unwrap_or(false);
    Box::new(move |level: &str| {
        if from_env {
            tracing::debug!(level, "RUST_LOG is set: monitoring.log_level is not used");
            return Ok(());
        }
        let filter =
            EnvFilter::try_new(level).map_err(|e| format!("bad log level `{level}`: {e}"))?;
        match &handle {
            Some(handle) => handle.reload(filter).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    })
}

/// Writes the embedded default configuration to `path` if nothing is there.
pub fn ensure_config(path: &Path) -> std::io::Result<bool> {
    if path.exists() {
        return Ok(false);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, DEFAULT_CONFIG)?;
    Ok(true)
}

/// Loads the configuration, starts the engine, the watchers, the loops and the server.
pub async fn start(settings: &Settings) -> Result<Running, String> {
    let config_path = std::path::absolute(&settings.config)
        .map_err(|e| format!("{}: {e}", settings.config.display()))?;
    #[cfg(feature = "etcd")]
    let etcd_source = settings.etcd.as_ref().map(etcd_source).transpose()?;
    #[cfg(not(feature = "etcd"))]
    let etcd_source: Option<std::convert::Infallible> = None;
    // Relative paths in the configuration are relative to its file, or in etcd mode to the
    // directory the daemon runs in.
    let base_dir = match &etcd_source {
        Some(_) => std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
        None => config_path.parent().unwrap_or(Path::new(".")).to_path_buf(),
    };

    // The handlers act on the daemon's state, which exists before the engine; it is attached
    // to the engine's handle once the initial configuration has loaded.
    let work = Work::new();
    let rate = Arc::new(RateLimiter::new(1));
    let set_level = log_level_setter(settings.initial_log_level);
    // Before the engine starts, so its first reload is counted.
    crate::http::install_recorder();
    let events = EventLog::new();
    let recorded = Arc::clone(&events);

    let builder = match &etcd_source {
        #[cfg(feature = "etcd")]
        Some(source) => Reloader::<TaskDaemonConfig>::builder(source.clone()),
        #[cfg(not(feature = "etcd"))]
        Some(never) => match *never {},
        None => Reloader::<TaskDaemonConfig>::builder(FileSource::new(&config_path)),
    };
    let mut builder = builder
        .pipeline(pipeline(settings.policy))
        .handler(
            "limits",
            LimitsHandler {
                work: Arc::clone(&work),
                rate: Arc::clone(&rate),
            },
        )
        .handler(
            "loops",
            LoopsHandler {
                work: Arc::clone(&work),
            },
        )
        .handler(
            "templates",
            TemplatesHandler {
                work: Arc::clone(&work),
                base_dir: base_dir.clone(),
                previous: Mutex::new(None),
            },
        )
        .handler(
            "monitoring",
            MonitoringHandler {
                set_log_level: set_level,
                base_dir: base_dir.clone(),
            },
        )
        .subscriber(|event: &hotcfg::ReloadEvent| {
            if event.trigger != hotcfg::Trigger::Startup {
                tracing::info!("{event}");
            }
        })
        .subscriber(move |event: &hotcfg::ReloadEvent| recorded.record(event));
    if let Some(audit) = &settings.audit_log {
        builder = builder
            .audit_log(audit)
            .audit_failure(settings.audit_failure);
        // A fleet node that starts while etcd is down runs the last version it applied, stale
        // until the follower reads the key.
        if etcd_source.is_some() {
            builder = builder.last_known_good();
        }
    }
    let builder = crate::probation::setup(builder, &settings.probation);
    let reloader = builder
        .build_async()
        .await
        .map_err(|e| match &etcd_source {
            Some(_) => format!("cannot start from etcd: {e}"),
            None => e.to_string(),
        })?;
    let handle = reloader.handle();
    let config = handle.snapshot();

    log_level_setter(settings.initial_log_level)(&config.monitoring.log_level)?;
    let data_dir = base_dir.join(&config.storage.data_dir);
    work.attach(handle.clone(), data_dir.clone())?;
    let files = read_template_files(&base_dir, &config.templates.template_files)?;
    work.file_templates.store(Arc::new(files));
    rate.set_per_second(config.limits.submits_per_second);

    let restored = work.restore()?;
    if restored > 0 {
        tracing::info!(restored, "resumed unfinished work from the state database");
    }

    let listener = TcpListener::bind(&config.daemon.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.daemon.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let pid_file = config.daemon.pid_file.as_ref().map(|p| base_dir.join(p));
    if let Some(pid_file) = &pid_file {
        std::fs::write(pid_file, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pid file {}: {e}", pid_file.display()))?;
    }

    let api = Arc::new(Api::new(
        reloader.clone(),
        Arc::clone(&work),
        Arc::clone(&rate),
        events,
        settings.audit_log.clone(),
        &config.server,
    ));
    let app = crate::http::router(Arc::clone(&api), &config.server);
    let tasks = vec![
        tokio::spawn(Arc::clone(&work).dispatch()),
        tokio::spawn(crate::http::serve(
            listener,
            app,
            config.server.clone(),
            Arc::clone(&api.connections),
        )),
        tokio::spawn(status_reporter(Arc::clone(&api), base_dir.clone())),
    ];
    #[cfg(feature = "etcd")]
    let follower = match (&etcd_source, &settings.etcd) {
        (Some(source), Some(etcd)) => {
            let node_id = etcd
                .node_id
                .clone()
                .unwrap_or_else(|| format!("{}:{}", hostname(), addr.port()));
            Some(crate::triggers::follow_etcd(&reloader, source, &node_id))
        }
        _ => None,
    };
    let triggers = match &etcd_source {
        // The follower triggers reloads; SIGHUP re-reads the key.
        Some(_) => crate::triggers::start_signal_only(&reloader)?,
        None => crate::triggers::start(&reloader).await?,
    };
    Ok(Running {
        reloader,
        work,
        addr,
        _triggers: triggers,
        tasks,
        pid_file,
        #[cfg(feature = "etcd")]
        follower,
    })
}

/// The etcd source of a fleet daemon: TOML unless the key's name says otherwise.
#[cfg(feature = "etcd")]
fn etcd_source(settings: &EtcdSettings) -> Result<hotcfg::etcd::EtcdSource, String> {
    if settings.key.is_empty() {
        return Err("--etcd needs --key KEY".into());
    }
    let client = settings
        .access
        .client(&settings.endpoints, hotcfg::etcd::EtcdOptions::default())
        .map_err(|e| e.to_string())?;
    let source = hotcfg::etcd::EtcdSource::for_key(client, settings.key.clone())
        .format(hotcfg::Format::Toml);
    // A node named on the command line layers its own override (KEY/nodes/ID) when there is one,
    // and takes part in staged rollouts (push --waves).
    Ok(match &settings.node_id {
        Some(node) => source.for_node(node.clone()),
        None => source,
    })
}

/// This machine's host name, for default node ids.
#[cfg(feature = "etcd")]
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "taskdaemon".to_string())
}

impl Running {
    /// Stops taking work, lets loops checkpoint, stops the server.
    pub async fn stop(self) {
        #[cfg(feature = "etcd")]
        if let Some(follower) = self.follower {
            // Leave the fleet's status view now rather than when the lease expires.
            let _ = tokio::task::spawn_blocking(move || follower.shutdown(Duration::from_secs(2)))
                .await;
        }
        let left = self.work.shutdown(Duration::from_secs(5)).await;
        if left > 0 {
            tracing::warn!(left, "loops still running at exit");
        }
        for task in &self.tasks {
            task.abort();
        }
        if let Some(pid_file) = &self.pid_file {
            let _ = std::fs::remove_file(pid_file);
        }
    }
}

/// Runs until SIGTERM or Ctrl-C.
pub async fn run_until_stopped(settings: Settings) -> Result<(), String> {
    #[cfg(feature = "etcd")]
    let from_etcd = settings.etcd.is_some();
    #[cfg(not(feature = "etcd"))]
    let from_etcd = false;
    if !from_etcd
        && ensure_config(&settings.config)
            .map_err(|e| format!("{}: {e}", settings.config.display()))?
    {
        println!(
            "wrote the default configuration to {}; edit it while the daemon runs to see hot reload",
            settings.config.display()
        );
    }
    let stop = StopSignals::install();
    let running = start(&settings).await?;
    println!("taskdaemon listening on {}", running.addr);
    println!("status page: http://{}/", running.addr);
    let snapshot = running.reloader.handle().snapshot();
    let source = snapshot
        .source()
        .map_or_else(|| settings.config.display().to_string(), |s| s.to_string());
    println!(
        "config {source} (generation {}); stop with Ctrl-C",
        snapshot.generation()
    );
    drop(snapshot);
    #[cfg(feature = "etcd")]
    if let Some(key) = running.follower.as_ref().and_then(|f| f.status_key()) {
        println!("following etcd; this node reports under {key}");
    }
    stop.wait().await;
    println!("stopping: no new work; loops checkpoint");
    running.stop().await;
    println!("stopped");
    Ok(())
}

/// SIGTERM and Ctrl-C, caught from the moment this is created: created before the daemon says
/// it listens, so a stop sent right after that line is a clean stop, never the signal's default
/// action (death, exit status 143).
struct StopSignals {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopSignals {
    fn install() -> StopSignals {
        StopSignals {
            #[cfg(unix)]
            signals: {
                use tokio::signal::unix::{signal, SignalKind};
                signal(SignalKind::terminate())
                    .and_then(|term| Ok((term, signal(SignalKind::interrupt())?)))
                    .map_err(|err| tracing::warn!(%err, "cannot catch SIGTERM; Ctrl-C still stops"))
                    .ok()
            },
        }
    }

    /// Waits for either.
    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut interrupt)) = self.signals {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Logs a status line (and rewrites the status file) every `monitoring.status_interval_secs`.
async fn status_reporter(api: Arc<Api>, base_dir: PathBuf) {
    loop {
        let config = api.work.handle().snapshot();
        let interval = Duration::from_secs(config.monitoring.status_interval_secs.max(1));
        let status = crate::http::status_json(&api);
        tracing::info!(
            generation = %status["generation"],
            queue = %status["queue_len"],
            loops = status["loops"].as_array().map_or(0, Vec::len),
            "status"
        );
        if let Some(file) = &config.monitoring.status_file {
            let _ = std::fs::write(base_dir.join(file), status.to_string());
        }
        drop(config);
        tokio::time::sleep(interval).await;
    }
}
