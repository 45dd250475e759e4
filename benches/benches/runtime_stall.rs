//! Runtime stall (issue 15): the largest gap of a 1 ms ticker on a `current_thread` tokio runtime
//! while reloads with a 20 ms handler run, by the way the service calls the engine.
//!
//! * `blocking_call`: a sync handler (20 ms `std::thread::sleep`), `reload_now()` called straight
//!   from an async task: the runtime's only thread waits for the reload.
//! * `spawn_blocking`: the same sync handler, `spawn_blocking(move || reloader.reload_now())`.
//! * `async_api`: an async handler (20 ms `tokio::time::sleep`), `reloader.reload().await`.
//!
//! The quantity is not a duration of work but the ticker's largest gap during one reload: each
//! criterion iteration is one reload and reports that gap, so criterion's "time" is the mean
//! largest gap per reload. Then each contender runs 100 reloads, interleaved, and the largest gap
//! over all of them is printed (the figure; target: at most 5 ms for `async_api`).
//!
//! `cargo bench -p hotcfg-benches --bench runtime_stall`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use hotcfg::{Format, HotReload, MemorySource, Reloader};
use hotcfg_benches::benchmarking;
use tokio::runtime::Runtime;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
struct Config {
    #[reload(scope = "pool")]
    workers: u32,
}

const HANDLER: Duration = Duration::from_millis(20);

/// The ticker's largest gap since the last reset, in nanoseconds; `last` is the last tick.
#[derive(Default)]
struct Gaps {
    origin: std::sync::OnceLock<Instant>,
    last: AtomicU64,
    largest: AtomicU64,
}

impl Gaps {
    fn now(&self) -> u64 {
        self.origin.get_or_init(Instant::now).elapsed().as_nanos() as u64
    }
    fn tick(&self) {
        let now = self.now();
        let gap = now.saturating_sub(self.last.swap(now, Ordering::SeqCst));
        self.largest.fetch_max(gap, Ordering::SeqCst);
    }
    fn reset(&self) {
        self.last.store(self.now(), Ordering::SeqCst);
        self.largest.store(0, Ordering::SeqCst);
    }
    fn largest(&self) -> Duration {
        Duration::from_nanos(self.largest.load(Ordering::SeqCst))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Way {
    BlockingCall,
    SpawnBlocking,
    AsyncApi,
}

impl Way {
    fn name(self) -> &'static str {
        match self {
            Way::BlockingCall => "blocking_call",
            Way::SpawnBlocking => "spawn_blocking",
            Way::AsyncApi => "async_api",
        }
    }
}

/// One contender: its engine, its source, and which version comes next.
struct Contender {
    way: Way,
    reloader: Reloader<Config>,
    source: MemorySource,
    next: u32,
}

impl Contender {
    fn new(runtime: &Runtime, way: Way) -> Self {
        let source = MemorySource::new("app.toml", Format::Toml, "workers = 0");
        let builder = Reloader::<Config>::builder(source.clone());
        let reloader = if way == Way::AsyncApi {
            let builder = builder.on_apply_async("pool", |_| {
                Box::pin(async {
                    tokio::time::sleep(HANDLER).await;
                    Ok(())
                })
            });
            runtime.block_on(builder.build_async())
        } else {
            builder
                .on_apply("pool", |_| {
                    std::thread::sleep(HANDLER);
                    Ok(())
                })
                .build()
        };
        Contender {
            way,
            reloader: reloader.expect("the bench's engine"),
            source,
            next: 1,
        }
    }

    /// One reload that applies, the way this contender calls it.
    async fn reload(&mut self) {
        self.source.set(format!("workers = {}", self.next));
        self.next += 1;
        let event = match self.way {
            Way::BlockingCall => self.reloader.reload_now(),
            Way::SpawnBlocking => {
                let reloader = self.reloader.clone();
                tokio::task::spawn_blocking(move || reloader.reload_now())
                    .await
                    .expect("the blocking reload")
            }
            Way::AsyncApi => self.reloader.reload().await,
        };
        assert!(event.result.is_ok(), "{event}");
    }

    /// The ticker's largest gap during one reload.
    async fn gap_of_one_reload(&mut self, gaps: &Gaps) -> Duration {
        // Let the ticker run first, so that a gap before the reload is not counted.
        tokio::time::sleep(Duration::from_millis(2)).await;
        gaps.reset();
        self.reload().await;
        // And after: a stalled ticker only sees its gap when it runs again.
        tokio::time::sleep(Duration::from_millis(2)).await;
        gaps.largest()
    }
}

/// Starts the 1 ms ticker on `runtime` (it runs whenever the runtime runs).
fn ticker(runtime: &Runtime) -> Arc<Gaps> {
    let gaps = Arc::new(Gaps::default());
    let ticking = Arc::clone(&gaps);
    runtime.spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(1));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            ticking.tick();
        }
    });
    gaps
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let gaps = ticker(&runtime);
    let mut contenders: Vec<Contender> = [Way::BlockingCall, Way::SpawnBlocking, Way::AsyncApi]
        .into_iter()
        .map(|way| Contender::new(&runtime, way))
        .collect();

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
        .configure_from_args();
    let mut group = criterion.benchmark_group("runtime_stall");
    for contender in &mut contenders {
        group.bench_function(contender.way.name(), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        total += contender.gap_of_one_reload(&gaps).await;
                    }
                    total
                })
            })
        });
    }
    group.finish();
    criterion.final_summary();

    let reloads = if benchmarking() { 100 } else { 3 };
    let mut largest = vec![Duration::ZERO; contenders.len()];
    runtime.block_on(async {
        for _ in 0..reloads {
            for (i, contender) in contenders.iter_mut().enumerate() {
                largest[i] = largest[i].max(contender.gap_of_one_reload(&gaps).await);
            }
        }
    });
    println!(
        "\nlargest gap of a 1 ms ticker over {reloads} reloads each (20 ms handler, interleaved):"
    );
    for (contender, gap) in contenders.iter().zip(&largest) {
        println!(
            "  {:<15} {:>8.2} ms",
            contender.way.name(),
            gap.as_secs_f64() * 1e3
        );
    }
}
