//! The task daemon's HTTP API under load (issue 16): requests per second and latency
//! percentiles of `GET /api/status` and `POST /api/submit` with 1, 16 and 256 concurrent
//! clients, first alone, then while 5,000 idle connections are held open.
//!
//! The daemon is the real `taskdaemon` binary, built with the release profile by this bench and
//! run as its own process (two runtime workers, as `main.rs` starts it) on loopback, with the
//! API token set, so each request also passes authentication. The clients are threads of this
//! process, one keep-alive connection each (the tests' HTTP client), in a closed loop: send,
//! wait for the answer, send again, for a fixed time; every latency is recorded.
//!
//! * `status` reads the configuration file and hashes it (desired versus running) and counts
//!   finished jobs in the state database: `200` expected.
//! * `submit` is durable: the answer (`202`) comes after the job is committed to SQLite (WAL,
//!   `synchronous = FULL`: one fsync per submit, one submit at a time). The figure is the
//!   daemon's whole path: HTTP, authentication, rate limit, the commit and the fsync. The queue
//!   and the rate limit are set high so nothing is refused; one loop runs and never finishes
//!   during the bench, so queued work does not compete for the disk.
//!
//! The daemon's connection cap is 512 in the first run (256 clients, with room for the previous
//! round's connections still closing) and 5,600 in the run with idle connections, whose header
//! timeout is raised to 10 minutes: with the default 10 s, the daemon closes idle connections,
//! which is its defence against slow clients. The bench raises its own open-file limit (the
//! daemon inherits it) and checks through `/api/status` that every idle connection is held
//! before and after the measurements.
//!
//! `cargo bench -p hotcfg-benches --bench http_api` (about 1 minute after the build). Under
//! `cargo test --benches` it runs a short smoke version on the dev build with 50 idle
//! connections.

use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use hotcfg_benches::{benchmarking, Tails};
use hotcfg_tests::daemon::{build_taskdaemon, Daemon, LIMIT};
use hotcfg_tests::http_client::{get_json, Connection};
use hotcfg_tests::wait_until;

const TOKEN: &str = "b3nchm4rk";
const CLIENTS: [usize; 3] = [1, 16, 256];

/// What a round measures.
#[derive(Clone, Copy)]
enum Endpoint {
    Status,
    Submit,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Status => "status",
            Endpoint::Submit => "submit",
        }
    }

    /// Sends one request and checks its status code.
    fn call(self, connection: &mut Connection) -> Result<(), String> {
        let (method, path, body, expected) = match self {
            Endpoint::Status => ("GET", "/api/status", "", 200),
            Endpoint::Submit => ("POST", "/api/submit", r#"{"type": "build"}"#, 202),
        };
        let headers = [("content-type", "application/json")];
        let answer = connection.send(method, path, Some(TOKEN), &headers, body.as_bytes())?;
        if answer.status == expected {
            Ok(())
        } else {
            Err(format!(
                "{method} {path}: {} {}",
                answer.status,
                answer.text()
            ))
        }
    }
}

/// The configuration: one loop type whose single running loop outlasts the bench, room for
/// every submit, and `server` settings.
fn config(server: &str) -> String {
    format!(
        r#"api_token = "{TOKEN}"

[daemon]
listen = "127.0.0.1:0"

[server]
{server}

[storage]
data_dir = "data"

[limits]
max_concurrent = 1
queue_capacity = 100000000
submits_per_second = 100000000

[templates]
progress = "{{id}} {{iteration}}"
done = "{{id}} done"
template_files = []

[monitoring]
log_level = "info"
status_interval_secs = 3600

[loops.build]
max_iterations = 1
delay_ms = 3600000
template = "progress"
"#
    )
}

/// One round's figures.
struct Round {
    answered: usize,
    wall: Duration,
    tails: Tails,
    errors: usize,
    first_error: Option<String>,
}

/// `clients` threads call `endpoint` in a closed loop for `duration`, each on its own keep-alive
/// connection opened (and used once) before the clock starts.
fn round(addr: &str, endpoint: Endpoint, clients: usize, duration: Duration) -> Round {
    let start_line = Arc::new(Barrier::new(clients + 1));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (addr, start_line) = (addr.to_string(), Arc::clone(&start_line));
            std::thread::spawn(move || {
                let mut connection = Connection::open(&addr);
                endpoint.call(&mut connection).expect("a first request");
                start_line.wait();
                let deadline = Instant::now() + duration;
                let (mut nanos, mut errors) = (Vec::new(), Vec::new());
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match endpoint.call(&mut connection) {
                        Ok(()) => nanos.push(began.elapsed().as_nanos() as u64),
                        Err(error) => {
                            errors.push(error);
                            connection = Connection::open(&addr);
                        }
                    }
                }
                (nanos, errors)
            })
        })
        .collect();
    start_line.wait();
    let began = Instant::now();
    let (mut nanos, mut errors) = (Vec::new(), Vec::new());
    for thread in threads {
        let (n, e) = thread.join().expect("a client thread");
        nanos.extend(n);
        errors.extend(e);
    }
    let wall = began.elapsed();
    Round {
        answered: nanos.len(),
        wall,
        tails: Tails::of(&mut nanos),
        errors: errors.len(),
        first_error: errors.into_iter().next(),
    }
}

/// The 1-minute load average.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// The connections the daemon serves now (this request's own included).
fn open_connections(addr: &str) -> u64 {
    get_json(addr, "/api/status", TOKEN)["connections"]
        .as_u64()
        .expect("status has `connections`")
}

/// Opens `count` connections that send nothing, and waits until the daemon serves them all.
fn hold_idle(addr: &str, count: usize) -> Vec<TcpStream> {
    let idle: Vec<TcpStream> = (0..count)
        .map(|n| TcpStream::connect(addr).unwrap_or_else(|e| panic!("idle connection {n}: {e}")))
        .collect();
    let what = format!("the daemon to serve {count} idle connections");
    wait_until(&what, Duration::from_secs(60), || {
        open_connections(addr) > count as u64
    });
    idle
}

/// Raises this process's soft limit on open files to `needed` (the daemon, started from here,
/// inherits it); the hard limit must allow it.
fn raise_open_files(needed: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_none_or(|current| current >= needed) {
        return;
    }
    if let Some(maximum) = limit.maximum.filter(|&maximum| maximum < needed) {
        panic!("the hard limit on open files is {maximum}; this bench needs {needed} (ulimit -Hn)");
    }
    let raised = Rlimit {
        current: Some(needed),
        maximum: limit.maximum,
    };
    setrlimit(Resource::Nofile, raised).expect("raise the open-file limit");
}

/// Runs every endpoint at every client count against a daemon with `server` settings, holding
/// `idle` idle connections meanwhile.
fn run(binary: &std::path::Path, label: &str, server: &str, idle: usize, duration: Duration) {
    let mut daemon = Daemon::start(binary, "reject", &config(server));
    let addr = daemon.addr.clone();
    let held = hold_idle(&addr, idle);
    for endpoint in [Endpoint::Status, Endpoint::Submit] {
        for clients in CLIENTS {
            let load = load_average();
            let r = round(&addr, endpoint, clients, duration);
            println!(
                "| {label} | {} | {clients} | {} | {:.0} | {} | {} | {} | {} | {load} |",
                endpoint.name(),
                r.answered,
                r.answered as f64 / r.wall.as_secs_f64(),
                millis(r.tails.p50),
                millis(r.tails.p99),
                millis(r.tails.max),
                r.errors,
            );
            if let Some(error) = r.first_error {
                println!("  first error: {error}");
            }
        }
    }
    if idle > 0 {
        // This request's own connection is counted too.
        let still = open_connections(&addr).saturating_sub(1);
        println!("  idle connections the daemon served after the rounds: {still} of {idle}");
    }
    drop(held);
    daemon.stop();
}

fn main() {
    let full = benchmarking();
    let (duration, idle) = if full {
        (Duration::from_secs(3), 5_000)
    } else {
        (Duration::from_millis(100), 50)
    };
    assert!(
        duration < LIMIT,
        "a round fits in the client's read timeout"
    );
    // Idle connections, the largest round's clients, the status probe, and room for the rest.
    raise_open_files(idle as u64 + 256 + 512);
    let binary = build_taskdaemon(full);
    println!(
        "\n{} s per round, load average (1 min) read before each round:",
        duration.as_secs_f64()
    );
    println!(
        "| run | endpoint | clients | answered | per second | p50 | p99 | worst | errors | load |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    run(&binary, "alone", "max_connections = 512", 0, duration);
    let server = "max_connections = 5600\nheader_timeout_secs = 600";
    run(&binary, &format!("{idle} idle"), server, idle, duration);
}
