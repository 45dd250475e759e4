//! The derived diff against the seed's `serde_json::Value` diff, on configurations of 10, 100
//! and 1,000 leaf fields, with no change, one change and 10% of the leaves changed.
//!
//! `cargo bench -p hotcfg-benches --bench diff`

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hotcfg_benches::fixtures::{changed, Fixture, Leaf10, Leaf100, Leaf1000};
use hotcfg_benches::seed::value_diff;

fn bench_size<C: Fixture>(c: &mut Criterion) {
    let mut group = c.benchmark_group(format!("diff/{}_fields", C::LEAVES));
    let base = C::sample(7);
    let cases = [
        ("no_change", 0),
        ("one_change", 1),
        ("ten_percent", C::LEAVES / 10),
    ];
    for (name, count) in cases {
        let other = changed(&base, count);
        assert_eq!(base.diff(&other).len(), count);
        assert_eq!(value_diff(&base, &other).len(), count);
        group.bench_with_input(BenchmarkId::new("derived", name), &other, |b, other| {
            b.iter(|| black_box(&base).diff(black_box(other)))
        });
        group.bench_with_input(BenchmarkId::new("value_diff", name), &other, |b, other| {
            b.iter(|| value_diff(black_box(&base), black_box(other)))
        });
    }
    group.finish();
}

fn diffs(c: &mut Criterion) {
    bench_size::<Leaf10>(c);
    bench_size::<Leaf100>(c);
    bench_size::<Leaf1000>(c);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50);
    targets = diffs
}
criterion_main!(benches);
