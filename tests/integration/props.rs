//! How the property tests here run proptest: a fixed seed unless `HOTCFG_STRESS_SEED` asks for
//! another, so that a failure always replays, and a failure message that names the seed and the
//! case count to replay it with.

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

/// The environment variable choosing the seed of every property test.
pub(crate) const SEED_VAR: &str = "HOTCFG_STRESS_SEED";
const DEFAULT_SEED: u64 = 0x7e11_ab1e;

/// `name` from the environment as a number, or `default`.
pub(crate) fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs `test` on `cases` values of `strategy` (`cases_var` in the environment asks for more),
/// from the fixed seed; panics on failure with the minimal failing input and how to replay it.
pub(crate) fn check<S: Strategy>(
    name: &str,
    cases_var: &str,
    default_cases: u32,
    strategy: &S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let seed = env_number(SEED_VAR, DEFAULT_SEED);
    let cases = env_number(cases_var, u64::from(default_cases)) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        // The fixed seed replays a failure; no regression files to keep.
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    });
    if let Err(error) = runner.run(strategy, test) {
        panic!("{name}: {error}\nreplay: {SEED_VAR}={seed} {cases_var}={cases}");
    }
}
