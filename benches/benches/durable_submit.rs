//! A durable submit of the task daemon: the job committed to its SQLite database
//! (`synchronous = FULL`, WAL, group commit) before the id is handed out, against an in-memory
//! queue (the daemon's own `WorkQueue`, what a submit cost before issue 12) as the ceiling, and
//! against the disk's own floor: one page written and `fdatasync`ed per submit, nothing else
//! (`fsync_alone`, serialised, as commits without grouping would be).
//!
//! The daemon's storage module and queue are compiled in from `examples/taskdaemon`, so this
//! measures exactly the code the daemon runs, without the TCP round trip. The database lives in
//! Cargo's target directory (the real disk; `/tmp` may be a RAM file system elsewhere).
//!
//! * `store_submit/1`, `store_submit/4`: acknowledged submits from 1 and from 4 threads (clients),
//!   time per acknowledged submit (so throughput is its inverse).
//! * `store_submit_checkpoint_in_commit/1`, `/4`: the same with the log checkpointed as before
//!   the checkpoint thread, by SQLite inside the commit that crosses 1,000 pages.
//! * `memory_submit/1`, `memory_submit/4`: the same through the in-memory queue.
//! * `fsync_alone/1`, `fsync_alone/4`: a 4 KiB page written into a preallocated file and
//!   `sync_data`, one at a time under a lock.
//!
//! Then each variant runs 2,000 submits per client with every latency recorded, and p50, p99 and
//! the throughput are printed side by side.
//!
//! `cargo bench -p hotcfg-benches --bench durable_submit` (`DURABLE_SUBMIT_DIR=DIR` puts the
//! database and the probe file in DIR instead)

#![allow(dead_code, missing_debug_implementations)]

#[path = "../../examples/taskdaemon/queue.rs"]
mod queue;
#[path = "../../examples/taskdaemon/users.rs"]
#[allow(unused_imports)]
mod users;
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

/// The queue before issue 12 (with today's claim on the loop type): check room, push,
/// acknowledge. Replaced by an empty one every 10,000 items so that millions of iterations do
/// not grow it without bound (its own `close` drains it but refuses further submits).
struct Memory(std::sync::RwLock<WorkQueue>, Arc<users::TypeUsers>);

impl Submit for Memory {
    fn submit(&self, n: u64) {
        let full = {
            let queue = self.0.read().unwrap();
            let claim = self
                .1
                .claim_new("build", || true)
                .expect("build is defined");
            queue.reserve().expect("room in the queue").fill(WorkItem {
                id: n,
                claim,
                done: 0,
            });
            queue.len() > 10_000
        };
        if full {
            *self.0.write().unwrap() = WorkQueue::new(usize::MAX);
        }
    }
}

/// The disk's floor: what a WAL commit needs at least, one 4 KiB page written into a file
/// that already has room (as SQLite reuses its WAL after a checkpoint) and `fdatasync`, one at a
/// time. The file is 4 MiB (SQLite's default WAL size before a checkpoint), written round.
struct FsyncAlone(std::sync::Mutex<(std::fs::File, u64)>);

const PROBE_PAGE: u64 = 4096;
const PROBE_PAGES: u64 = 1024;

impl FsyncAlone {
    fn create(path: &std::path::Path) -> FsyncAlone {
        use std::io::Write;
        let mut file = std::fs::File::create(path).expect("create the fsync probe file");
        file.write_all(&vec![0; (PROBE_PAGE * PROBE_PAGES) as usize])
            .and_then(|()| file.sync_all())
            .expect("preallocate the fsync probe file");
        FsyncAlone(std::sync::Mutex::new((file, 0)))
    }
}

impl Submit for FsyncAlone {
    fn submit(&self, _n: u64) {
        use std::os::unix::fs::FileExt;
        let mut guard = self.0.lock().unwrap();
        let (file, page) = &mut *guard;
        file.write_all_at(&[b'x'; PROBE_PAGE as usize], *page * PROBE_PAGE)
            .expect("write to the probe file");
        file.sync_data().expect("fsync the probe file");
        *page = (*page + 1) % PROBE_PAGES;
    }
}

/// Runs `per_client` submits on each of `clients` threads; returns every latency (ns) and the
/// wall time from the first submit's start to the last one's end (each thread notes its own, so
/// a late start of the main thread does not shorten it).
fn run(target: &Arc<dyn Submit>, clients: usize, per_client: u64) -> (Vec<u64>, Duration) {
    let start_line = Arc::new(Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let (target, start_line) = (Arc::clone(target), Arc::clone(&start_line));
            std::thread::spawn(move || {
                start_line.wait();
                let began = Instant::now();
                let latencies = (0..per_client)
                    .map(|n| {
                        let began = Instant::now();
                        target.submit(c as u64 * per_client + n);
                        began.elapsed().as_nanos() as u64
                    })
                    .collect::<Vec<u64>>();
                (latencies, began, Instant::now())
            })
        })
        .collect();
    let (mut latencies, mut first, mut last) = (Vec::new(), None::<Instant>, None::<Instant>);
    for thread in threads {
        let (mine, began, ended) = thread.join().expect("a client thread");
        latencies.extend(mine);
        first = Some(first.map_or(began, |f| f.min(began)));
        last = Some(last.map_or(ended, |l| l.max(ended)));
    }
    let wall = last.unwrap().duration_since(first.unwrap());
    (latencies, wall)
}

fn targets(
    store: &Arc<Store>,
    in_commit: &Arc<Store>,
    dir: &std::path::Path,
) -> Vec<(&'static str, Arc<dyn Submit>)> {
    vec![
        ("store_submit", Arc::clone(store) as Arc<dyn Submit>),
        (
            "store_submit_checkpoint_in_commit",
            Arc::clone(in_commit) as Arc<dyn Submit>,
        ),
        (
            "fsync_alone",
            Arc::new(FsyncAlone::create(&dir.join("probe"))),
        ),
        (
            "memory_submit",
            Arc::new(Memory(
                std::sync::RwLock::new(WorkQueue::new(usize::MAX)),
                users::TypeUsers::new(),
            )),
        ),
    ]
}

fn main() {
    // `DURABLE_SUBMIT_DIR=/dev/shm` runs it on a RAM file system, where an fsync costs nothing:
    // what is left is SQLite's and the group commit's own cost.
    let parent = std::env::var_os("DURABLE_SUBMIT_DIR").map_or_else(
        || env!("CARGO_TARGET_TMPDIR").into(),
        std::path::PathBuf::from,
    );
    let dir = tempfile::tempdir_in(&parent).expect("a directory for the database");
    println!("database and fsync probe in {}", parent.display());
    let store = Arc::new(Store::open(dir.path()).expect("open the store"));
    let before_dir = tempfile::tempdir_in(&parent).expect("a directory for the other database");
    let in_commit = Arc::new(
        Store::open_with(before_dir.path(), store::CheckpointPolicy::in_commit())
            .expect("open the other store"),
    );
    let targets = targets(&store, &in_commit, dir.path());
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
            let measured = if *name == "store_submit" {
                &store
            } else {
                &in_commit
            };
            let before = measured.health();
            let (mut nanos, wall) = run(target, clients, per_client);
            let after = measured.health();
            if name.starts_with("store_submit") {
                let submits = after.submits_stored - before.submits_stored;
                let commits = after.submit_commits - before.submit_commits;
                eprintln!(
                    "{name}/{clients}: {submits} submits in {commits} commits ({:.2} per commit); checkpoints {:?}",
                    submits as f64 / commits as f64,
                    after.checkpoints
                );
            }
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
