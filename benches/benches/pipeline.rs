//! A whole reload without the file system, against the figment extraction a user would do anyway.
//!
//! The source serves TOML text from memory, alternating between two versions that differ in one
//! leaf, so every reload really applies: read (and hash), parse through figment, validate, diff,
//! plan, handlers that do nothing (two scopes), one atomic store, then record (history, metrics,
//! and a hash-chained audit log in a temporary file, written and `fdatasync`ed per reload).
//!
//! * `figment_extract`: `Figment::from(Toml::string(text)).extract::<C>()`, the baseline.
//! * `hotcfg_parse`: hotcfg's own parse step alone (`Loader::parse`).
//! * `parse_unknown_ok` (interleaved report only): the same with unknown keys allowed
//!   (`Loader::allow_unknown_keys`); the difference to `hotcfg_parse` is the unknown-key check.
//! * `reload_audit_file`: the whole reload, history on, audit log in a temporary file on disk.
//! * `reload_audit_ram`: the same with the audit log on a RAM file system (`/dev/shm`), so the
//!   `fdatasync` costs nothing: the CPU cost of auditing.
//! * `reload_audit_os`: the audit log on disk with `AuditSync::Os` (written, not synced).
//! * `reload_no_audit`: the same without the audit log.
//! * `reload_unchanged`: a trigger whose bytes did not change (skipped by hash; no audit log).
//!
//! Criterion reports each alone; then every step runs once per round, interleaved, and the
//! medians and their ratio to `figment_extract` are printed: the ratio that holds on a busy
//! machine.
//!
//! `cargo bench -p hotcfg-benches --bench pipeline`

use std::cell::Cell;
use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use figment::providers::{Format as _, Toml};
use figment::Figment;
use hotcfg::{AuditSync, Loader, ReloadResult, Reloader, Source, Violations};
use hotcfg_benches::fixtures::{changed, toml_text, Fixture, Leaf10, Leaf1000};
use hotcfg_benches::{benchmarking, interleaved, ram_tempdir, MemorySource};
use serde::de::DeserializeOwned;

/// The validation a user would write: every section's limits are consistent.
trait Checked {
    fn check(&self, v: &mut Violations);
}

impl Checked for Leaf10 {
    fn check(&self, v: &mut Violations) {
        v.check(self.max_concurrent >= 1, "max_concurrent", "at least 1");
        v.check(
            self.queue_capacity >= self.max_concurrent,
            "queue_capacity",
            "at least max_concurrent",
        );
    }
}

impl Checked for Leaf1000 {
    fn check(&self, v: &mut Violations) {
        for group in [
            &self.g0, &self.g1, &self.g2, &self.g3, &self.g4, &self.g5, &self.g6, &self.g7,
            &self.g8, &self.g9,
        ] {
            for section in [
                &group.s0, &group.s1, &group.s2, &group.s3, &group.s4, &group.s5, &group.s6,
                &group.s7, &group.s8, &group.s9,
            ] {
                section.check(v);
            }
        }
    }
}

fn reloader<C>(
    texts: &[String],
    audit: Option<(&std::path::Path, hotcfg::AuditSync)>,
) -> Reloader<C>
where
    C: Fixture + Checked + DeserializeOwned + Send + Sync,
{
    let mut builder = Reloader::<C>::builder(MemorySource::alternating(texts.to_vec()))
        .validator(|c: &C, v| c.check(v))
        .on_apply("limits", |_| Ok(()))
        .on_apply("loops", |_| Ok(()));
    if let Some((path, sync)) = audit {
        builder = builder.audit_log(path).audit_sync(sync);
    }
    let reloader = builder.build().expect("the fixture loads");
    if texts.len() > 1 {
        for _ in 0..2 {
            let event = reloader.reload_now();
            assert!(
                matches!(&event.result, ReloadResult::Applied { applied, .. } if !applied.is_empty()),
                "every reload applies: {:?}",
                event.result
            );
        }
    }
    reloader
}

/// What one size of configuration is measured with.
struct Setup<C: Fixture> {
    texts: Vec<String>,
    contents: Vec<hotcfg::SourceContent>,
    loader: Loader<C>,
    lenient: Loader<C>,
    audited: Reloader<C>,
    audited_ram: Reloader<C>,
    audited_os: Reloader<C>,
    plain: Reloader<C>,
    unchanged: Reloader<C>,
    // Removed (with the audit logs) when the setup is dropped.
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl<C> Setup<C>
where
    C: Fixture + Checked + DeserializeOwned + Send + Sync,
{
    fn new() -> Self {
        let base = C::sample(11);
        let texts = vec![toml_text(&base), toml_text(&changed(&base, 1))];
        let source = MemorySource::alternating(texts.clone());
        let contents = vec![source.read().unwrap(), source.read().unwrap()];
        let disk = tempfile::tempdir().expect("a temporary directory");
        let ram = ram_tempdir();
        Setup {
            contents,
            loader: Loader::new(),
            lenient: Loader::new().allow_unknown_keys(),
            audited: reloader(
                &texts,
                Some((&disk.path().join("audit.jsonl"), AuditSync::Data)),
            ),
            audited_ram: reloader(
                &texts,
                Some((&ram.path().join("audit.jsonl"), AuditSync::Data)),
            ),
            audited_os: reloader(&texts, Some((&disk.path().join("os.jsonl"), AuditSync::Os))),
            plain: reloader(&texts, None),
            unchanged: reloader(&texts[..1], None),
            texts,
            _dirs: (disk, ram),
        }
    }

    fn figment_extract(&self, turn: usize) -> C {
        Figment::from(Toml::string(&self.texts[turn % 2]))
            .extract::<C>()
            .expect("valid")
    }

    fn hotcfg_parse(&self, turn: usize) -> C {
        self.loader.parse(&self.contents[turn % 2]).expect("valid")
    }
}

fn bench_size<C>(c: &mut Criterion, setup: &Setup<C>)
where
    C: Fixture + Checked + DeserializeOwned + Send + Sync,
{
    let mut group = c.benchmark_group(format!("pipeline/{}_fields", C::LEAVES));
    let turn = Cell::new(0usize);
    let next = || {
        turn.set(turn.get() + 1);
        turn.get()
    };
    group.bench_function("figment_extract", |b| {
        b.iter(|| setup.figment_extract(next()))
    });
    group.bench_function("hotcfg_parse", |b| b.iter(|| setup.hotcfg_parse(next())));
    group.bench_function("reload_audit_file", |b| {
        b.iter(|| black_box(setup.audited.reload_now()))
    });
    group.bench_function("reload_audit_ram", |b| {
        b.iter(|| black_box(setup.audited_ram.reload_now()))
    });
    group.bench_function("reload_audit_os", |b| {
        b.iter(|| black_box(setup.audited_os.reload_now()))
    });
    group.bench_function("reload_no_audit", |b| {
        b.iter(|| black_box(setup.plain.reload_now()))
    });
    group.bench_function("reload_unchanged", |b| {
        b.iter(|| black_box(setup.unchanged.reload_now()))
    });
    group.finish();
}

/// Medians of interleaved runs, with the ratio of each to the bare figment extraction.
fn interleaved_report<C>(setup: &Setup<C>, rounds: usize)
where
    C: Fixture + Checked + DeserializeOwned + Send + Sync,
{
    let turn = Cell::new(0usize);
    let names = [
        "figment_extract",
        "hotcfg_parse",
        "reload_no_audit",
        "reload_audit_ram",
        "reload_audit_file",
        "reload_audit_os",
        "parse_unknown_ok",
    ];
    let medians = {
        let mut figment = || {
            turn.set(turn.get() + 1);
            black_box(setup.figment_extract(turn.get()));
        };
        let mut parse = || {
            black_box(setup.hotcfg_parse(turn.get()));
        };
        let mut plain = || {
            black_box(setup.plain.reload_now());
        };
        let mut ram = || {
            black_box(setup.audited_ram.reload_now());
        };
        let mut disk = || {
            black_box(setup.audited.reload_now());
        };
        let mut os = || {
            black_box(setup.audited_os.reload_now());
        };
        let mut lenient = || {
            let content = &setup.contents[turn.get() % 2];
            black_box(setup.lenient.parse(content).expect("valid"));
        };
        interleaved(
            rounds,
            &mut [
                (names[0], &mut figment),
                (names[1], &mut parse),
                (names[2], &mut plain),
                (names[3], &mut ram),
                (names[4], &mut disk),
                (names[5], &mut os),
                (names[6], &mut lenient),
            ],
        )
    };
    println!();
    println!(
        "Interleaved, {} fields, {rounds} rounds (median of each step; ratio to figment_extract):",
        C::LEAVES
    );
    println!("| step                 | median µs | vs figment |");
    println!("|----------------------|-----------|------------|");
    let row = |name: &str, median: Duration| {
        println!(
            "| {name:<20} | {:>9.1} | {:>9.2}x |",
            median.as_secs_f64() * 1e6,
            median.as_secs_f64() / medians[0].as_secs_f64()
        );
    };
    for (name, median) in names.iter().zip(&medians) {
        row(name, *median);
    }
    // What the engine adds to hotcfg's own parse: read and hash, validate, diff, plan,
    // handlers, store, history, metrics.
    row(
        "engine without parse",
        medians[2].saturating_sub(medians[1]),
    );
}

fn main() {
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let large = Setup::<Leaf1000>::new();
    let small = Setup::<Leaf10>::new();
    bench_size(&mut criterion, &large);
    bench_size(&mut criterion, &small);
    criterion.final_summary();
    let (large_rounds, small_rounds) = if benchmarking() { (300, 1000) } else { (3, 3) };
    interleaved_report(&large, large_rounds);
    interleaved_report(&small, small_rounds);
}
