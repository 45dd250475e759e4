//! Resident memory over 100,000 reloads with history and the audit log enabled.
//!
//! A 100-field configuration served from memory, alternating between two versions so every
//! reload applies (one change each), with the default history (64 events), metrics and a
//! hash-chained audit log. The audit log is on a RAM file system (`/dev/shm`) when there is one:
//! its pages are not this process's resident memory, and it keeps 100,000 `fdatasync`s from
//! making the run take minutes. After a warm-up of 10,000 reloads (the history fills, the
//! allocator reaches its working set), `VmRSS` is read every 10,000 reloads.
//!
//! `cargo bench -p hotcfg-benches --bench memory` (under `cargo test --benches`, a short run).

use std::time::Instant;

use hotcfg::{ReloadResult, Reloader, DEFAULT_HISTORY_LEN};
use hotcfg_benches::fixtures::{changed, toml_text, Fixture, Leaf100};
use hotcfg_benches::{benchmarking, ram_tempdir, resident_bytes, MemorySource};

const MIB: f64 = 1024.0 * 1024.0;

fn main() {
    let (warm_up, reloads): (u32, u32) = if benchmarking() {
        (10_000, 100_000)
    } else {
        (200, 2_000)
    };
    let dir = ram_tempdir();
    let audit = dir.path().join("audit.jsonl");
    let base = Leaf100::sample(5);
    let texts = vec![toml_text(&base), toml_text(&changed(&base, 1))];
    let reloader = Reloader::<Leaf100>::builder(MemorySource::alternating(texts))
        .history_len(DEFAULT_HISTORY_LEN)
        .audit_log(&audit)
        .on_apply("limits", |_| Ok(()))
        .on_apply("loops", |_| Ok(()))
        .build()
        .expect("the fixture loads");

    let reload = || {
        let event = reloader.reload_now();
        assert!(
            matches!(event.result, ReloadResult::Applied { .. }),
            "{:?}",
            event.result
        );
    };
    let start = Instant::now();
    for _ in 0..warm_up {
        reload();
    }
    let Some(before) = resident_bytes() else {
        println!("memory: /proc/self/status has no VmRSS here; nothing measured");
        return;
    };
    println!(
        "memory: {warm_up} warm-up reloads in {:.1?}; resident {:.2} MiB",
        start.elapsed(),
        before as f64 / MIB
    );
    println!("| reloads after warm-up | resident MiB | growth KiB |");
    println!("|-----------------------|--------------|------------|");
    let start = Instant::now();
    let step = reloads / 10;
    let mut peak = before;
    for done in 1..=reloads {
        reload();
        if done.is_multiple_of(step) {
            let now = resident_bytes().unwrap_or(0);
            peak = peak.max(now);
            println!(
                "| {done:>21} | {:>12.2} | {:>10.0} |",
                now as f64 / MIB,
                (now as f64 - before as f64) / 1024.0
            );
        }
    }
    let elapsed = start.elapsed();
    let after = resident_bytes().unwrap_or(0);
    let growth = after as f64 - before as f64;
    let history = reloader.history().len();
    let audit_bytes = std::fs::metadata(&audit).map_or(0, |m| m.len());
    println!(
        "memory: {reloads} reloads in {elapsed:.1?} ({:.1} µs each), generation {}, history {history} events, audit log {:.1} MiB in {}",
        elapsed.as_secs_f64() * 1e6 / reloads as f64,
        reloader.handle().generation(),
        audit_bytes as f64 / MIB,
        dir.path().display(),
    );
    println!(
        "memory: resident growth after warm-up {:+.1} KiB (peak {:+.1} KiB); target < 1024 KiB: {}",
        growth / 1024.0,
        (peak as f64 - before as f64) / 1024.0,
        if growth < MIB { "met" } else { "MISSED" }
    );
}
