//! Reading the live configuration, uncontended, against the shared-value crates a user would pick
//! (issue 19), interleaved in one run. Each read takes the current version, reads one field of
//! one section of the 100-field fixture and lets the version go.
//!
//! What each contender gives the reader:
//! * `hotcfg load()`: a guard on the live snapshot (generation, source, config); any `&Handle`;
//! * `hotcfg cached`: `Handle::cached()`, a `&Arc<Snapshot>` valid until the next load; `&mut`,
//!   one reader per thread or task;
//! * `arc-swap load`: a guard on the value (`ArcSwap::load`);
//! * `arc-swap Cache`: `arc_swap::Cache::load`, `&Arc<T>`; `&mut`, one per thread;
//! * `arcshift get`: `ArcShift::get`, `&T`; `&mut`, every reader holds its own clone;
//! * `RwLock<Arc> read+clone`: `std::sync::RwLock<Arc<T>>`, read lock, clone the `Arc`;
//! * `Arc::clone`: a plain `Arc` clone and drop, no way to see a new version (the floor for a
//!   reader that owns what it read).
//!
//! `cargo bench -p hotcfg-benches --bench peers_read`

use std::hint::black_box;
use std::sync::{Arc, RwLock};

use arc_swap::ArcSwap;
use arcshift::ArcShift;
use hotcfg::Handle;
use hotcfg_benches::fixtures::{Fixture, Leaf100};
use hotcfg_benches::{benchmarking, compare, Contender};

/// Reads per round: long enough to time, short enough for many rounds.
const BATCH: u32 = 1_000;

fn main() {
    let rounds = if benchmarking() { 3_000 } else { 3 };
    let config = Leaf100::sample(3);
    let handle = Handle::new(config.clone());
    let mut cached = handle.cached();
    let swap = Arc::new(ArcSwap::from_pointee(config.clone()));
    let mut swap_cache = arc_swap::Cache::new(Arc::clone(&swap));
    let mut shift = ArcShift::new(config.clone());
    let lock = RwLock::new(Arc::new(config.clone()));
    let plain = Arc::new(config);

    let mut hotcfg_load = || {
        for _ in 0..BATCH {
            black_box(black_box(&handle).load().s3.max_concurrent);
        }
    };
    let mut hotcfg_cached = || {
        for _ in 0..BATCH {
            black_box(black_box(&mut cached).load().s3.max_concurrent);
        }
    };
    let mut swap_load = || {
        for _ in 0..BATCH {
            black_box(black_box(&swap).load().s3.max_concurrent);
        }
    };
    let mut swap_cached = || {
        for _ in 0..BATCH {
            black_box(black_box(&mut swap_cache).load().s3.max_concurrent);
        }
    };
    let mut shift_get = || {
        for _ in 0..BATCH {
            black_box(black_box(&mut shift).get().s3.max_concurrent);
        }
    };
    let mut rwlock = || {
        for _ in 0..BATCH {
            let arc = Arc::clone(&black_box(&lock).read().expect("never poisoned"));
            black_box(arc.s3.max_concurrent);
        }
    };
    let mut arc_clone = || {
        for _ in 0..BATCH {
            black_box(Arc::clone(black_box(&plain)).s3.max_concurrent);
        }
    };
    compare(
        "read, uncontended, 100 fields",
        rounds,
        4,
        &mut [
            Contender {
                name: "hotcfg load()",
                batch: BATCH,
                run: &mut hotcfg_load,
            },
            Contender {
                name: "hotcfg cached()",
                batch: BATCH,
                run: &mut hotcfg_cached,
            },
            Contender {
                name: "arc-swap load",
                batch: BATCH,
                run: &mut swap_load,
            },
            Contender {
                name: "arc-swap Cache",
                batch: BATCH,
                run: &mut swap_cached,
            },
            Contender {
                name: "arcshift get",
                batch: BATCH,
                run: &mut shift_get,
            },
            Contender {
                name: "RwLock<Arc> read+clone",
                batch: BATCH,
                run: &mut rwlock,
            },
            Contender {
                name: "Arc::clone",
                batch: BATCH,
                run: &mut arc_clone,
            },
        ],
    );
}
