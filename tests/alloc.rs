//! Comparing equal configurations allocates nothing: counted with an instrumented global
//! allocator, in a test binary of its own so no other test allocates while it counts.
//!
//! Everything is checked in one `#[test]`: the allocator's counters are process-wide, and a
//! second test running on another thread would add its allocations to the count.

use std::alloc::System;
use std::collections::{BTreeMap, HashMap};

use hotcfg::{FieldPath, HotReload};
use serde::{Deserialize, Serialize};
use stats_alloc::{Region, Stats, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(restart)]
    listen: String,
    #[reload(nested)]
    limits: Limits,
    #[reload(nested)]
    loops: BTreeMap<String, LoopConfig>,
    #[reload(nested)]
    workers: HashMap<String, LoopConfig>,
    #[reload(nested)]
    tls: Option<Tls>,
    #[reload(nested)]
    proxy: Option<Tls>,
    #[reload(scope = "auth", secret)]
    token: String,
    #[reload(scope = "templates")]
    templates: BTreeMap<String, String>,
    #[reload(scope = "limits")]
    tags: Vec<String>,
    #[reload(scope = "limits")]
    burst: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "limits")]
struct Limits {
    max_concurrent: usize,
    queue_capacity: usize,
    ratio: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "loops")]
struct LoopConfig {
    max_iterations: u32,
    interval_ms: u64,
    #[reload(restart)]
    runner: String,
    #[reload(secret)]
    api_key: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "tls")]
struct Tls {
    cert: String,
    #[reload(secret)]
    key: String,
}

fn loop_config(n: u32) -> LoopConfig {
    LoopConfig {
        max_iterations: n,
        interval_ms: 100 * u64::from(n),
        runner: format!("runner-{n}"),
        api_key: format!("key-{n}"),
    }
}

fn sample() -> Config {
    Config {
        listen: "127.0.0.1:7000".into(),
        limits: Limits {
            max_concurrent: 4,
            queue_capacity: 64,
            ratio: 0.5,
        },
        loops: (1..=5)
            .map(|n| (format!("loop-{n}"), loop_config(n)))
            .collect(),
        workers: (1..=5).map(|n| (format!("w{n}"), loop_config(n))).collect(),
        tls: Some(Tls {
            cert: "/etc/td/cert.pem".into(),
            key: "-----BEGIN KEY-----".into(),
        }),
        proxy: None,
        token: "s3cret-token".into(),
        templates: [("status", "{{id}}: {{state}}"), ("done", "{{id}} done")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        tags: vec!["a".into(), "b".into()],
        burst: Some(8),
    }
}

/// Runs `f` and returns its result with what was allocated meanwhile (by every thread).
fn counted<T>(f: impl FnOnce() -> T) -> (T, Stats) {
    let region = Region::new(GLOBAL);
    let out = f();
    (out, region.change())
}

fn assert_no_allocation(what: &str, stats: Stats) {
    assert!(
        stats.allocations == 0 && stats.reallocations == 0 && stats.bytes_allocated == 0,
        "{what}: expected no allocation, got {stats:?}"
    );
}

#[test]
fn diffing_equal_values_allocates_nothing_and_a_real_change_does() {
    let a = sample();
    // A clone shares nothing with `a`: every string and map is a separate allocation, so the
    // comparison really walks both values.
    let b = a.clone();
    // An equal value built independently (the HashMap's iteration order may differ).
    let c = sample();

    let (diff, stats) = counted(|| a.diff(&b));
    assert!(diff.is_empty(), "{diff}");
    assert_no_allocation("a.diff(&a.clone())", stats);
    drop(diff);

    let (diff, stats) = counted(|| a.diff(&c));
    assert!(diff.is_empty(), "{diff}");
    assert_no_allocation("a.diff(&equal value built separately)", stats);
    drop(diff);

    let mut out = Vec::new();
    let ((), stats) = counted(|| a.diff_into(&b, &FieldPath::ROOT, &mut out));
    assert!(out.is_empty());
    assert_no_allocation("a.diff_into(&a.clone(), ..) into an empty Vec", stats);

    let root = FieldPath::ROOT;
    let prefix = root.join("daemon");
    let mut out = Vec::with_capacity(4);
    let ((), stats) = counted(|| a.diff_into(&c, &prefix, &mut out));
    assert!(out.is_empty());
    assert_no_allocation("a.diff_into(&equal, `daemon` prefix, ..)", stats);

    // Repeated calls stay at zero (nothing is cached lazily on a first call).
    let (_, stats) = counted(|| {
        let mut empty = true;
        for _ in 0..100 {
            empty &= a.diff(&b).is_empty();
        }
        empty
    });
    assert_no_allocation("100 x a.diff(&a.clone())", stats);

    // The counter does see allocations: every kind of real change allocates.
    let mut changed = a.clone();
    changed.limits.max_concurrent = 8;
    let (diff, stats) = counted(|| a.diff(&changed));
    assert_eq!(diff.len(), 1, "{diff}");
    assert!(
        stats.bytes_allocated > 0,
        "a nested leaf change must allocate its Change, counted {stats:?}"
    );

    let mut changed = a.clone();
    changed.token = "rotated".into();
    changed.loops.insert("loop-9".into(), loop_config(9));
    changed.tls = None;
    let (diff, stats) = counted(|| a.diff(&changed));
    assert_eq!(diff.len(), 3, "{diff}");
    assert!(
        stats.allocations > 0 && stats.bytes_allocated > 0,
        "secret, map and option changes must allocate, counted {stats:?}"
    );
    assert!(
        !diff.to_string().contains("rotated") && !diff.to_string().contains("key-9"),
        "secrets are redacted: {diff}"
    );
}
