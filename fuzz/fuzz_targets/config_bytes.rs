//! Arbitrary bytes as a configuration file, through load, validate, diff and plan: no panic, no
//! hang, bounded memory. The first byte picks the format (TOML, JSON or YAML).
//!
//! ```text
//! cd fuzz
//! cargo +nightly fuzz run config_bytes corpus/config_bytes seeds -- -max_total_time=300 -timeout=10
//! ```
//!
//! New inputs go to `corpus/config_bytes` (not kept); `seeds` holds the starting inputs. A crash
//! found and fixed gets its input copied to `regressions`. The same function runs in the normal
//! test suite on every file of `seeds` and `regressions` and on generated inputs
//! (`tests/integration/reliability/fuzz_twin.rs`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    hotcfg_tests::fuzz::config_bytes(data);
});
