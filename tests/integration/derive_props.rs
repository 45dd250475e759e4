//! Properties of the generated `diff` and `merge_hot`, on a configuration with nested structs,
//! maps of nested values (hot and restart-only), an optional section and leaf maps.

use std::collections::{BTreeMap, HashMap};

use hotcfg::HotReload;
use proptest::collection::{btree_map, hash_map};
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::{Deserialize, Serialize};

use crate::props;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Limits {
    #[reload(scope = "limits")]
    max_concurrent: u8,
    #[reload(restart)]
    pool: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "loops")]
struct Loop {
    max_iterations: u8,
    #[reload(restart)]
    runner: String,
}

/// Restart-only as a whole: appearing or disappearing needs a restart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Tls {
    #[reload(scope = "tls")]
    cert: String,
}

/// Restart-only as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Pool {
    size: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    listen: String,
    #[reload(nested)]
    limits: Limits,
    #[reload(nested)]
    loops: BTreeMap<String, Loop>,
    #[reload(nested)]
    tls: Option<Tls>,
    #[reload(scope = "auth", secret)]
    token: String,
    #[reload(scope = "templates")]
    templates: BTreeMap<String, String>,
    #[reload(nested)]
    pools: HashMap<String, Pool>,
}

// Small domains, so that two generated values often agree in places.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![Just("a".to_string()), Just("b".to_string())]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("x".to_string()),
        Just("y".to_string()),
        Just("z".to_string())
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let limits = (0u8..3, 0u8..3).prop_map(|(max_concurrent, pool)| Limits {
        max_concurrent,
        pool,
    });
    let loop_ = (0u8..3, word()).prop_map(|(max_iterations, runner)| Loop {
        max_iterations,
        runner,
    });
    (
        word(),
        limits,
        btree_map(key(), loop_, 0..3),
        option::of(word().prop_map(|cert| Tls { cert })),
        word(),
        btree_map(key(), word(), 0..3),
        hash_map(key(), (0u8..2).prop_map(|size| Pool { size }), 0..3),
    )
        .prop_map(
            |(listen, limits, loops, tls, token, templates, pools)| Config {
                listen,
                limits,
                loops,
                tls,
                token,
                templates,
                pools,
            },
        )
}

/// Cases per property (`HOTCFG_PROPS_CASES` asks for more); the seed is fixed (see `props`).
const CASES: u32 = 64;

fn check<S: Strategy>(
    name: &str,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    props::check(name, "HOTCFG_PROPS_CASES", CASES, &strategy, test);
}

#[test]
fn diff_with_itself_is_empty() {
    check("diff_with_itself_is_empty", config(), |a| {
        prop_assert!(a.diff(&a).is_empty());
        prop_assert_eq!(a.merge_hot(&a), a);
        Ok(())
    });
}

#[test]
fn diff_is_empty_iff_equal() {
    check("diff_is_empty_iff_equal", (config(), config()), |(a, b)| {
        prop_assert_eq!(a.diff(&b).is_empty(), a == b);
        Ok(())
    });
}

#[test]
fn merged_value_differs_from_new_only_in_restart_fields() {
    check(
        "merged_value_differs_from_new_only_in_restart_fields",
        (config(), config()),
        |(a, b)| {
            let merged = a.merge_hot(&b);
            let left = merged.diff(&b);
            prop_assert!(left.iter().all(|c| c.class.is_restart()), "{}", left);
            // And every restart-only change of `a -> b` is still pending.
            let pending: Vec<_> = a
                .diff(&b)
                .restart_changes()
                .map(|c| c.path.clone())
                .collect();
            let left: Vec<_> = left.iter().map(|c| c.path.clone()).collect();
            prop_assert_eq!(left, pending);
            Ok(())
        },
    );
}

#[test]
fn merge_follows_the_kind_of_changes() {
    check(
        "merge_follows_the_kind_of_changes",
        (config(), config()),
        |(a, b)| {
            let diff = a.diff(&b);
            if diff.hot_changes().next().is_none() {
                prop_assert_eq!(a.merge_hot(&b), a.clone());
            }
            if !diff.needs_restart() {
                prop_assert_eq!(a.merge_hot(&b), b.clone());
            }
            Ok(())
        },
    );
}
