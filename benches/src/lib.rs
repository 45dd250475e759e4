//! Shared fixtures for the hotcfg benchmarks: configuration types of 10, 100 and 1,000 leaf
//! fields, the seed's `serde_json::Value` diff (the baseline), an in-memory [`hotcfg::Source`],
//! percentiles, and the resident memory of this process.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hotcfg::{Format, HotReload, Source, SourceContent, SourceError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Generated configurations: 10 leaves, 10 x 10, and 10 x 10 x 10.
pub mod fixtures {
    use super::*;

    /// What the benchmarks need of a generated configuration.
    pub trait Fixture: HotReload + Sized {
        /// Number of leaf fields.
        const LEAVES: usize;
        /// A value whose leaves depend on `seed`.
        fn sample(seed: u64) -> Self;
        /// Changes leaf number `index` (in field order, `0..LEAVES`).
        fn bump(&mut self, index: usize);
    }

    /// Ten leaves of the usual kinds, in two scopes: the innermost section.
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    #[reload(scope = "limits")]
    pub struct Leaf10 {
        pub max_concurrent: u64,
        pub queue_capacity: u64,
        pub timeout_ms: u32,
        pub enabled: bool,
        pub name: String,
        #[reload(scope = "loops")]
        pub interval_ms: u64,
        #[reload(scope = "loops")]
        pub retries: u16,
        #[reload(scope = "loops")]
        pub template: String,
        #[reload(scope = "loops")]
        pub ratio: f64,
        #[reload(scope = "loops")]
        pub max_iterations: u64,
    }

    impl Fixture for Leaf10 {
        const LEAVES: usize = 10;

        fn sample(seed: u64) -> Self {
            Leaf10 {
                max_concurrent: 4 + seed % 16,
                queue_capacity: 64 + seed,
                timeout_ms: 1_000 + (seed % 1_000) as u32,
                enabled: seed.is_multiple_of(2),
                name: format!("section-{seed}"),
                interval_ms: 250 + seed,
                retries: 3,
                template: format!("{{{{id}}}}: {{{{state}}}} ({seed})"),
                ratio: 0.5 + (seed % 10) as f64 / 100.0,
                max_iterations: 10_000 + seed,
            }
        }

        fn bump(&mut self, index: usize) {
            match index {
                0 => self.max_concurrent += 1,
                1 => self.queue_capacity += 1,
                2 => self.timeout_ms += 1,
                3 => self.enabled = !self.enabled,
                4 => self.name.push('x'),
                5 => self.interval_ms += 1,
                6 => self.retries += 1,
                7 => self.template.push('!'),
                8 => self.ratio += 1.0,
                9 => self.max_iterations += 1,
                _ => panic!("Leaf10 has 10 leaves, not {}", index + 1),
            }
        }
    }

    /// Defines a struct of ten nested `$child` sections.
    macro_rules! group {
        ($(#[$meta:meta])* $name:ident of $child:ident { $($index:literal => $field:ident),* $(,)? }) => {
            $(#[$meta])*
            #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
            pub struct $name {
                $(
                    #[reload(nested)]
                    pub $field: $child,
                )*
            }

            impl Fixture for $name {
                const LEAVES: usize = 10 * <$child as Fixture>::LEAVES;

                fn sample(seed: u64) -> Self {
                    $name {
                        $($field: <$child as Fixture>::sample(seed * 10 + $index),)*
                    }
                }

                fn bump(&mut self, index: usize) {
                    let per = <$child as Fixture>::LEAVES;
                    match index / per {
                        $($index => self.$field.bump(index % per),)*
                        _ => panic!("{} has {} leaves", stringify!($name), Self::LEAVES),
                    }
                }
            }
        };
    }

    group! {
        /// 100 leaves: ten sections of ten.
        Leaf100 of Leaf10 {
            0 => s0, 1 => s1, 2 => s2, 3 => s3, 4 => s4,
            5 => s5, 6 => s6, 7 => s7, 8 => s8, 9 => s9,
        }
    }

    group! {
        /// 1,000 leaves: ten groups of ten sections of ten.
        Leaf1000 of Leaf100 {
            0 => g0, 1 => g1, 2 => g2, 3 => g3, 4 => g4,
            5 => g5, 6 => g6, 7 => g7, 8 => g8, 9 => g9,
        }
    }

    /// `base` with `count` leaves changed, spread evenly over the fields and over the kinds of
    /// leaf (numbers, strings, booleans, floats).
    pub fn changed<C: Fixture>(base: &C, count: usize) -> C {
        let mut out = base.clone();
        if count == 0 {
            return out;
        }
        let stride = C::LEAVES / count;
        for k in 0..count {
            // Leaf `k % 10` of section `k * stride / 10`: a different kind each time.
            let section = (k * stride) / 10;
            out.bump((section * 10 + k % 10) % C::LEAVES);
        }
        out
    }

    /// The configuration as TOML text (nested sections become tables).
    pub fn toml_text<C: Serialize>(config: &C) -> String {
        toml::to_string(config).expect("fixtures serialize to TOML")
    }
}

/// The seed's approach to diffing: serialize both values to `serde_json::Value` and walk them,
/// collecting dotted paths into hash maps (`ConfigDiff` in the original design).
pub mod seed {
    use super::*;

    /// The seed's `ConfigDiff`, without the scope it derived from the paths afterwards.
    #[derive(Debug, Default, PartialEq)]
    pub struct ConfigDiff {
        pub added: HashMap<String, Value>,
        pub modified: HashMap<String, (Value, Value)>,
        pub removed: HashMap<String, Value>,
    }

    impl ConfigDiff {
        /// Number of changed paths.
        pub fn len(&self) -> usize {
            self.added.len() + self.modified.len() + self.removed.len()
        }

        /// `true` when nothing changed.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }
    }

    /// Diffs two values through `serde_json::Value`.
    ///
    /// A fair version of the seed's walk: it skips equal subtrees before building their paths,
    /// which the seed's pseudo-code did not spell out.
    pub fn value_diff<T: Serialize>(old: &T, new: &T) -> ConfigDiff {
        let old = serde_json::to_value(old).expect("serializable");
        let new = serde_json::to_value(new).expect("serializable");
        let mut out = ConfigDiff::default();
        walk("", &old, &new, &mut out);
        out
    }

    fn join(prefix: &str, key: &str) -> String {
        if prefix.is_empty() {
            key.to_string()
        } else {
            format!("{prefix}.{key}")
        }
    }

    fn walk(prefix: &str, old: &Value, new: &Value, out: &mut ConfigDiff) {
        match (old, new) {
            (Value::Object(old_map), Value::Object(new_map)) => {
                for (key, old_value) in old_map {
                    match new_map.get(key) {
                        Some(new_value) if new_value == old_value => {}
                        Some(new_value) => walk(&join(prefix, key), old_value, new_value, out),
                        None => {
                            out.removed.insert(join(prefix, key), old_value.clone());
                        }
                    }
                }
                for (key, new_value) in new_map {
                    if !old_map.contains_key(key) {
                        out.added.insert(join(prefix, key), new_value.clone());
                    }
                }
            }
            _ if old != new => {
                out.modified
                    .insert(prefix.to_string(), (old.clone(), new.clone()));
            }
            _ => {}
        }
    }
}

/// A [`Source`] serving TOML text from memory, alternating between versions on every read so
/// that each reload really changes something (unlike [`hotcfg::MemorySource`], which serves one
/// text until it is set).
#[derive(Debug)]
pub struct MemorySource {
    texts: Vec<String>,
    next: AtomicUsize,
}

impl MemorySource {
    /// Serves `texts` in turn, starting with the first.
    pub fn alternating(texts: Vec<String>) -> Self {
        assert!(!texts.is_empty());
        MemorySource {
            texts,
            next: AtomicUsize::new(0),
        }
    }
}

impl Source for MemorySource {
    fn read(&self) -> Result<SourceContent, SourceError> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) % self.texts.len();
        // Hashed on every read, as `FileSource` does: the engine's identity of a version.
        Ok(SourceContent::single(
            "memory.toml",
            Format::Toml,
            self.texts[index].clone(),
        ))
    }

    fn name(&self) -> String {
        "memory.toml".to_string()
    }
}

/// Percentiles of a set of latency samples (nearest rank on the sorted samples).
#[derive(Clone, Copy, Debug)]
pub struct Tails {
    pub samples: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub p999: Duration,
    pub p9999: Duration,
    pub max: Duration,
}

impl Tails {
    /// Sorts `nanos` and reads its percentiles.
    pub fn of(nanos: &mut [u64]) -> Tails {
        assert!(!nanos.is_empty());
        nanos.sort_unstable();
        let at = |q: f64| {
            let rank = ((q * nanos.len() as f64).ceil() as usize).clamp(1, nanos.len());
            Duration::from_nanos(nanos[rank - 1])
        };
        Tails {
            samples: nanos.len(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            p9999: at(0.9999),
            max: Duration::from_nanos(nanos[nanos.len() - 1]),
        }
    }
}

/// Runs every step once per round, in turn, and returns each step's median duration.
///
/// Interleaving keeps a ratio between steps honest on a busy machine: a burst of load from
/// elsewhere slows the rounds it falls on, for every step alike, and the median ignores it.
pub fn interleaved(rounds: usize, steps: &mut [(&str, &mut dyn FnMut())]) -> Vec<Duration> {
    assert!(rounds > 0);
    let mut nanos = vec![Vec::with_capacity(rounds); steps.len()];
    for _ in 0..rounds {
        for (step, (_, run)) in steps.iter_mut().enumerate() {
            let start = std::time::Instant::now();
            run();
            nanos[step].push(start.elapsed().as_nanos() as u64);
        }
    }
    nanos
        .iter_mut()
        .map(|samples| {
            samples.sort_unstable();
            Duration::from_nanos(samples[samples.len() / 2])
        })
        .collect()
}

/// One contender of an interleaved comparison: `batch` calls per round, so that a round of a
/// nanosecond operation is long enough to time.
pub struct Contender<'a> {
    /// Name printed in the table.
    pub name: &'a str,
    /// Calls per round (the median is divided by it).
    pub batch: u32,
    /// Runs `batch` calls.
    pub run: &'a mut dyn FnMut(),
}

impl std::fmt::Debug for Contender<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contender")
            .field("name", &self.name)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

/// Runs the contenders interleaved ([`interleaved`]) and prints a table of each one's median
/// time per call and its ratio to the contender at `reference`. Returns the medians per call,
/// in nanoseconds.
pub fn compare(
    title: &str,
    rounds: usize,
    reference: usize,
    contenders: &mut [Contender<'_>],
) -> Vec<f64> {
    let mut steps: Vec<(&str, &mut dyn FnMut())> = contenders
        .iter_mut()
        .map(|c| (c.name, &mut *c.run as &mut dyn FnMut()))
        .collect();
    let medians: Vec<f64> = interleaved(rounds, &mut steps)
        .into_iter()
        .zip(contenders.iter())
        .map(|(median, c)| median.as_secs_f64() * 1e9 / f64::from(c.batch))
        .collect();
    let base = medians[reference];
    println!();
    println!(
        "{title}: interleaved, {rounds} rounds, median per call, ratio to `{}`",
        contenders[reference].name
    );
    println!("| contender | median ns | ratio |");
    println!("|---|---:|---:|");
    for (c, median) in contenders.iter().zip(&medians) {
        println!("| {} | {median:.2} | {:.2}x |", c.name, median / base);
    }
    medians
}

/// A directory for audit logs on a RAM file system (`/dev/shm`), where `fdatasync` costs
/// nothing, when there is one; else the usual temporary directory.
pub fn ram_tempdir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temporary directory")
}

/// Resident set size of this process in bytes (`VmRSS` of `/proc/self/status`), if readable.
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Whether the bench binary was started by `cargo bench` (which passes `--bench`); under
/// `cargo test --benches` the custom measurements run a short smoke version instead.
pub fn benchmarking() -> bool {
    std::env::args().any(|a| a == "--bench")
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn fixtures_have_the_leaves_they_claim() {
        let base = Leaf1000::sample(1);
        assert_eq!(Leaf1000::schema().len(), Leaf1000::LEAVES);
        assert_eq!(Leaf100::schema().len(), 100);
        for count in [1, 10, 100] {
            let other = changed(&base, count);
            assert_eq!(base.diff(&other).len(), count);
            assert_eq!(seed::value_diff(&base, &other).len(), count);
        }
        assert!(seed::value_diff(&base, &base.clone()).is_empty());
        let text = fixtures::toml_text(&base);
        let back: Leaf1000 = toml::from_str(&text).unwrap();
        assert_eq!(back, base);
    }

    #[test]
    fn tails_use_nearest_rank() {
        let mut samples: Vec<u64> = (1..=1000).rev().collect();
        let tails = Tails::of(&mut samples);
        assert_eq!(tails.p50, Duration::from_nanos(500));
        assert_eq!(tails.p99, Duration::from_nanos(990));
        assert_eq!(tails.max, Duration::from_nanos(1000));
    }
}
