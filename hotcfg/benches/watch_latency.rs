//! How long from a completed save to the new configuration being visible, with the default
//! options (debounce 75 ms), for each way a save is made.
//!
//! `cargo bench -p hotcfg --bench watch_latency` (without `--bench`, as under
//! `cargo test --benches`, a short smoke run).
//!
//! - Latency, native watcher, one row per kind of save: an atomic rename over the config, a
//!   Kubernetes `..data` swap, an in-place write closed at once, an in-place write in two steps
//!   (half the text, a 20 ms pause, the rest, then the close). The time from the start of the
//!   save's last step (the rename; the write and close; the second write and close) to the new
//!   generation being visible in the handle: median, p99, worst. Saves are spaced by more than the debounce window (as edits by
//!   people and tools are); saves closer together are a burst, below.
//!   The first half of the two-step write is a valid configuration on its own (`name` has a
//!   default): a reload that applied it would change `name`; the bench counts those.
//! - Burst: 1,000 in-place writes as fast as possible; the reloads performed and the time until
//!   the live config holds the last write.
//!
//! Then polling every 100 ms, for comparison (it cannot see a save complete).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg::watcher::{Backend, ConfigWatcher, WatchMode, WatchOptions};
use hotcfg::{FileSource, HotReload, ReloadEvent, ReloadResult, Reloader};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "main")]
    value: u64,
    #[serde(default)]
    #[reload(scope = "main")]
    name: String,
}

const FIRST_HALF: &str = "value = {i}\n";
const SECOND_HALF: &str = "name = \"benchmark\"\n";

fn text(value: u64) -> String {
    FIRST_HALF.replace("{i}", &value.to_string()) + SECOND_HALF
}

/// More than the default debounce window (75 ms) between two saves.
const GAP: Duration = Duration::from_millis(100);
/// The two-step writer's pause: well within the debounce window.
const PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Save {
    AtomicRename,
    DataSwap,
    InPlaceClosed,
    InPlaceTwoSteps,
}

impl Save {
    fn label(self) -> &'static str {
        match self {
            Save::AtomicRename => "atomic rename",
            Save::DataSwap => "..data swap (ConfigMap)",
            Save::InPlaceClosed => "in-place write, closed at once",
            Save::InPlaceTwoSteps => "in-place write in two steps",
        }
    }
}

type Events = tokio::sync::broadcast::Receiver<Arc<ReloadEvent>>;

struct Setup {
    dir: tempfile::TempDir,
    /// The path the reloader reads.
    path: PathBuf,
    reloader: Reloader<Config>,
    events: Events,
    watcher: ConfigWatcher,
}

fn setup(mode: WatchMode, save: Save) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    if save == Save::DataSwap {
        // config.toml -> ..data/config.toml, ..data -> ..0
        std::fs::create_dir(dir.path().join("..0")).unwrap();
        std::fs::write(dir.path().join("..0/config.toml"), text(0)).unwrap();
        std::os::unix::fs::symlink("..0", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/config.toml", &path).unwrap();
    } else {
        std::fs::write(&path, text(0)).unwrap();
    }
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .on_apply("main", |_| Ok(()))
        .build()
        .unwrap();
    let events = reloader.events();
    let watcher =
        ConfigWatcher::start(reloader.clone(), WatchOptions::default().mode(mode)).unwrap();
    Setup {
        dir,
        path,
        reloader,
        events,
        watcher,
    }
}

/// What making a save measured.
struct Made {
    /// When its last step (the rename, the write and close, the second write) began.
    last_step: Instant,
    /// For the two-step write: how long the writer really paused between the steps.
    pause: Option<Duration>,
}

/// Makes save `i`.
fn save(s: &Setup, kind: Save, i: u64) -> Made {
    let dir = s.dir.path();
    let mut pause = None;
    let last_step = match kind {
        Save::AtomicRename => {
            let tmp = dir.join(".config.toml.tmp");
            std::fs::write(&tmp, text(i)).unwrap();
            let start = Instant::now();
            std::fs::rename(&tmp, &s.path).unwrap();
            start
        }
        Save::DataSwap => {
            let version = dir.join(format!("..{i}"));
            std::fs::create_dir(&version).unwrap();
            std::fs::write(version.join("config.toml"), text(i)).unwrap();
            std::os::unix::fs::symlink(format!("..{i}"), dir.join("..data_tmp")).unwrap();
            let start = Instant::now();
            std::fs::rename(dir.join("..data_tmp"), dir.join("..data")).unwrap();
            start
        }
        Save::InPlaceClosed => {
            let start = Instant::now();
            std::fs::write(&s.path, text(i)).unwrap();
            start
        }
        Save::InPlaceTwoSteps => {
            let mut file = std::fs::File::create(&s.path).unwrap();
            file.write_all(FIRST_HALF.replace("{i}", &i.to_string()).as_bytes())
                .unwrap();
            let paused = Instant::now();
            std::thread::sleep(PAUSE);
            let start = Instant::now();
            pause = Some(start - paused);
            file.write_all(SECOND_HALF.as_bytes()).unwrap();
            drop(file);
            start
        }
    };
    Made { last_step, pause }
}

/// After save `i` is visible: what a ConfigMap update does next (remove the old version).
fn tidy(s: &Setup, kind: Save, i: u64) {
    if kind == Save::DataSwap {
        std::fs::remove_dir_all(s.dir.path().join(format!("..{}", i - 1))).unwrap();
    }
}

/// Waits for the next event (no timeout here: the watchdog in `main` ends a hung run).
fn next(events: &mut Events) -> Arc<ReloadEvent> {
    loop {
        match events.blocking_recv() {
            Ok(event) => return event,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
            Err(err) => panic!("event channel: {err}"),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// What the reloads on the way did wrong: failed ones, and ones that applied a half-written file.
#[derive(Default)]
struct Faults {
    failed: usize,
    half_applied: usize,
}

impl Faults {
    fn count(&mut self, event: &ReloadEvent) {
        match &event.result {
            ReloadResult::Failed { .. } => self.failed += 1,
            // The first half alone sets `name` to its default, "".
            ReloadResult::Applied { applied, .. }
                if applied
                    .iter()
                    .any(|c| c.path == "name" && c.new.as_deref() == Some("\"\"")) =>
            {
                self.half_applied += 1
            }
            _ => {}
        }
    }
}

fn latency(label: &str, mode: WatchMode, kind: Save, edits: u64) {
    let mut s = setup(mode, kind);
    let handle = s.reloader.handle();
    let mut samples = Vec::with_capacity(edits as usize);
    let mut faults = Faults::default();
    let mut pauses = Vec::new();
    for i in 1..=edits {
        std::thread::sleep(GAP);
        let made = save(&s, kind, i);
        while handle.load().value != i {
            faults.count(&next(&mut s.events));
        }
        samples.push(made.last_step.elapsed());
        pauses.extend(made.pause);
        tidy(&s, kind, i);
    }
    std::thread::sleep(GAP);
    while let Ok(event) = s.events.try_recv() {
        faults.count(&event);
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    let stats = s.watcher.stats();
    if let Some(longest) = pauses.iter().max() {
        let over = pauses
            .iter()
            .filter(|p| **p >= hotcfg::watcher::DEFAULT_DEBOUNCE)
            .count();
        println!(
            "  the writer paused {:?} between its steps: longest pause {}, {over} pause(s) as long \
             as the debounce window or longer (the scheduler's doing)",
            PAUSE,
            ms(*longest)
        );
    }
    println!(
        "{label}, {}: write-to-visible over {edits} saves: median {}, p99 {}, worst {}, best {}, \
         mean {}; failed reloads {}, half-written applied {}; reloads {}, completions seen {} \
         (backend {:?})",
        kind.label(),
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(samples[samples.len() - 1]),
        ms(samples[0]),
        ms(mean),
        faults.failed,
        faults.half_applied,
        stats.triggers,
        stats.completions,
        stats.backend,
    );
}

fn burst(label: &str, mode: WatchMode, writes: u64) {
    let mut s = setup(mode, Save::InPlaceClosed);
    let handle = s.reloader.handle();
    let start = Instant::now();
    for i in 1..=writes {
        std::fs::write(&s.path, text(i)).unwrap();
    }
    let written = start.elapsed();
    let mut reloads = Vec::new();
    while handle.load().value != writes {
        reloads.push(next(&mut s.events));
    }
    let converged = start.elapsed();
    // Anything still coming after convergence counts too.
    std::thread::sleep(Duration::from_secs(1));
    while let Ok(event) = s.events.try_recv() {
        reloads.push(event);
    }
    let kinds: Vec<&str> = reloads.iter().map(|e| e.result.kind()).collect();
    println!(
        "{label}: burst of {writes} in-place writes in {}: {} reload(s) {:?}; live = last write {} \
         after the first write ({} after the last); watcher {:?}",
        ms(written),
        reloads.len(),
        kinds,
        ms(converged),
        ms(converged - written),
        s.watcher.stats(),
    );
}

fn main() {
    std::thread::spawn(|| {
        std::thread::sleep(Duration::from_secs(300));
        eprintln!("watch_latency: no result within 300 s; giving up");
        std::process::exit(1);
    });
    let full = std::env::args().any(|a| a == "--bench");
    let (edits, writes) = if full { (100, 1000) } else { (3, 50) };
    let native = setup(WatchMode::Auto, Save::AtomicRename);
    assert_eq!(
        native.watcher.mode(),
        Backend::Native,
        "no native watcher here"
    );
    drop(native);
    for kind in [
        Save::AtomicRename,
        Save::DataSwap,
        Save::InPlaceClosed,
        Save::InPlaceTwoSteps,
    ] {
        latency("native (default options)", WatchMode::Auto, kind, edits);
    }
    burst("native (default options)", WatchMode::Auto, writes);
    let poll = WatchMode::Poll {
        interval: Duration::from_millis(100),
    };
    latency("poll every 100 ms", poll, Save::AtomicRename, edits);
    burst("poll every 100 ms", poll, writes);
}
