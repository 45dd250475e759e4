//! A durable submit of the task daemon: the job committed to its SQLite database
//! (`synchronous = FULL`, WAL) before the id is handed out, against an in-memory queue (the
//! daemon's own `WorkQueue`, what a submit cost before issue 12) as the ceiling.
//!
//! The daemon's storage module and queue are compiled in from `examples/taskdaemon`, so this
//! measures exactly the code the daemon runs, without the TCP round trip. The database lives in
//! Cargo's target directory (the real disk; `/tmp` may be a RAM file system elsewhere).
//!
//! * `store_submit/1`, `store_submit/4`: acknowledged submits from 1 and from 4 threads (clients),
//!   time per acknowledged submit (so throughput is its inverse).
//! * `memory_submit/1`, `memory_submit/4`: the same through the in-memory queue.
//!
//! Then each variant runs 2,000 submits per client with every latency recorded, and p50, p99 and
//! the throughput are printed side by side.
//!
//! `cargo bench -p hotcfg-benches --bench durable_submit`

#![allow(dead_code, missing_debug_implementations)]

#[path = "../../examples/taskdaemon/queue.rs"]
mod queue;
// Its unit tests compile here too (cfg(test) under `cargo test --benches`) but do not run.
#[path = "../../examples/taskdaemon/store/mod.rs"]
#[allow(unused_imports)]
mod store;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::Criterion;
use hotcfg_benches::{benchmarking, Tails};
use queue::{WorkItem, WorkQueue};
use store::Store;

/// One way to acknowledge a submit.
trait Submit: Send + Sync + 'static {
    fn submit(&self, n: u64);
}

impl Submit for Store {
    fn submit(&self, _n: u64) {
        Store::submit(self, "build").expect("the store accepts the submit");
    }
}

/// The queue before issue 12: check room, push, acknowledge. Replaced by an empty one every
/// 10,000 items so that millions of iterations do not grow it without bound (its own `close`
/// drains it but refuses further submits).
struct Memory(std::sync::RwLock<WorkQueue>);

impl Submit for Memory {
    fn submit(&self, n: u64) {
        let full = {
            let queue = self.0.read().unwrap();
            queue.room().expect("room in the queue");
            queue.restore(vec![WorkItem {
                id: n,
                loop_type: "build".to_string(),
                done: 0,
            }]);
            queue.len() > 10_000
        };
        if full {
            *self.0.write().unwrap() = WorkQueue::new(usize::MAX);
        }
    }
}

/// Runs `per_client` submits on each of `clients` threads; returns every latency (ns) and the
/// wall time.
fn run(target: &Arc<dyn Submit>, clients: usize, per_client: u64) -> (Vec<u64>, Duration) {
    let start_line = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (target, start_line) = (Arc::clone(target), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                (0..per_client)
                    .map(|n| {
                        let began = Instant::now();
                        target.submit(c as u64 * per_client + n);
                        began.elapsed().as_nanos() as u64
                    })
                    .collect::<Vec<u64>>()
            })
        })
        .collect();
    start_line.wait();
    let began = Instant::now();
    let latencies = threads
        .into_iter()
        .flat_map(|t| t.join().expect("a client thread"))
        .collect();
    (latencies, began.elapsed())
}

fn targets(dir: &std::path::Path) -> Vec<(&'static str, Arc<dyn Submit>)> {
    let store = Store::open(dir).expect("open the store");
    vec![
        ("store_submit", Arc::new(store)),
        (
            "memory_submit",
            Arc::new(Memory(std::sync::RwLock::new(WorkQueue::new(usize::MAX)))),
        ),
    ]
}

fn main() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("a directory on disk");
    let targets = targets(dir.path());
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .configure_from_args();
    for (name, target) in &targets {
        let mut group = criterion.benchmark_group(*name);
        for clients in [1, 4] {
            group.bench_function(clients.to_string(), |b| {
                b.iter_custom(|iters| {
                    let per_client = iters.div_ceil(clients as u64);
                    let (_, wall) = run(target, clients, per_client);
                    wall.mul_f64(iters as f64 / (per_client * clients as u64) as f64)
                })
            });
        }
        group.finish();
    }
    criterion.final_summary();

    let per_client = if benchmarking() { 2000 } else { 20 };
    println!("\nside by side, {per_client} submits per client, every latency recorded:");
    println!("| submit | clients | p50 | p99 | worst | acknowledged/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, target) in &targets {
        for clients in [1, 4] {
            let (mut nanos, wall) = run(target, clients, per_client);
            let count = nanos.len();
            let tails = Tails::of(&mut nanos);
            println!(
                "| {name} | {clients} | {:?} | {:?} | {:?} | {:.0} |",
                tails.p50,
                tails.p99,
                tails.max,
                count as f64 / wall.as_secs_f64()
            );
        }
    }
}
