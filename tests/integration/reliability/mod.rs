//! Trying hard to break the engine and the daemon:
//!
//! - `model`: a model-based stress test: random sequences of edits (valid, invalid,
//!   restart-only, vetoed, failing, panicking, manual reloads, bursts from several threads)
//!   against a live engine with reader threads, each settled step checked against a simple model;
//! - `fuzz_twin`: the proptest twin of the fuzz target (`fuzz/`): bytes through load, validate,
//!   diff, plan;
//! - `daemon_load`: the task daemon under load: 200 reloads of every kind while clients submit
//!   and poll.
//!
//! CI runs fixed seeds and few cases; `HOTCFG_STRESS_CASES` and `HOTCFG_FUZZ_CASES` ask for more
//! (and `HOTCFG_STRESS_SEED` for another seed).

mod daemon_load;
mod fuzz_twin;
mod model;

fn write_atomically(path: &std::path::Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
