//! The smallest useful hotcfg program: a typed configuration, a handler for its hot scope, a
//! file watcher, and a reader that sees every change without locking.
//!
//! ```text
//! cargo run --example minimal -- app.toml    # then edit `workers` in app.toml
//! ```
use std::time::Duration;

use hotcfg::{ConfigWatcher, FileSource, HotReload, Reloader, WatchOptions};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
struct Config {
    /// Where clients connect: changing it needs a restart.
    #[reload(restart)]
    listen: String,
    /// Worker pool size, resized live.
    #[reload(scope = "workers")]
    workers: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).unwrap_or_else(|| "app.toml".into());
    if !std::path::Path::new(&path).exists() {
        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nworkers = 2\n")?;
    }
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .on_apply("workers", |cx| {
            println!(
                "resizing the pool: {} -> {}",
                cx.old.workers, cx.new.workers
            );
            Ok(())
        })
        .subscriber(|event: &hotcfg::ReloadEvent| println!("{event}"))
        .build()?;
    let _watcher = ConfigWatcher::start(reloader.clone(), WatchOptions::default())?;
    let handle = reloader.handle();
    // Ten seconds of work; each unit reads the live configuration once (wait-free).
    for _ in 0..10 {
        println!("working with {} workers", handle.load().workers);
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}
