//! The derived diff against the diff crates a user would pick instead (issue 19), on the same
//! 1,000-leaf configuration (10 x 10 x 10 nested sections), interleaved in one run.
//!
//! What each contender's output holds (the fairness column of `BENCHMARKS.md`):
//! * `hotcfg`: a `Diff` of `Change`s, each with its dotted path, class, kind, and the old and new
//!   values rendered as JSON;
//! * `structdiff`: a `Vec` of generated enum values holding the new value only (nested sections
//!   recurse into their own `Vec`); no path, no old value, no class;
//! * `diff-struct`: a generated struct as large as the input, a delta or `Option` per leaf;
//! * `serde-diff`: the changed fields' new values and paths, serialized (here to JSON bytes);
//! * `value_diff`: the seed's `serde_json::Value` walk, paths and old/new `Value`s in hash maps.
//!
//! `cargo bench -p hotcfg-benches --bench peers_diff`

use std::hint::black_box;

use hotcfg::HotReload;
use hotcfg_benches::fixtures::{changed, Fixture, Leaf1000};
use hotcfg_benches::seed::value_diff;
use hotcfg_benches::{benchmarking, compare, Contender};
use structdiff::StructDiff;

/// The fixture's shape (ten leaves of the usual kinds, 10 x 10 x 10), once per peer: two
/// derives on one type would make their generated `diff` calls ambiguous.
macro_rules! peer_types {
    ($module:ident, $derive:path, [$($nested:tt)*]) => {
        mod $module {
            use serde::{Deserialize, Serialize};
            #[allow(unused_imports)] // structdiff's generated code names the trait unqualified.
            use structdiff::StructDiff;

            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, $derive)]
            pub struct Peer10 {
                max_concurrent: u64,
                queue_capacity: u64,
                timeout_ms: u32,
                enabled: bool,
                name: String,
                interval_ms: u64,
                retries: u16,
                template: String,
                ratio: f64,
                max_iterations: u64,
            }

            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, $derive)]
            pub struct Peer100 {
                $($nested)* s0: Peer10,
                $($nested)* s1: Peer10,
                $($nested)* s2: Peer10,
                $($nested)* s3: Peer10,
                $($nested)* s4: Peer10,
                $($nested)* s5: Peer10,
                $($nested)* s6: Peer10,
                $($nested)* s7: Peer10,
                $($nested)* s8: Peer10,
                $($nested)* s9: Peer10,
            }

            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, $derive)]
            pub struct Peer1000 {
                $($nested)* g0: Peer100,
                $($nested)* g1: Peer100,
                $($nested)* g2: Peer100,
                $($nested)* g3: Peer100,
                $($nested)* g4: Peer100,
                $($nested)* g5: Peer100,
                $($nested)* g6: Peer100,
                $($nested)* g7: Peer100,
                $($nested)* g8: Peer100,
                $($nested)* g9: Peer100,
            }
        }
    };
}

// structdiff recurses into nested sections only when told to.
peer_types!(sd, structdiff::Difference, [#[difference(recurse)]]);
peer_types!(ds, diff::Diff, []);
peer_types!(sdiff, serde_diff::SerdeDiff, []);

/// The same value as a peer's type.
fn mirror<P: serde::de::DeserializeOwned>(config: &Leaf1000) -> P {
    serde_json::from_value(serde_json::to_value(config).expect("serializable")).expect("same shape")
}

fn serde_diff_json(old: &sdiff::Peer1000, new: &sdiff::Peer1000) -> Vec<u8> {
    serde_json::to_vec(&serde_diff::Diff::serializable(old, new)).expect("serializable")
}

fn run(case: &str, changes: usize, rounds: usize) {
    let base = Leaf1000::sample(7);
    let other = changed(&base, changes);
    let (sd_base, sd_other): (sd::Peer1000, sd::Peer1000) = (mirror(&base), mirror(&other));
    let (ds_base, ds_other): (ds::Peer1000, ds::Peer1000) = (mirror(&base), mirror(&other));
    let (sdiff_base, sdiff_other): (sdiff::Peer1000, sdiff::Peer1000) =
        (mirror(&base), mirror(&other));
    // Every contender sees the same change.
    assert_eq!(base.diff(&other).len(), changes);
    assert_eq!(value_diff(&base, &other).len(), changes);
    assert_eq!(
        sd_base.diff(&sd_other).is_empty(),
        changes == 0,
        "structdiff sees the change"
    );
    let mut hotcfg = || {
        for _ in 0..100 {
            black_box(black_box(&base).diff(black_box(&other)));
        }
    };
    let mut structdiff = || {
        for _ in 0..100 {
            black_box(StructDiff::diff(black_box(&sd_base), black_box(&sd_other)));
        }
    };
    let mut diff_struct = || {
        for _ in 0..100 {
            black_box(diff::Diff::diff(black_box(&ds_base), black_box(&ds_other)));
        }
    };
    let mut serde_diff = || {
        black_box(serde_diff_json(
            black_box(&sdiff_base),
            black_box(&sdiff_other),
        ));
    };
    let mut value = || {
        black_box(value_diff(black_box(&base), black_box(&other)));
    };
    compare(
        &format!("diff, 1,000 leaves, {case}"),
        rounds,
        1,
        &mut [
            Contender {
                name: "hotcfg",
                batch: 100,
                run: &mut hotcfg,
            },
            Contender {
                name: "structdiff",
                batch: 100,
                run: &mut structdiff,
            },
            Contender {
                name: "diff-struct",
                batch: 100,
                run: &mut diff_struct,
            },
            Contender {
                name: "serde-diff (to JSON)",
                batch: 1,
                run: &mut serde_diff,
            },
            Contender {
                name: "serde_json::Value diff",
                batch: 1,
                run: &mut value,
            },
        ],
    );
}

fn main() {
    let rounds = if benchmarking() { 2_000 } else { 3 };
    run("nothing changed", 0, rounds);
    run("one change", 1, rounds);
}
