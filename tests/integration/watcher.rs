//! The file watcher against the hazards of issue 4, on a real filesystem with the real watcher.
//!
//! Each hazard is a scenario file in `watcher_scenarios/` (steps on files, then what must happen)
//! three times: with the native watcher (inotify), with the polling watcher, and with the native
//! watcher as a task on a current-thread tokio runtime (`ConfigWatcher::spawn_on`). The language:
//!
//! | step | meaning |
//! |---|---|
//! | `source FILE... [max-bytes=N]` | the files the config is read from (default `config.toml`), overlays after the base |
//! | `require non-root` | permissions must apply: as root, run the scenario as `nobody` in a child process |
//! | `start` | build the reloader and start the watcher; steps before it set the scene |
//! | `write FILE TEXT` / `append FILE TEXT` | in-place write (truncate + write) / append; `\n`, `\xHH` escapes |
//! | `truncate FILE`, `touch FILE`, `chmod MODE FILE`, `remove FILE` | as the shell commands |
//! | `mkdir DIR`, `remove-dir DIR`, `rename FROM TO` | `mkdir -p`, `rm -r`, `mv` |
//! | `symlink TARGET LINK`, `ln-sfn TARGET LINK` | `ln -s`; `ln -sfn` (remove the link, create it again) |
//! | `pad FILE BYTES TEXT` | TEXT followed by comment lines up to BYTES bytes |
//! | `burst FILE N TEXT` | N in-place writes as fast as possible, `{i}` in TEXT replaced by 1..=N |
//! | `pause N` | wait N debounce windows (a pause that is part of the hazard) |
//! | `expect applied [value=N] [label=S] [trigger=FILE] [changed=FIELD] [reloads<=N] [completed] [torn-ok]` | a new generation with these values; no failed or rejected reload on the way (`torn-ok`: failed reloads of a torn read are allowed, for in-place rewrites: the engine's read can land between a writer's truncate and its write; nothing of them may become live); the latest reload was triggered by FILE and changed FIELD; at most N reloads (default 1, unchanged ones count) since the previous expectation; `completed`: the native watcher saw the save complete (a close after writing, a rename into place, a new symlink) |
//! | `expect failed STAGE TEXT` | the next event is a failed reload at that stage whose error contains TEXT; the live config unchanged |
//! | `expect unchanged` | the next event is an unchanged reload |
//! | `expect no-reload` | nothing happens: the config is touched (a change of metadata only, itself no reload), the watcher looks and finds the same bytes, and by then there is no event, no handler call, no new generation |
//!
//! No step waits a fixed time for something not to happen: `expect no-reload` waits for the
//! watcher's look after a touch that comes after the steps being checked (the native watcher gets
//! events in order; the poller reads every file at once), and every `expect applied` checks every
//! event since the previous expectation, so a reload that comes late is still caught there.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotcfg::watcher::{
    notify, Backend, ConfigWatcher, NativeEvents, WatchMode, WatchOptions, WatchStats,
};
use hotcfg::{
    ConfigError, FileSource, HotReload, ReloadError, ReloadEvent, ReloadResult, Reloader, Stage,
    Trigger, Violations,
};
use hotcfg_tests::{wait_until, Sandbox};

use super::watcher_task::DrivenRuntime;
use serde::{Deserialize, Serialize};

/// Debounce window in these tests (short, to keep the file fast).
const DEBOUNCE: Duration = Duration::from_millis(40);
/// Poll interval of the polling watcher in these tests.
const POLL: Duration = Duration::from_millis(25);
/// Extra looks at torn content: 10 × 40 ms, room for a loaded machine in hazard 1, where the
/// writer pauses for 2 windows between its two steps.
const RETRIES: u32 = 10;
/// Longest wait for anything that must happen (generous: only a failing test waits this long).
pub(super) const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
pub(super) struct Cfg {
    #[reload(scope = "main")]
    pub value: u64,
    #[serde(default)]
    #[reload(scope = "main")]
    label: String,
    /// A file the config refers to (a TLS certificate): watched with the config.
    #[serde(default)]
    #[reload(scope = "tls", watch)]
    cert: Option<PathBuf>,
}

pub(super) fn validate(config: &Cfg, v: &mut Violations) {
    v.check(config.value < 1_000_000, "value", "must be below 1000000");
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Mode {
    Native,
    Poll,
    /// The native backend, the watcher a task on a current-thread runtime.
    Task,
}

pub(super) fn options(mode: Mode) -> WatchOptions {
    WatchOptions::default()
        .debounce(DEBOUNCE)
        .max_delay(Duration::from_millis(400))
        .torn_read_retries(RETRIES)
        .mode(match mode {
            Mode::Native | Mode::Task => WatchMode::Native,
            Mode::Poll => WatchMode::Poll { interval: POLL },
        })
}

/// A reloader over files in a sandbox, recording every event and every handler call.
pub(super) struct Rig {
    pub reloader: Reloader<Cfg>,
    pub events: mpsc::Receiver<ReloadEvent>,
    handler_calls: Arc<AtomicUsize>,
}

impl Rig {
    pub fn new(source: FileSource) -> Rig {
        let (tx, events) = mpsc::channel();
        let tx = Mutex::new(tx);
        let handler_calls = Arc::new(AtomicUsize::new(0));
        let (main_calls, tls_calls) = (Arc::clone(&handler_calls), Arc::clone(&handler_calls));
        let reloader = Reloader::<Cfg>::builder(source)
            .validator(validate)
            .on_apply("main", move |_| {
                main_calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .on_apply("tls", move |_| {
                tls_calls.fetch_add(1, Ordering::SeqCst);
                Ok(())
            })
            .subscriber(move |event: &ReloadEvent| {
                let _ = tx.lock().unwrap().send(event.clone());
            })
            .build()
            .expect("the initial config loads");
        let rig = Rig {
            reloader,
            events,
            handler_calls,
        };
        let startup = rig.next_event("the startup event");
        assert_eq!(startup.trigger, Trigger::Startup);
        rig
    }

    pub fn next_event(&self, what: &str) -> ReloadEvent {
        self.events
            .recv_timeout(TIMEOUT)
            .unwrap_or_else(|_| panic!("timed out after {TIMEOUT:?} waiting for {what}"))
    }

    pub fn value(&self) -> u64 {
        self.reloader.handle().load().value
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario language.

#[derive(Debug)]
enum Step {
    Source(Vec<String>, Option<u64>),
    RequireNonRoot,
    Start,
    Write(String, Vec<u8>),
    Append(String, Vec<u8>),
    Truncate(String),
    Touch(String),
    Chmod(u32, String),
    Remove(String),
    Mkdir(String),
    RemoveDir(String),
    Rename(String, String),
    Symlink(String, String),
    LnSfn(String, String),
    Pad(String, usize, Vec<u8>),
    Burst(String, usize, String),
    Pause(u32),
    Applied(Applied),
    Failed(Stage, String),
    Unchanged,
    NoReload,
}

#[derive(Debug, Default)]
struct Applied {
    value: Option<u64>,
    label: Option<String>,
    trigger: Option<String>,
    changed: Option<String>,
    max_reloads: Option<usize>,
    completed: bool,
    /// Failed reloads (a torn read of an in-place rewrite) are allowed on the way.
    torn_ok: bool,
}

/// `\n`, `\t`, `\\` and `\xHH` escapes; everything else as written.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'\\' => out.push(b'\\'),
                b'x' if i + 3 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 2..i + 4]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).expect("\\xHH escape"));
                    i += 4;
                    continue;
                }
                other => panic!("unknown escape \\{}", other as char),
            }
            i += 2;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Splits off the first word.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

fn parse_step(line: &str) -> Result<Step, String> {
    let (command, rest) = word(line);
    let (a, after_a) = word(rest);
    let (b, _) = word(after_a);
    let need = |s: &str| {
        if s.is_empty() {
            Err(format!("`{command}` needs more arguments"))
        } else {
            Ok(s.to_string())
        }
    };
    Ok(match command {
        "source" => {
            let mut files = Vec::new();
            let mut max = None;
            for arg in rest.split_whitespace() {
                match arg.strip_prefix("max-bytes=") {
                    Some(n) => max = Some(n.parse().map_err(|e| format!("max-bytes: {e}"))?),
                    None => files.push(arg.to_string()),
                }
            }
            Step::Source(files, max)
        }
        "require" if rest.trim() == "non-root" => Step::RequireNonRoot,
        "start" => Step::Start,
        "write" => Step::Write(need(a)?, unescape(after_a)),
        "append" => Step::Append(need(a)?, unescape(after_a)),
        "truncate" => Step::Truncate(need(a)?),
        "touch" => Step::Touch(need(a)?),
        "chmod" => Step::Chmod(
            u32::from_str_radix(a, 8).map_err(|e| format!("mode: {e}"))?,
            need(b)?,
        ),
        "remove" => Step::Remove(need(a)?),
        "mkdir" => Step::Mkdir(need(a)?),
        "remove-dir" => Step::RemoveDir(need(a)?),
        "rename" => Step::Rename(need(a)?, need(b)?),
        "symlink" => Step::Symlink(need(a)?, need(b)?),
        "ln-sfn" => Step::LnSfn(need(a)?, need(b)?),
        "pad" => {
            let text = word(after_a).1;
            Step::Pad(
                need(a)?,
                b.parse().map_err(|e| format!("size: {e}"))?,
                unescape(text),
            )
        }
        "burst" => Step::Burst(
            need(a)?,
            b.parse().map_err(|e| format!("count: {e}"))?,
            word(after_a).1.to_string(),
        ),
        "pause" => Step::Pause(a.parse().map_err(|e| format!("windows: {e}"))?),
        "expect" => match a {
            "applied" => {
                let mut applied = Applied::default();
                for arg in after_a.split_whitespace() {
                    if arg == "completed" {
                        applied.completed = true;
                        continue;
                    }
                    if arg == "torn-ok" {
                        applied.torn_ok = true;
                        continue;
                    }
                    if let Some(n) = arg.strip_prefix("reloads<=") {
                        applied.max_reloads = Some(n.parse().map_err(|e| format!("{arg}: {e}"))?);
                        continue;
                    }
                    let (key, val) = arg
                        .split_once('=')
                        .ok_or_else(|| format!("expected key=value, got `{arg}`"))?;
                    match key {
                        "value" => {
                            applied.value = Some(val.parse().map_err(|e| format!("{arg}: {e}"))?)
                        }
                        "label" => applied.label = Some(val.to_string()),
                        "trigger" => applied.trigger = Some(val.to_string()),
                        "changed" => applied.changed = Some(val.to_string()),
                        _ => return Err(format!("unknown expectation `{key}`")),
                    }
                }
                Step::Applied(applied)
            }
            "failed" => {
                let stage = match b {
                    "read" => Stage::Read,
                    "parse" => Stage::Parse,
                    "validate" => Stage::Validate,
                    other => return Err(format!("unknown stage `{other}`")),
                };
                Step::Failed(stage, word(after_a).1.trim().to_string())
            }
            "unchanged" => Step::Unchanged,
            "no-reload" => Step::NoReload,
            other => return Err(format!("unknown expectation `{other}`")),
        },
        other => return Err(format!("unknown step `{other}`")),
    })
}

fn parse_scenario(text: &str) -> Vec<(usize, String, Step)> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty() && !line.trim_start().starts_with('#'))
        .map(|(i, line)| {
            let step = parse_step(line).unwrap_or_else(|e| panic!("line {}: {e}: {line}", i + 1));
            (i + 1, line.to_string(), step)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Running a scenario.

struct Run {
    sandbox: Sandbox,
    mode: Mode,
    source: Vec<String>,
    max_bytes: Option<u64>,
    rig: Option<Rig>,
    watcher: Option<ConfigWatcher>,
    /// The runtime of a watcher task ([`Mode::Task`]).
    runtime: Option<DrivenRuntime>,
    /// Generation when the previous expectation was met.
    generation: u64,
    /// The watcher's counters when the previous expectation was met.
    seen: WatchStats,
}

impl Run {
    fn rig(&self) -> &Rig {
        self.rig
            .as_ref()
            .expect("`start` comes before expectations")
    }

    fn path(&self, name: &str) -> PathBuf {
        self.sandbox.path(name)
    }

    fn stats(&self) -> String {
        match &self.watcher {
            Some(w) => format!("{:?}", w.stats()),
            None => "not started".into(),
        }
    }

    fn write(&self, name: &str, bytes: &[u8], append: bool) {
        use std::io::Write;
        let path = self.path(name);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(&path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        file.write_all(bytes)
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    fn start(&mut self) {
        let files: Vec<PathBuf> = if self.source.is_empty() {
            vec![self.path("config.toml")]
        } else {
            self.source.iter().map(|f| self.path(f)).collect()
        };
        let mut source = FileSource::new(&files[0]);
        for overlay in &files[1..] {
            source = source.overlay(overlay);
        }
        if let Some(max) = self.max_bytes {
            source = source.max_bytes(max);
        }
        let rig = Rig::new(source);
        let reloader = rig.reloader.clone();
        let watcher = match self.mode {
            Mode::Native | Mode::Poll => ConfigWatcher::start(reloader, options(self.mode)),
            Mode::Task => {
                let runtime = self.runtime.insert(DrivenRuntime::current_thread());
                ConfigWatcher::spawn_on(reloader, options(self.mode), runtime.handle())
            }
        }
        .expect("the watcher starts");
        let backend = match self.mode {
            Mode::Native | Mode::Task => Backend::Native,
            Mode::Poll => Backend::Poll,
        };
        assert_eq!(watcher.mode(), backend);
        self.generation = rig.reloader.handle().generation();
        self.seen = watcher.stats();
        self.rig = Some(rig);
        self.watcher = Some(watcher);
    }

    fn step(&mut self, step: &Step) {
        match step {
            Step::Source(files, max) => {
                self.source = files.clone();
                self.max_bytes = *max;
            }
            Step::RequireNonRoot => {}
            Step::Start => self.start(),
            Step::Write(name, bytes) => self.write(name, bytes, false),
            Step::Append(name, bytes) => self.write(name, bytes, true),
            Step::Truncate(name) => self.write(name, b"", false),
            Step::Touch(name) => self.touch(&self.path(name)),
            Step::Chmod(mode, name) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(*mode))
                    .unwrap();
            }
            Step::Remove(name) => std::fs::remove_file(self.path(name)).unwrap(),
            Step::Mkdir(name) => std::fs::create_dir_all(self.path(name)).unwrap(),
            Step::RemoveDir(name) => std::fs::remove_dir_all(self.path(name)).unwrap(),
            Step::Rename(from, to) => std::fs::rename(self.path(from), self.path(to)).unwrap(),
            Step::Symlink(target, link) => {
                std::os::unix::fs::symlink(target, self.path(link)).unwrap()
            }
            Step::LnSfn(target, link) => {
                let _ = std::fs::remove_file(self.path(link));
                std::os::unix::fs::symlink(target, self.path(link)).unwrap();
            }
            Step::Pad(name, size, text) => {
                let mut bytes = text.clone();
                bytes.push(b'\n');
                while bytes.len() < *size {
                    bytes.extend_from_slice(b"# padding padding padding padding padding\n");
                }
                self.write(name, &bytes, false);
            }
            Step::Burst(name, count, template) => {
                for i in 1..=*count {
                    let text = template.replace("{i}", &i.to_string());
                    self.write(name, &unescape(&text), false);
                }
            }
            Step::Pause(windows) => std::thread::sleep(DEBOUNCE * *windows),
            Step::Applied(applied) => self.expect_applied(applied),
            Step::Failed(stage, text) => self.expect_failed(*stage, text),
            Step::Unchanged => {
                let event = self.rig().next_event("an unchanged reload");
                assert_eq!(event.result, ReloadResult::Unchanged, "got {event}");
                assert!(matches!(event.trigger, Trigger::File(_)), "got {event}");
                self.seen = self.watcher.as_ref().unwrap().stats();
            }
            Step::NoReload => self.expect_no_reload(),
        }
    }

    fn expect_applied(&mut self, expected: &Applied) {
        let rig = self.rig.as_ref().unwrap();
        let handle = rig.reloader.handle();
        let before = self.generation;
        let matches = || {
            let live = handle.load();
            live.generation() > before
                && expected.value.is_none_or(|v| live.value == v)
                && expected.label.as_ref().is_none_or(|l| &live.label == l)
        };
        wait_until(
            &format!("a new generation with {expected:?}"),
            TIMEOUT,
            matches,
        );
        // Let the watcher finish what it is doing, then take every event up to the live one.
        let watcher = self.watcher.as_ref().unwrap();
        wait_until("the watcher to be idle", TIMEOUT, || {
            !watcher.stats().pending
        });
        let live = handle.generation();
        let mut events = Vec::new();
        loop {
            let event = rig.next_event(&format!("the event of generation {live}"));
            let done =
                event.generation == live && matches!(event.result, ReloadResult::Applied { .. });
            events.push(event);
            if done {
                break;
            }
        }
        while let Ok(event) = rig.events.try_recv() {
            events.push(event);
        }
        for event in &events {
            // Only a failure to read or parse the file: a handler's failure is never torn.
            let torn = expected.torn_ok
                && matches!(
                    event.result,
                    ReloadResult::Failed {
                        error: hotcfg::ReloadError::Config(_),
                        ..
                    }
                );
            assert!(
                torn || matches!(
                    event.result,
                    ReloadResult::Applied { .. } | ReloadResult::Unchanged
                ),
                "a reload failed on the way to {expected:?}: {event}"
            );
            assert!(
                matches!(event.trigger, Trigger::File(_)),
                "not a file trigger: {event}"
            );
        }
        let last = events
            .iter()
            .rev()
            .find(|e| e.generation == live && matches!(e.result, ReloadResult::Applied { .. }))
            .unwrap();
        if let Some(file) = &expected.trigger {
            assert_eq!(last.trigger, Trigger::File(self.path(file)), "{last}");
        }
        if let Some(field) = &expected.changed {
            let ReloadResult::Applied { applied, .. } = &last.result else {
                unreachable!()
            };
            assert!(
                applied.iter().any(|c| &c.path == field),
                "`{field}` is not among the changes of {last}"
            );
        }
        // Every reload counts, unchanged ones too: a stray one means a save was looked at twice.
        let max = expected.max_reloads.unwrap_or(1);
        eprintln!("{} reload(s), bound {max}", events.len());
        assert!(
            events.len() <= max,
            "{} reloads, more than the bound of {max}: {}",
            events.len(),
            events
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        if expected.completed && self.mode != Mode::Poll {
            // The worker publishes its counters after the reload it triggered returns: wait.
            let seen = self.seen.completions;
            wait_until(
                "the watcher to count the save as completed",
                TIMEOUT,
                || watcher.stats().completions > seen,
            );
        }
        self.generation = live;
        self.seen = watcher.stats();
    }

    fn expect_failed(&mut self, stage: Stage, text: &str) {
        let rig = self.rig();
        let value = rig.value();
        let event = rig.next_event(&format!("a failed reload ({stage:?}: {text})"));
        let ReloadResult::Failed {
            error: ReloadError::Config(ConfigError { stage: got, .. }),
            ..
        } = &event.result
        else {
            panic!("expected a failed reload ({stage:?}: {text}), got {event}");
        };
        assert_eq!(*got, stage, "{event}");
        let message = event.to_string();
        assert!(
            message.to_lowercase().contains(&text.to_lowercase()),
            "the error does not say `{text}`: {message}"
        );
        assert!(matches!(event.trigger, Trigger::File(_)), "{event}");
        assert_eq!(rig.reloader.handle().generation(), self.generation);
        assert_eq!(rig.value(), value, "the live config changed");
        self.seen = self.watcher.as_ref().unwrap().stats();
    }

    fn expect_no_reload(&mut self) {
        let rig = self.rig();
        let watcher = self.watcher.as_ref().unwrap();
        let calls = rig.handler_calls.load(Ordering::SeqCst);
        // A touch after the steps being checked: the watcher sees it after their events (the
        // native watcher's events come in order; a poll reads every file), looks, and must find
        // the same bytes as at the last reload.
        let skipped = watcher.stats().skipped;
        self.touch(&self.base());
        wait_until(
            "the watcher to look after the touch, find the same bytes, and be idle",
            TIMEOUT,
            || {
                let stats = watcher.stats();
                stats.skipped > skipped && !stats.pending
            },
        );
        if let Ok(event) = rig.events.try_recv() {
            panic!("expected no reload, got {event}");
        }
        assert_eq!(rig.reloader.handle().generation(), self.generation);
        assert_eq!(rig.handler_calls.load(Ordering::SeqCst), calls);
        self.seen = watcher.stats();
    }

    /// The first file of the source.
    fn base(&self) -> PathBuf {
        self.path(self.source.first().map_or("config.toml", String::as_str))
    }

    fn touch(&self, path: &Path) {
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        let modified = file.metadata().unwrap().modified().unwrap();
        // A time it did not have, so that even a coarse clock shows a change.
        file.set_modified(modified + Duration::from_secs(1))
            .unwrap_or_else(|e| panic!("touch {}: {e}", path.display()));
    }
}

fn is_root() -> bool {
    // The owner of a file this process creates is its effective user.
    use std::os::unix::fs::MetadataExt;
    let sandbox = Sandbox::new();
    let probe = sandbox.write("probe", "");
    std::fs::metadata(probe).unwrap().uid() == 0
}

/// Runs the scenario as the user `nobody`: the test binary runs only this test, in a child process
/// started with `setpriv`. Returns `false` (skipped) when that is not possible.
fn run_as_nobody(test: &str) -> bool {
    let setpriv = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--",
    ];
    match run_in_child(&setpriv, test, "as user nobody") {
        Ok(()) => true,
        Err(err) => {
            eprintln!("SKIPPED {test}: running as root and cannot run setpriv ({err}); root reads mode-000 files, so permissions cannot be tested");
            false
        }
    }
}

/// Runs only `test` of this binary again, in a child process started through `wrapper` (a
/// command and its arguments), with `HOTCFG_WATCHER_CHILD` set; panics unless it passed.
/// Fails when the wrapper cannot be run. The child's own waits are bounded, so it ends.
fn run_in_child(wrapper: &[&str], test: &str, how: &str) -> std::io::Result<()> {
    let exe = std::env::current_exe().unwrap();
    let output = std::process::Command::new(wrapper[0])
        .args(&wrapper[1..])
        .arg(&exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env("HOTCFG_WATCHER_CHILD", "1")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "{test} failed {how} ({}):\n{stdout}\n{stderr}",
        output.status
    );
    Ok(())
}

/// This test's name as `--exact` wants it: without the crate's.
fn test_name(path: &str) -> &str {
    path.split_once("::").map_or(path, |(_, rest)| rest)
}

fn run_scenario(file: &str, text: &str, mode: Mode, test: &str) {
    let steps = parse_scenario(text);
    if steps
        .iter()
        .any(|(_, _, s)| matches!(s, Step::RequireNonRoot))
        && is_root()
    {
        assert!(
            std::env::var_os("HOTCFG_WATCHER_CHILD").is_none(),
            "setpriv left the child running as root"
        );
        if run_as_nobody(test_name(test)) {
            eprintln!("{file} ({mode:?}) ran as user nobody");
        }
        return;
    }
    let mut run = Run {
        sandbox: Sandbox::new(),
        mode,
        source: Vec::new(),
        max_bytes: None,
        rig: None,
        watcher: None,
        runtime: None,
        generation: 0,
        seen: WatchStats::default(),
    };
    let started = Instant::now();
    for (line, source, step) in &steps {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.step(step)));
        if let Err(panic) = result {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!(
                "{file}:{line} ({mode:?} watcher, {:?} in): `{source}` failed: {message}\nwatcher: {}",
                started.elapsed(),
                run.stats()
            );
        }
    }
    // Drop the watcher before the sandbox: it stops watching first.
    drop(run.watcher.take());
}

macro_rules! scenarios {
    ($($name:ident => $file:literal,)*) => {
        $(
            mod $name {
                const TEXT: &str = include_str!(concat!("watcher_scenarios/", $file));
                #[test]
                fn native() {
                    super::run_scenario($file, TEXT, super::Mode::Native, concat!(module_path!(), "::native"));
                }
                #[test]
                fn poll() {
                    super::run_scenario($file, TEXT, super::Mode::Poll, concat!(module_path!(), "::poll"));
                }
                #[test]
                fn task() {
                    super::run_scenario($file, TEXT, super::Mode::Task, concat!(module_path!(), "::task"));
                }
            }
        )*
        const SCENARIOS: &[&str] = &[$($file),*];
    };
}

scenarios! {
    hazard_01_in_place_write => "01-in-place-write.scenario",
    hazard_02_atomic_save => "02-atomic-save.scenario",
    hazard_03_vim_save => "03-vim-save.scenario",
    hazard_04_delete_and_recreate => "04-delete-and-recreate.scenario",
    hazard_05_symlink_repoint => "05-symlink-repoint.scenario",
    hazard_06_kubernetes_configmap => "06-kubernetes-configmap.scenario",
    hazard_07_burst => "07-burst.scenario",
    hazard_08a_unreadable_permissions => "08a-unreadable-permissions.scenario",
    hazard_08b_invalid_utf8 => "08b-invalid-utf8.scenario",
    hazard_08c_oversized => "08c-oversized.scenario",
    hazard_08d_directory_in_place => "08d-directory-in-place.scenario",
    hazard_08e_parse_and_validation_errors => "08e-parse-and-validation-errors.scenario",
    hazard_09_parent_directory_recreated => "09-parent-directory-recreated.scenario",
    hazard_10_referenced_file => "10-referenced-file.scenario",
    several_files_base_and_overlay => "11-base-and-overlay.scenario",
    same_bytes_no_reload => "12-same-bytes-no-reload.scenario",
}

#[test]
fn every_scenario_file_is_run() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/watcher_scenarios");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".scenario"))
        .collect();
    files.sort();
    let mut listed: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files,
        listed,
        "list every file of {} in scenarios!",
        dir.display()
    );
    for file in SCENARIOS {
        parse_scenario(&std::fs::read_to_string(dir.join(file)).unwrap());
    }
}

// ---------------------------------------------------------------------------------------------
// Triggers besides files, fallback, lifecycle.

pub(super) fn simple_rig(sandbox: &Sandbox, value: u64) -> Rig {
    let path = sandbox.write("config.toml", &format!("value = {value}"));
    Rig::new(FileSource::new(path))
}

pub(super) fn atomic_write(sandbox: &Sandbox, text: &str) {
    let tmp = sandbox.write(".config.toml.tmp", text);
    std::fs::rename(tmp, sandbox.path("config.toml")).unwrap();
}

#[test]
fn sighup_sent_to_the_process_reloads() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    let _guard = hotcfg::reload_on_sighup(rig.reloader.clone()).expect("install the handler");
    sandbox.write("config.toml", "value = 2");
    // What an operator does: `kill -HUP <pid>`.
    let status = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let event = rig.next_event("the reload SIGHUP triggers");
    assert_eq!(event.trigger, Trigger::Signal, "{event}");
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(rig.value(), 2);
}

/// A native watcher factory that fails like an exhausted inotify.
fn exhausted_inotify() -> hotcfg::watcher::NativeFactory {
    Arc::new(|_events| Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)))
}

/// A native watcher that is created but cannot add a watch (inotify's max_user_watches).
struct NoWatchesLeft;

impl notify::Watcher for NoWatchesLeft {
    fn new<F: notify::EventHandler>(_: F, _: notify::Config) -> notify::Result<Self> {
        Ok(NoWatchesLeft)
    }
    fn watch(&mut self, path: &Path, _: notify::RecursiveMode) -> notify::Result<()> {
        Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch).add_path(path.to_path_buf()))
    }
    fn unwatch(&mut self, _: &Path) -> notify::Result<()> {
        Ok(())
    }
    fn kind() -> notify::WatcherKind {
        notify::WatcherKind::NullWatcher
    }
}

#[test]
fn native_mode_reports_inotify_limits_as_a_clear_error() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    for factory in [
        exhausted_inotify(),
        Arc::new(|_| Ok(Box::new(NoWatchesLeft) as Box<dyn notify::Watcher + Send>)),
    ] {
        let options = WatchOptions::default()
            .mode(WatchMode::Native)
            .native_watcher(factory);
        let err = ConfigWatcher::start(rig.reloader.clone(), options).unwrap_err();
        assert!(err.is_limit(), "{err}");
        let message = err.to_string();
        assert!(message.contains("inotify limit"), "{message}");
        assert!(message.contains("WatchMode::Poll"), "{message}");
    }
}

#[test]
fn auto_mode_falls_back_to_polling_when_the_native_watcher_cannot_be_had() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    for (i, factory) in [
        exhausted_inotify(),
        Arc::new(|_| Ok(Box::new(NoWatchesLeft) as Box<dyn notify::Watcher + Send>)),
    ]
    .into_iter()
    .enumerate()
    {
        let options = WatchOptions::default()
            .debounce(DEBOUNCE)
            .fallback_interval(POLL)
            .native_watcher(factory);
        let watcher = ConfigWatcher::start(rig.reloader.clone(), options).expect("falls back");
        assert_eq!(watcher.mode(), Backend::Poll);
        let value = 10 + i as u64;
        atomic_write(&sandbox, &format!("value = {value}"));
        wait_until(
            &format!("value {value} applied by the polling fallback"),
            TIMEOUT,
            || rig.value() == value,
        );
    }
}

#[test]
fn an_inotify_limit_at_run_time_falls_back_to_polling() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    // The real native watcher, with a way to inject what inotify reports.
    let injector: Arc<Mutex<Option<NativeEvents>>> = Arc::default();
    let keep = Arc::clone(&injector);
    let factory: hotcfg::watcher::NativeFactory = Arc::new(move |events: NativeEvents| {
        *keep.lock().unwrap() = Some(events.clone());
        let watcher = <notify::RecommendedWatcher as notify::Watcher>::new(
            events,
            notify::Config::default(),
        )?;
        Ok(Box::new(watcher) as Box<dyn notify::Watcher + Send>)
    });
    let options = WatchOptions::default()
        .debounce(DEBOUNCE)
        .fallback_interval(POLL)
        .native_watcher(factory);
    let watcher = ConfigWatcher::start(rig.reloader.clone(), options).unwrap();
    assert_eq!(watcher.mode(), Backend::Native);
    atomic_write(&sandbox, "value = 2");
    wait_until("value 2 applied by inotify", TIMEOUT, || rig.value() == 2);

    let mut events = injector.lock().unwrap().clone().unwrap();
    notify::EventHandler::handle_event(
        &mut events,
        Err(notify::Error::new(notify::ErrorKind::MaxFilesWatch)),
    );
    wait_until("the fallback to polling", TIMEOUT, || {
        watcher.mode() == Backend::Poll
    });
    assert_eq!(watcher.stats().fallbacks, 1);
    atomic_write(&sandbox, "value = 3");
    wait_until("value 3 applied by polling", TIMEOUT, || rig.value() == 3);
}

/// Descriptors this process may have open in the child of the test below.
const FEW_DESCRIPTORS: &str = "--nofile=256:256";

/// Issue 14: an edit made while the process has run out of file descriptors (EMFILE) cannot be
/// read; it is reported, and applied once descriptors are free again, without another edit or a
/// SIGHUP. Runs in a child process with a low descriptor limit (`prlimit`), which it then uses
/// up, so that no other test runs out.
#[test]
fn an_edit_made_while_descriptors_ran_out_is_applied_once_they_are_free() {
    let test = test_name(concat!(
        module_path!(),
        "::an_edit_made_while_descriptors_ran_out_is_applied_once_they_are_free"
    ));
    if std::env::var_os("HOTCFG_WATCHER_CHILD").is_none() {
        let prlimit = ["prlimit", FEW_DESCRIPTORS, "--"];
        if let Err(err) = run_in_child(&prlimit, test, &format!("under prlimit {FEW_DESCRIPTORS}"))
        {
            panic!("cannot run prlimit (util-linux) to lower the descriptor limit: {err}");
        }
        return;
    }
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    let _watcher = ConfigWatcher::start(rig.reloader.clone(), options(Mode::Native)).unwrap();
    let tmp = sandbox.write(".config.toml.tmp", "value = 2");
    // Use up every descriptor (the limit is 256: bounded).
    let mut held = Vec::new();
    let exhausted = loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(err) => break err,
        }
        assert!(held.len() < 10_000, "no descriptor limit in the child");
    };
    assert_eq!(exhausted.raw_os_error(), Some(24), "{exhausted}");
    // An atomic save needs no descriptor.
    std::fs::rename(tmp, sandbox.path("config.toml")).unwrap();
    let event = rig.next_event("the reload that cannot read the edit");
    assert!(
        matches!(&event.result, ReloadResult::Failed { error: ReloadError::Config(err), .. }
            if err.stage == Stage::Read && err.to_string().contains("os error 24")),
        "{event}"
    );
    assert_eq!(rig.value(), 1);
    drop(held);
    wait_until(
        "the edit applied once descriptors are free",
        TIMEOUT,
        || rig.value() == 2,
    );
    let event = rig.next_event("the reload that applies the edit");
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event}"
    );
    assert_eq!(
        event.trigger,
        Trigger::File(sandbox.path("config.toml")),
        "{event}"
    );
}

#[test]
fn a_change_made_before_the_watcher_started_is_applied() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    sandbox.write("config.toml", "value = 5");
    let _watcher = ConfigWatcher::start(rig.reloader.clone(), options(Mode::Native)).unwrap();
    wait_until("value 5 applied", TIMEOUT, || rig.value() == 5);
}

/// The real native watcher, saying when it is dropped.
struct Tracked {
    inner: notify::RecommendedWatcher,
    dropped: Arc<std::sync::atomic::AtomicBool>,
}

impl notify::Watcher for Tracked {
    fn new<F: notify::EventHandler>(handler: F, config: notify::Config) -> notify::Result<Self> {
        Ok(Tracked {
            inner: notify::RecommendedWatcher::new(handler, config)?,
            dropped: Arc::default(),
        })
    }
    fn watch(&mut self, path: &Path, mode: notify::RecursiveMode) -> notify::Result<()> {
        self.inner.watch(path, mode)
    }
    fn unwatch(&mut self, path: &Path) -> notify::Result<()> {
        self.inner.unwatch(path)
    }
    fn kind() -> notify::WatcherKind {
        notify::RecommendedWatcher::kind()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

/// A native watcher that says when it is dropped, and the handler it was given (to send an
/// event late, after the watcher stopped).
#[derive(Default)]
pub(super) struct TrackedWatcher {
    pub dropped: Arc<std::sync::atomic::AtomicBool>,
    pub events: Arc<Mutex<Option<NativeEvents>>>,
}

impl TrackedWatcher {
    /// Options for `mode` whose native watcher is tracked here.
    pub fn options(&self, mode: Mode) -> WatchOptions {
        let (flag, keep) = (Arc::clone(&self.dropped), Arc::clone(&self.events));
        let factory: hotcfg::watcher::NativeFactory = Arc::new(move |native: NativeEvents| {
            *keep.lock().unwrap() = Some(native.clone());
            let mut watcher = <Tracked as notify::Watcher>::new(native, notify::Config::default())?;
            watcher.dropped = Arc::clone(&flag);
            Ok(Box::new(watcher) as Box<dyn notify::Watcher + Send>)
        });
        options(mode).native_watcher(factory)
    }

    pub fn is_dropped(&self) -> bool {
        self.dropped.load(Ordering::SeqCst)
    }

    /// Checks that a stopped watcher does nothing: an edit and an event that comes late go
    /// nowhere, and the edit is there for whoever reloads next.
    pub fn check_stopped(&self, sandbox: &Sandbox, rig: &Rig) {
        atomic_write(sandbox, "value = 2");
        let mut late = self
            .events
            .lock()
            .unwrap()
            .clone()
            .expect("the factory ran");
        notify::EventHandler::handle_event(
            &mut late,
            Ok(notify::Event::new(notify::EventKind::Any).add_path(sandbox.path("config.toml"))),
        );
        assert!(rig.events.try_recv().is_err(), "a reload after the stop");
        assert_eq!(rig.value(), 1);
        // The first event is that of the next reload.
        rig.reloader.reload_now();
        let event = rig.next_event("the manual reload");
        assert_eq!(event.trigger, Trigger::Manual, "{event}");
        assert_eq!(rig.value(), 2);
    }
}

#[test]
fn a_dropped_watcher_stops_watching() {
    let sandbox = Sandbox::new();
    let rig = simple_rig(&sandbox, 1);
    let tracked = TrackedWatcher::default();
    let watcher =
        ConfigWatcher::start(rig.reloader.clone(), tracked.options(Mode::Native)).unwrap();
    drop(watcher);
    // Dropping returns once the thread is gone and the operating system's watches with it.
    assert!(
        tracked.is_dropped(),
        "the native watcher outlived the ConfigWatcher"
    );
    tracked.check_stopped(&sandbox, &rig);
}

#[test]
fn a_source_without_files_cannot_be_watched() {
    #[derive(Debug)]
    struct Nowhere;
    impl hotcfg::Source for Nowhere {
        fn read(&self) -> Result<hotcfg::SourceContent, hotcfg::SourceError> {
            let text = "value = 1".to_string();
            Ok(hotcfg::SourceContent {
                identity: hotcfg::SourceIdentity::new("memory", text.as_bytes()),
                layers: vec![hotcfg::Layer {
                    name: "memory".into(),
                    format: hotcfg::Format::Toml,
                    text,
                }],
            })
        }
        fn name(&self) -> String {
            "memory".into()
        }
    }
    let reloader = Reloader::<Cfg>::builder(Nowhere).build().unwrap();
    let err = ConfigWatcher::start(reloader, WatchOptions::default()).unwrap_err();
    assert!(matches!(err, hotcfg::WatchError::NoFiles), "{err}");
}
