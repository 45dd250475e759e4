//! How long from a write to the new configuration being visible, with the default options.
//!
//! `cargo bench -p hotcfg --bench watch_latency`
//!
//! - Latency: 100 edits, each an atomic save (write a temporary file, rename it over the config);
//!   the time from the rename to the new generation being visible in the handle. Median, p99,
//!   worst. With the default debounce (75 ms) that time is mostly the debounce window.
//! - Burst: 1,000 in-place writes as fast as possible; the reloads performed and the time until
//!   the live config holds the last write.
//!
//! Run for the native watcher (default options, `WatchMode::Auto`) and for polling every 100 ms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg::watcher::{Backend, ConfigWatcher, WatchMode, WatchOptions};
use hotcfg::{FileSource, HotReload, ReloadEvent, Reloader};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "main")]
    value: u64,
    #[reload(scope = "main")]
    name: String,
}

fn text(value: u64) -> String {
    format!("value = {value}\nname = \"benchmark\"\n")
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    reloader: Reloader<Config>,
    events: tokio::sync::broadcast::Receiver<Arc<ReloadEvent>>,
    watcher: ConfigWatcher,
}

fn setup(mode: WatchMode) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let tmp = dir.path().join(".config.toml.tmp");
    std::fs::write(&path, text(0)).unwrap();
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .on_apply("main", |_| Ok(()))
        .build()
        .unwrap();
    let events = reloader.events();
    let watcher =
        ConfigWatcher::start(reloader.clone(), WatchOptions::default().mode(mode)).unwrap();
    Setup {
        _dir: dir,
        path,
        tmp,
        reloader,
        events,
        watcher,
    }
}

/// Waits for the next event (no timeout here: the watchdog in `main` ends a hung run).
fn next(events: &mut tokio::sync::broadcast::Receiver<Arc<ReloadEvent>>) -> Arc<ReloadEvent> {
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

fn latency(label: &str, mode: WatchMode, edits: u64) {
    let mut s = setup(mode);
    let handle = s.reloader.handle();
    let mut samples = Vec::with_capacity(edits as usize);
    for i in 1..=edits {
        std::fs::write(&s.tmp, text(i)).unwrap();
        let start = Instant::now();
        std::fs::rename(&s.tmp, &s.path).unwrap();
        while handle.load().value != i {
            next(&mut s.events);
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label}: write-to-visible over {edits} atomic saves: median {}, p99 {}, worst {}, best {}, mean {} (backend {:?})",
        ms(pick(0.5)),
        ms(pick(0.99)),
        ms(samples[samples.len() - 1]),
        ms(samples[0]),
        ms(mean),
        s.watcher.mode(),
    );
}

fn burst(label: &str, mode: WatchMode, writes: u64) {
    let mut s = setup(mode);
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
        "{label}: burst of {writes} in-place writes in {}: {} reload(s) {:?}; live = last write {} after the first write ({} after the last); watcher {:?}",
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
    let native = setup(WatchMode::Auto);
    assert_eq!(
        native.watcher.mode(),
        Backend::Native,
        "no native watcher here"
    );
    drop(native);
    latency("native (default options)", WatchMode::Auto, 100);
    burst("native (default options)", WatchMode::Auto, 1000);
    let poll = WatchMode::Poll {
        interval: Duration::from_millis(100),
    };
    latency("poll every 100 ms", poll, 100);
    burst("poll every 100 ms", poll, 1000);
}
