//! The read path: `Handle::load`, a projection and `Handle::snapshot` against
//! `std::sync::RwLock<Arc<C>>` (read + clone), `tokio::sync::RwLock<C>` (the seed's design, read
//! with `blocking_read` from a plain thread; `try_read` shown uncontended for reference) and a
//! plain `Arc<C>` clone (the floor), uncontended and while a writer thread stores new versions
//! continuously. Every read takes the current version and reads one field of one section.
//!
//! One writer serves every contender at once: it runs a full hotcfg reload (in-memory source, two
//! alternating versions), which stores into the handle, then publishes the same version into the
//! std and the tokio lock (cloned outside the lock, the old value dropped outside it). So every
//! reader sees stores at the same pace, as fast as reloads run: a few thousand a second for the
//! 100-field configuration, tens of thousands for the 10-field one.
//!
//! Three measurements:
//! 1. criterion, 100 fields, each reader alone, writer off then on;
//! 2. interleaved batches, 100 and 10 fields: 1,000 reads of each reader in turn, many rounds,
//!    the median batch per reader: the ratios that hold while other processes load the machine;
//! 3. latency tails from single timed reads, 100 and 10 fields (p50 ... p99.99, the worst read,
//!    and how many reads took over 1 µs and over 10 µs), which criterion cannot show.
//!
//! `cargo bench -p hotcfg-benches --bench read_path`

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hotcfg::{Handle, Projection, Reloader};
use hotcfg_benches::fixtures::{changed, toml_text, Fixture, Leaf10, Leaf100};
use hotcfg_benches::{benchmarking, MemorySource, Tails};
use serde::de::DeserializeOwned;

/// A configuration the readers read: the section they read one field of.
trait Config: Fixture + DeserializeOwned + Send + Sync {
    fn section(&self) -> &Leaf10;
}

impl Config for Leaf10 {
    fn section(&self) -> &Leaf10 {
        self
    }
}

impl Config for Leaf100 {
    fn section(&self) -> &Leaf10 {
        &self.s3
    }
}

/// Everything a reader can read from, all holding the same configuration.
struct Readers<C: Config> {
    reloader: Reloader<C>,
    handle: Handle<C>,
    projection: Projection<C, Leaf10>,
    std_lock: Arc<RwLock<Arc<C>>>,
    tokio_lock: Arc<tokio::sync::RwLock<C>>,
    arc: Arc<C>,
}

impl<C: Config> Readers<C> {
    fn new() -> Readers<C> {
        let base = C::sample(3);
        let next = changed(&base, 1);
        let source = MemorySource::alternating(vec![toml_text(&base), toml_text(&next)]);
        let reloader = Reloader::<C>::builder(source)
            .on_apply("limits", |_| Ok(()))
            .on_apply("loops", |_| Ok(()))
            .build()
            .expect("the fixture loads");
        let handle = reloader.handle();
        let projection = handle.project(C::section);
        Readers {
            std_lock: Arc::new(RwLock::new(Arc::new(base.clone()))),
            tokio_lock: Arc::new(tokio::sync::RwLock::new(base.clone())),
            arc: Arc::new(base),
            projection,
            handle,
            reloader,
        }
    }
}

/// A thread storing new versions into every contender as fast as reloads run, until dropped.
struct Writer {
    stop: Arc<AtomicBool>,
    stores: Arc<AtomicU64>,
    started: Instant,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn start<C: Config>(readers: &Readers<C>) -> Writer {
        let started = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let stores = Arc::new(AtomicU64::new(0));
        let reloader = readers.reloader.clone();
        let std_lock = Arc::clone(&readers.std_lock);
        let tokio_lock = Arc::clone(&readers.tokio_lock);
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            let stores = Arc::clone(&stores);
            move || {
                let handle = reloader.handle();
                while !stop.load(Ordering::Relaxed) {
                    let event = reloader.reload_now();
                    assert!(event.result.is_ok(), "{:?}", event.result);
                    let live = handle.snapshot();
                    let new = Arc::new(live.config().clone());
                    let old = std::mem::replace(&mut *std_lock.write().unwrap(), new);
                    drop(old);
                    let new = live.config().clone();
                    let old = std::mem::replace(&mut *tokio_lock.blocking_write(), new);
                    drop(old);
                    stores.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        // Let it get going before anything is measured.
        std::thread::sleep(Duration::from_millis(20));
        Writer {
            stop,
            stores,
            started,
            thread: Some(thread),
        }
    }

    /// Stores per second so far.
    fn rate(&self) -> f64 {
        self.stores.load(Ordering::Relaxed) as f64 / self.started.elapsed().as_secs_f64()
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().expect("the writer thread");
        }
    }
}

/// One read of each kind: take the version, read a field through it, release it.
mod read {
    use super::*;

    #[inline(always)]
    pub fn hotcfg_load<C: Config>(r: &Readers<C>) -> u64 {
        let guard = r.handle.load();
        black_box(guard.section().max_concurrent)
    }

    #[inline(always)]
    pub fn hotcfg_projection<C: Config>(r: &Readers<C>) -> u64 {
        let guard = r.projection.load();
        black_box(guard.max_concurrent)
    }

    #[inline(always)]
    pub fn hotcfg_snapshot<C: Config>(r: &Readers<C>) -> u64 {
        let snapshot = r.handle.snapshot();
        black_box(snapshot.section().max_concurrent)
    }

    #[inline(always)]
    pub fn std_rwlock_arc<C: Config>(r: &Readers<C>) -> u64 {
        let config = Arc::clone(&r.std_lock.read().unwrap());
        black_box(config.section().max_concurrent)
    }

    #[inline(always)]
    pub fn tokio_blocking_read<C: Config>(r: &Readers<C>) -> u64 {
        let guard = r.tokio_lock.blocking_read();
        black_box(guard.section().max_concurrent)
    }

    #[inline(always)]
    pub fn tokio_try_read<C: Config>(r: &Readers<C>) -> u64 {
        let guard = r.tokio_lock.try_read().expect("uncontended");
        black_box(guard.section().max_concurrent)
    }

    #[inline(always)]
    pub fn arc_clone<C: Config>(r: &Readers<C>) -> u64 {
        let config = Arc::clone(&r.arc);
        black_box(config.section().max_concurrent)
    }
}

type ReadFn<C> = fn(&Readers<C>) -> u64;

/// Every reader that can run with or without the writer (`try_read` would fail while it stores).
fn contenders<C: Config>(writer: bool) -> Vec<(&'static str, ReadFn<C>)> {
    let mut all: Vec<(&'static str, ReadFn<C>)> = vec![
        ("hotcfg_load", read::hotcfg_load::<C>),
        ("hotcfg_projection", read::hotcfg_projection::<C>),
        ("hotcfg_snapshot", read::hotcfg_snapshot::<C>),
        ("std_rwlock_arc", read::std_rwlock_arc::<C>),
        ("tokio_rwlock_blocking_read", read::tokio_blocking_read::<C>),
        ("tokio_rwlock_try_read", read::tokio_try_read::<C>),
        ("arc_clone", read::arc_clone::<C>),
    ];
    if writer {
        all.retain(|(name, _)| *name != "tokio_rwlock_try_read");
    }
    all
}

fn criterion_benches<C: Config>(c: &mut Criterion, readers: &Readers<C>) {
    let mut group = c.benchmark_group("read/uncontended");
    for (name, read) in contenders::<C>(false) {
        group.bench_function(name, |b| b.iter(|| read(readers)));
    }
    group.finish();

    let writer = Writer::start(readers);
    let mut group = c.benchmark_group("read/writer_storing");
    for (name, read) in contenders::<C>(true) {
        group.bench_function(name, |b| b.iter(|| read(readers)));
    }
    group.finish();
    println!(
        "writer during read/writer_storing: {:.0} stores/s",
        writer.rate()
    );
}

/// Median nanoseconds per read of each reader, from batches of reads interleaved across readers.
fn interleaved_batches<C: Config>(
    readers: &Readers<C>,
    writer: bool,
    rounds: usize,
) -> Vec<(&'static str, f64)> {
    const BATCH: u32 = 1_000;
    let list = contenders::<C>(writer);
    let mut nanos = vec![Vec::with_capacity(rounds); list.len()];
    for _ in 0..rounds {
        for (i, (_, read)) in list.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..BATCH {
                black_box(read(readers));
            }
            nanos[i].push(start.elapsed().as_nanos() as f64 / f64::from(BATCH));
        }
    }
    list.iter()
        .zip(nanos.iter_mut())
        .map(|((name, _), samples)| {
            samples.sort_unstable_by(f64::total_cmp);
            (*name, samples[samples.len() / 2])
        })
        .collect()
}

fn interleaved_report<C: Config>(readers: &Readers<C>) {
    let rounds = if benchmarking() { 2_000 } else { 10 };
    let off = interleaved_batches(readers, false, rounds);
    let writer = Writer::start(readers);
    let on = interleaved_batches(readers, true, rounds);
    let rate = writer.rate();
    drop(writer);
    let get = |rows: &[(&str, f64)], name: &str| {
        rows.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, ns)| *ns)
            .unwrap_or(f64::NAN)
    };
    println!();
    println!(
        "Interleaved, {} fields: {rounds} rounds of 1,000 reads per reader, median ns/read; writer {rate:.0} stores/s.",
        C::LEAVES
    );
    println!("| reader                     | writer off | vs arc_clone | writer on | vs arc_clone | tokio blocking_read / this, writer on |");
    println!("|----------------------------|------------|--------------|-----------|--------------|---------------------------------------|");
    let (arc_off, arc_on) = (get(&off, "arc_clone"), get(&on, "arc_clone"));
    let tokio_on = get(&on, "tokio_rwlock_blocking_read");
    for (name, ns_off) in &off {
        let ns_on = get(&on, name);
        println!(
            "| {name:<26} | {ns_off:>10.2} | {:>11.2}x | {ns_on:>9.2} | {:>11.2}x | {:>36.1}x |",
            ns_off / arc_off,
            ns_on / arc_on,
            tokio_on / ns_on,
        );
    }
}

/// Times `samples` single reads with `Instant`.
fn tails<C: Config>(
    readers: &Readers<C>,
    read: ReadFn<C>,
    samples: usize,
) -> (Tails, usize, usize) {
    let mut nanos = Vec::with_capacity(samples);
    for _ in 0..samples / 10 {
        black_box(read(readers));
    }
    for _ in 0..samples {
        let start = Instant::now();
        black_box(read(readers));
        nanos.push(start.elapsed().as_nanos() as u64);
    }
    let over_1us = nanos.iter().filter(|&&n| n > 1_000).count();
    let over_10us = nanos.iter().filter(|&&n| n > 10_000).count();
    (Tails::of(&mut nanos), over_1us, over_10us)
}

fn print_tails(name: &str, writer: &str, (t, over_1us, over_10us): (Tails, usize, usize)) {
    println!(
        "| {name:<26} | {writer:<7} | {:>6.0?} | {:>6.0?} | {:>7.0?} | {:>7.0?} | {:>9.1?} | {over_1us:>7} | {over_10us:>8} |",
        t.p50, t.p99, t.p999, t.p9999, t.max
    );
}

fn tail_report<C: Config>(readers: &Readers<C>) {
    let samples = if benchmarking() { 2_000_000 } else { 10_000 };
    let nothing: ReadFn<C> = |_| 0;
    let with_timer = |writer| {
        let mut list = vec![("timer (empty read)", nothing)];
        list.extend(contenders::<C>(writer));
        list
    };
    let mut rows = Vec::new();
    for (name, read) in with_timer(false) {
        rows.push((name, "off", tails(readers, read, samples)));
    }
    let writer = Writer::start(readers);
    for (name, read) in with_timer(true) {
        rows.push((name, "storing", tails(readers, read, samples)));
    }
    let rate = writer.rate();
    drop(writer);
    println!();
    println!(
        "Reader latency, {} fields: {samples} single timed reads per row (Instant before and after each); writer {rate:.0} stores/s.",
        C::LEAVES
    );
    println!(
        "| reader                     | writer  |    p50 |    p99 |   p99.9 |  p99.99 |     worst | > 1 µs  | > 10 µs  |"
    );
    println!(
        "|----------------------------|---------|--------|--------|---------|---------|-----------|---------|----------|"
    );
    for (name, writer, measured) in rows {
        print_tails(name, writer, measured);
    }
}

fn main() {
    let readers = Readers::<Leaf100>::new();
    let small = Readers::<Leaf10>::new();
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(50)
        .configure_from_args();
    criterion_benches(&mut criterion, &readers);
    criterion.final_summary();
    interleaved_report(&readers);
    interleaved_report(&small);
    tail_report(&readers);
    tail_report(&small);
}
