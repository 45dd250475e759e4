//! Shared helpers for the hotcfg integration tests: a temporary config directory and bounded
//! waiting that says what it waited for.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

pub mod fuzz;
use std::time::{Duration, Instant};

pub mod http_client;
pub mod webdriver;

/// A temporary directory holding configuration files; removed on drop.
#[derive(Debug)]
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A fresh empty directory.
    pub fn new() -> Self {
        Sandbox {
            dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `text` to `name` (in place) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }
}

/// The hex SHA-256 of `bytes`, as a source's identity (and the audit log) names a version.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hotcfg::SourceIdentity::new("", bytes).sha256
}

/// Polls `condition` until it holds or `limit` passes; panics naming `what` on timeout.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[derive(Debug)]
/// A tmpfs of `size` mounted on a fresh directory (needs root), to fill a disk; unmounted on drop.
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts it, or says why not.
    pub fn mount(size: &str) -> Result<SmallDisk, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let output = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
        }
        Ok(SmallDisk { dir })
    }

    /// Mounts it, or prints why the calling test is skipped (mounting needs root) and returns
    /// `None`.
    pub fn mount_or_skip(size: &str) -> Option<SmallDisk> {
        SmallDisk::mount(size)
            .map_err(|err| eprintln!("skipped: cannot mount a tmpfs here (it needs root): {err}"))
            .ok()
    }

    /// `name` on the disk.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a filler file until the disk is full.
    pub fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.path("filler")).unwrap();
        for chunk in [64 * 1024, 512, 1] {
            let bytes = vec![0u8; chunk];
            while filler.write_all(&bytes).is_ok() {}
        }
    }

    /// Removes the filler file.
    pub fn free(&self) {
        std::fs::remove_file(self.path("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a test may still hold a file open on it (an engine's audit log) when this drops.
        let _ = std::process::Command::new("umount")
            .arg("--lazy")
            .arg(self.dir.path())
            .status();
    }
}

/// How long a rendezvous or a wait for reader threads may take before the test fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// A rendezvous of `parties` threads, as `std::sync::Barrier`, but a wait gives up after
/// [`WAIT_LIMIT`] naming what it waited for: a regression fails the test instead of hanging it.
#[derive(Debug)]
pub struct Rendezvous {
    parties: usize,
    /// Threads arrived in the current round, and the round number.
    state: Mutex<(usize, u64)>,
    all_arrived: Condvar,
}

impl Rendezvous {
    /// A rendezvous for `parties` threads (at least one).
    pub fn new(parties: usize) -> Self {
        Rendezvous {
            parties: parties.max(1),
            state: Mutex::new((0, 0)),
            all_arrived: Condvar::new(),
        }
    }

    /// Waits for the other parties; panics naming `what` after [`WAIT_LIMIT`].
    pub fn wait(&self, what: &str) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let round = state.1;
        state.0 += 1;
        if state.0 == self.parties {
            *state = (0, round + 1);
            self.all_arrived.notify_all();
            return;
        }
        let (state, _) = self
            .all_arrived
            .wait_timeout_while(state, WAIT_LIMIT, |s| s.1 == round)
            .unwrap_or_else(|e| e.into_inner());
        if state.1 == round {
            panic!("timed out after {WAIT_LIMIT:?} waiting for {what}");
        }
    }
}

/// How many loads each reader thread has done, so that a test can wait until every reader has
/// read inside a window it cares about (an apply in progress, a step of a stress test) instead
/// of hoping the scheduler ran them.
#[derive(Debug, Clone)]
pub struct ReaderProgress {
    reads: Arc<Vec<AtomicU64>>,
    /// Windows waited for, and windows in which every reader did read.
    windows: Arc<(AtomicU64, AtomicU64)>,
}

impl ReaderProgress {
    /// Counters for `readers` threads.
    pub fn new(readers: usize) -> Self {
        ReaderProgress {
            reads: Arc::new((0..readers).map(|_| AtomicU64::new(0)).collect()),
            windows: Arc::new((AtomicU64::new(0), AtomicU64::new(0))),
        }
    }

    /// Reader `reader` finished one more load.
    pub fn read(&self, reader: usize) {
        self.reads[reader].fetch_add(1, Ordering::SeqCst);
    }

    /// Every reader's count so far.
    pub fn counts(&self) -> Vec<u64> {
        self.reads
            .iter()
            .map(|r| r.load(Ordering::SeqCst))
            .collect()
    }

    /// Loads by all readers so far.
    pub fn total(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// Waits until every reader has loaded again since `before` (from [`counts`](Self::counts)),
    /// at most [`WAIT_LIMIT`]; an error names `what` and the readers that did not.
    pub fn wait_for_reads_since(&self, before: &[u64], what: &str) -> Result<(), String> {
        self.windows.0.fetch_add(1, Ordering::SeqCst);
        self.wait_since(before, what)?;
        self.windows.1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Waits until every reader has loaded again since `before`, without counting a window.
    fn wait_since(&self, before: &[u64], what: &str) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let now = self.counts();
            let idle: Vec<usize> = (0..now.len()).filter(|&i| now[i] <= before[i]).collect();
            if idle.is_empty() {
                return Ok(());
            }
            if start.elapsed() > WAIT_LIMIT {
                return Err(format!(
                    "timed out after {WAIT_LIMIT:?} waiting for readers {idle:?} to read {what}"
                ));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Waits (panicking after [`WAIT_LIMIT`]) until every reader has loaded at least once.
    pub fn wait_until_all_started(&self) {
        let zero = vec![0; self.reads.len()];
        if let Err(e) = self.wait_since(&zero, "for the first time") {
            panic!("{e}");
        }
    }

    /// Windows waited for with [`wait_for_reads_since`](Self::wait_for_reads_since), and how
    /// many of them every reader read in.
    pub fn windows(&self) -> (u64, u64) {
        (
            self.windows.0.load(Ordering::SeqCst),
            self.windows.1.load(Ordering::SeqCst),
        )
    }
}

/// The `taskdaemon` example run as a real process in a sandbox, and a client of its HTTP API.
pub mod daemon {
    use std::io::{BufRead, BufReader};
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::time::Duration;

    use serde_json::{json, Value};

    use crate::{wait_until, Sandbox};

    /// How long any wait on the daemon may take.
    pub const LIMIT: Duration = Duration::from_secs(20);

    /// A running daemon on `taskdaemon.toml` in its own sandbox, with an audit log
    /// (`audit.jsonl` unless chosen) and its standard error kept in `daemon.stderr`; killed on
    /// drop. It can be stopped or killed and started again in the same sandbox.
    #[derive(Debug)]
    pub struct Daemon {
        child: Child,
        binary: std::path::PathBuf,
        /// Its options besides `--config` and `--audit-log`.
        options: Vec<String>,
        audit_log: std::path::PathBuf,
        /// Where it listens.
        pub addr: String,
        /// Its directory.
        pub sandbox: Sandbox,
    }

    impl Daemon {
        /// Starts `binary` on a configuration of `text` with restart policy `policy`.
        pub fn start(binary: &Path, policy: &str, text: &str) -> Daemon {
            let sandbox = Sandbox::new();
            sandbox.write("taskdaemon.toml", text);
            let audit_log = sandbox.path("audit.jsonl");
            Daemon::start_in(binary, policy, sandbox, &audit_log)
        }

        /// Starts `binary` on the `taskdaemon.toml` already in `sandbox`, auditing to
        /// `audit_log`.
        pub fn start_in(binary: &Path, policy: &str, sandbox: Sandbox, audit_log: &Path) -> Daemon {
            Daemon::start_with(binary, &["--policy", policy], sandbox, audit_log)
        }

        /// Starts `binary` with `options` (besides `--config` and `--audit-log`) on the
        /// `taskdaemon.toml` already in `sandbox`, auditing to `audit_log`.
        pub fn start_with(
            binary: &Path,
            options: &[&str],
            sandbox: Sandbox,
            audit_log: &Path,
        ) -> Daemon {
            let options: Vec<String> = options.iter().map(|o| o.to_string()).collect();
            let (child, addr) = spawn(binary, &options, &sandbox, audit_log);
            Daemon {
                child,
                binary: binary.to_path_buf(),
                options,
                audit_log: audit_log.to_path_buf(),
                addr,
                sandbox,
            }
        }

        /// Starts the daemon again in its sandbox once the previous process has exited (after
        /// [`stop`](Daemon::stop) or [`kill`](Daemon::kill)).
        pub fn restart(&mut self) {
            assert!(
                self.child.try_wait().unwrap().is_some(),
                "restart needs the previous process to have exited"
            );
            let (child, addr) = spawn(&self.binary, &self.options, &self.sandbox, &self.audit_log);
            self.child = child;
            self.addr = addr;
        }

        /// SIGKILL, and waits for the process to be gone.
        pub fn kill(&mut self) {
            self.child.kill().unwrap();
            self.child.wait().unwrap();
        }

        /// A keep-alive HTTP client whose requests carry `token`; checked with a `status`.
        pub fn client(&self, token: &str) -> Client {
            let mut client = Client::with_token(&self.addr, token);
            let status = client.call("status");
            assert!(status["generation"].is_u64(), "{status}");
            client
        }

        /// Replaces the configuration file atomically with `change` of its text.
        pub fn edit(&self, change: impl FnOnce(&str) -> String) {
            let path = self.sandbox.path("taskdaemon.toml");
            let text = std::fs::read_to_string(&path).unwrap();
            let tmp = self.sandbox.path("taskdaemon.toml.tmp");
            std::fs::write(&tmp, change(&text)).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }

        /// The audit log's records so far.
        pub fn audit(&self) -> Vec<Value> {
            std::fs::read_to_string(&self.audit_log)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }

        /// Waits for audit record number `n` (1-based) and returns it.
        pub fn audit_record(&self, n: usize) -> Value {
            wait_until(&format!("audit record #{n}"), LIMIT, || {
                self.audit().len() >= n
            });
            self.audit()[n - 1].clone()
        }

        /// Checks that `reply`, to a `reload` asked after writing `text`, shows `text` live:
        /// applied by this reload, or applied just before by the file watcher (the reply is then
        /// `unchanged`, and the audit log must hold the watcher's `applied` record of the same
        /// bytes). Anything else fails, naming what it got.
        pub fn assert_reload_made_live(&self, reply: &Value, text: &str) {
            let sha = crate::sha256_hex(text.as_bytes());
            assert_eq!(
                reply["source"]["sha256"],
                sha.as_str(),
                "the reload did not read the bytes just written: {reply}"
            );
            match reply["result"].as_str() {
                Some("applied") => {}
                Some("unchanged") => {
                    let audit = self.audit();
                    assert!(
                        audit.iter().any(|r| r["result"] == "applied"
                            && r["trigger"]["kind"] != "manual"
                            && r["source"]["sha256"] == sha.as_str()),
                        "`unchanged`, but no earlier reload applied these bytes: {reply}\naudit: {audit:?}"
                    );
                }
                _ => panic!("expected the edit to be applied: {reply}"),
            }
        }

        /// What the daemon wrote to standard error so far.
        pub fn stderr(&self) -> String {
            std::fs::read_to_string(self.sandbox.path("daemon.stderr")).unwrap_or_default()
        }

        /// The process id.
        pub fn pid(&self) -> u32 {
            self.child.id()
        }

        /// Sends SIGTERM and waits for the exit.
        pub fn stop(&mut self) -> std::process::ExitStatus {
            let pid = self.child.id().to_string();
            Command::new("kill").args(["-TERM", &pid]).status().unwrap();
            let mut status = None;
            wait_until("the daemon to exit after SIGTERM", LIMIT, || {
                status = self.child.try_wait().unwrap();
                status.is_some()
            });
            status.unwrap()
        }
    }

    /// Builds the `taskdaemon` example with the dev profile, or the release profile when
    /// `release` (for benchmarks), and returns the binary's path. With the `etcd` and `schemars`
    /// features when this crate has them, so the fleet tests run the same binary (one build, no
    /// race on its path).
    pub fn build_taskdaemon(release: bool) -> PathBuf {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // The features this crate's build has, so the daemon shares its build of hotcfg.
        let features: Vec<&str> = [
            ("etcd", cfg!(feature = "etcd")),
            ("schemars", cfg!(feature = "schemars")),
        ]
        .into_iter()
        .filter_map(|(name, on)| on.then_some(name))
        .collect();
        let features = match features.is_empty() {
            true => Vec::new(),
            false => vec!["--features".to_string(), features.join(",")],
        };
        let profile: &[&str] = if release { &["--release"] } else { &[] };
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "hotcfg-examples"])
            .args(&features)
            .args(profile)
            .args(["--example", "taskdaemon"])
            .current_dir(root)
            .status()
            .expect("run cargo build for the taskdaemon example");
        assert!(status.success(), "building the taskdaemon example failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let profile_dir = if release { "release" } else { "debug" };
        target.join(profile_dir).join("examples").join("taskdaemon")
    }

    /// Spawns the daemon and waits for the line saying where it listens.
    fn spawn(
        binary: &Path,
        options: &[String],
        sandbox: &Sandbox,
        audit_log: &Path,
    ) -> (Child, String) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(sandbox.path("daemon.stderr"))
            .unwrap();
        let mut child = Command::new(binary)
            .arg("--config")
            .arg(sandbox.path("taskdaemon.toml"))
            .arg("--audit-log")
            .arg(audit_log)
            .args(options)
            .current_dir(sandbox.dir())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start taskdaemon");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut addr = None;
        for _ in 0..10 {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            if let Some(rest) = line.trim().strip_prefix("taskdaemon listening on ") {
                addr = Some(rest.to_string());
                break;
            }
        }
        let Some(addr) = addr else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(sandbox.path("daemon.stderr")).unwrap_or_default();
            panic!(
                "the daemon did not print `taskdaemon listening on ADDR`; its stderr:\n{stderr}"
            );
        };
        // Keep draining stdout so the daemon never blocks on a full pipe.
        std::thread::spawn(move || for _ in stdout.lines() {});
        (child, addr)
    }

    impl Drop for Daemon {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// A keep-alive HTTP connection to the daemon that sends an operator's commands as API
    /// requests: `status`, `config`, `fields`, `history` (GET), `submit TYPE`, `reload` (POST),
    /// `job ID` (GET `/api/jobs/ID`); any other word is a GET of `/api/WORD`. Every answer is
    /// JSON: the result, or `{"error": ...}`.
    #[derive(Debug)]
    pub struct Client {
        connection: crate::http_client::Connection,
        token: Option<String>,
    }

    impl Client {
        /// Connects, without a token.
        pub fn connect(addr: &str) -> Client {
            Client {
                connection: crate::http_client::Connection::open(addr),
                token: None,
            }
        }

        /// Connects; every request carries `token`.
        pub fn with_token(addr: &str, token: &str) -> Client {
            Client {
                token: Some(token.to_string()),
                ..Client::connect(addr)
            }
        }

        /// Sends `command` and returns the answer; panics if the connection closes or the
        /// answer is not JSON.
        pub fn call(&mut self, command: &str) -> Value {
            self.try_call(command)
                .unwrap_or_else(|problem| panic!("`{command}`: {problem}"))
        }

        /// Sends `command` and returns the answer, or what went wrong.
        pub fn try_call(&mut self, command: &str) -> Result<Value, String> {
            let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
            let (method, path, body) = match verb {
                "submit" => (
                    "POST",
                    "/api/submit".to_string(),
                    json!({ "type": arg }).to_string(),
                ),
                "reload" => ("POST", "/api/reload".to_string(), String::new()),
                "job" => ("GET", format!("/api/jobs/{arg}"), String::new()),
                other => ("GET", format!("/api/{other}"), String::new()),
            };
            let answer = self.connection.send(
                method,
                &path,
                self.token.as_deref(),
                &[("content-type", "application/json")],
                body.as_bytes(),
            )?;
            serde_json::from_slice(&answer.body)
                .map_err(|e| format!("answer `{}` is not JSON: {e}", answer.text()))
        }
    }
}
