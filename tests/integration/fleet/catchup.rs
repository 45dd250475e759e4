//! Issue 21: nodes that fall behind by more than the default gRPC message size, backlogs, the
//! status key's upkeep and what a node says while its watch is down.

use std::sync::{mpsc, Mutex};
use std::time::Duration;

use hotcfg::cli::{Command as Op, EXIT_NOT_CONVERGED, EXIT_OK};
use hotcfg::etcd::{
    EtcdClient, EtcdFollower, EtcdSource, FleetStatus, FollowerOptions, NodeResult, NodeStatus,
    WatchState,
};
use hotcfg::{Reloader, RestartPolicy};

use super::{admin, eventually, holds, Etcd, Node, NodeConfig, KEY, LIMIT};

/// A valid configuration padded with comment lines to about `bytes` bytes.
fn padded(workers: u32, bytes: usize) -> String {
    let mut value = super::text("0.0.0.0:7000", workers);
    let line = format!("# {}\n", "x".repeat(98));
    while value.len() + line.len() <= bytes {
        value.push_str(&line);
    }
    value
}

/// Just under etcd's default request limit (1.5 MiB): three of them pass tonic's 4 MiB default.
const BIG: usize = 1_400_000;

#[test]
fn a_node_that_missed_more_than_4_mib_of_changes_catches_up_without_compaction() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let nodes = super::start_nodes(&etcd, 1, RestartPolicy::Reject);
    let node = &nodes[0];

    // Held back (as a node stopped with SIGSTOP, or cut off) while three big values are written.
    node.follower.pause();
    eventually("the paused follower to drop its watch", || {
        let stats = node.follower.stats();
        holds(!stats.connected, stats)
    });
    let before = node.follower.stats();
    let mut newest = 0;
    for workers in [3, 4, 5] {
        newest = admin.put(KEY, padded(workers, BIG)).unwrap();
    }
    node.follower.resume();

    node.wait_status(NodeResult::Applied, newest);
    assert_eq!(node.config().workers, 5);
    // The report can be written before the follower's own counters catch up with the watch
    // response they came from (seen under load: revision 7 for a moment): wait for them.
    let after = eventually("the follower to watch from the newest revision", || {
        let stats = node.follower.stats();
        match stats.connected && stats.revision == newest {
            true => Ok(stats),
            false => Err(format!("now: {stats:?}")),
        }
    });
    assert!(
        after.disconnects - before.disconnects <= 1,
        "a bounded number of retries: {before:?} -> {after:?}"
    );
    // It keeps following.
    let next = admin.put(KEY, super::text("0.0.0.0:7000", 6)).unwrap();
    node.wait_status(NodeResult::Applied, next);
}

#[test]
fn a_node_starts_on_a_prefix_whose_values_sum_past_4_mib() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let prefix = "apps/demo/conf.d/";
    admin
        .put(
            &format!("{prefix}00-base.toml"),
            super::text("0.0.0.0:7000", 2),
        )
        .unwrap();
    let mut newest = 0;
    for n in 1..=4 {
        let comments = padded(2, BIG)
            .split_once("workers = 2\n")
            .unwrap()
            .1
            .to_string();
        newest = admin
            .put(&format!("{prefix}{n:02}-notes.toml"), comments)
            .unwrap();
    }
    let client = EtcdClient::with_options([etcd.endpoint()], super::fast()).unwrap();
    let source = EtcdSource::prefix(client, prefix);
    let reloader = Reloader::<NodeConfig>::builder(source.clone())
        .build()
        .unwrap_or_else(|e| panic!("the node cannot start on {prefix}: {e}"));
    assert_eq!(reloader.handle().snapshot().config().workers, 2);
    let follower = EtcdFollower::start(&reloader, &source, FollowerOptions::new("big-1"));
    eventually("the node to follow the prefix", || {
        let stats = follower.stats();
        holds(stats.connected && stats.revision == newest, stats)
    });
    let changed = admin
        .put(
            &format!("{prefix}00-base.toml"),
            super::text("0.0.0.0:7000", 9),
        )
        .unwrap();
    eventually("the change to be applied", || {
        let workers = reloader.handle().snapshot().config().workers;
        holds(
            workers == 9 && follower.stats().revision == changed,
            workers,
        )
    });
}

/// A key deleted from a followed prefix between the engine's first read and the follower's start
/// is applied. A deletion leaves no mod revision behind: the prefix's newest revision still
/// equals the one the engine read, so the follower's first read of a prefix always has the
/// engine read again (cargo-mutants, issue 22: `||` into `&&` in `fresh_read`'s condition
/// skipped that read).
#[test]
fn a_key_deleted_from_a_prefix_before_the_follower_starts_is_applied() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let prefix = "apps/demo/conf.d/";
    let layer = format!("{prefix}10-more.toml");
    admin.put(&layer, "workers = 5\n").unwrap();
    let base = format!("{prefix}00-base.toml");
    let newest = admin.put(&base, super::text("0.0.0.0:7000", 2)).unwrap();
    let client = EtcdClient::with_options([etcd.endpoint()], super::fast()).unwrap();
    let source = EtcdSource::prefix(client, prefix);
    let reloader = Reloader::<NodeConfig>::builder(source.clone())
        .build()
        .unwrap();
    assert_eq!(reloader.handle().snapshot().config().workers, 5);
    let deleted = admin.delete(&layer).unwrap();
    assert!(deleted > newest);

    let follower = EtcdFollower::start(&reloader, &source, FollowerOptions::new("prefix-1"));
    eventually("the deletion to be applied", || {
        let workers = reloader.handle().snapshot().config().workers;
        holds(workers == 2 && follower.stats().connected, workers)
    });
}

/// A running node's report outlives its lease's time to live: the reporter keeps the lease
/// alive, so the report is neither expired nor written again (cargo-mutants, issue 22:
/// `keep_alive` replaced by `Ok(())` let the lease expire, and the reporter wrote the report
/// again; no test ran longer than a lease). The wait is the property under test (three times
/// the TTL), not a synchronisation.
#[test]
fn a_running_nodes_report_outlives_its_lease_ttl() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let client = EtcdClient::with_options([etcd.endpoint()], super::fast()).unwrap();
    let source = EtcdSource::new(client, KEY);
    let reloader = Reloader::<NodeConfig>::builder(source.clone())
        .build()
        .unwrap();
    let ttl = Duration::from_secs(2);
    let options = FollowerOptions::new("ttl-1").lease_ttl(ttl);
    let follower = EtcdFollower::start(&reloader, &source, options);
    let key = follower.status_key().unwrap().to_string();
    let first = eventually("the first report", || {
        let entry = admin.get(&key).unwrap();
        entry.ok_or_else(|| "no report yet".to_string())
    });
    std::thread::sleep(3 * ttl);
    let now = admin.get(&key).unwrap();
    assert_eq!(
        now.map(|e| e.mod_revision),
        Some(first.mod_revision),
        "the report expired or was written again while the node ran"
    );
}

/// A node's report deleted by hand is written again: the reporter watches its own key from
/// after its write. (Issue 22: no test deleted a report; `watch_own_key`'s start revision
/// mutated to the write's own revision still passes, and is equivalent: see RELIABILITY.md.)
#[test]
fn a_deleted_report_is_written_again() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let nodes = super::start_nodes(&etcd, 1, RestartPolicy::Reject);
    let node = &nodes[0];
    let key = node.follower.status_key().unwrap().to_string();
    let first = eventually("the first report", || {
        admin
            .get(&key)
            .unwrap()
            .ok_or_else(|| "no report yet".to_string())
    });
    let deleted = admin.delete(&key).unwrap();
    assert!(deleted > first.mod_revision);
    eventually("the report to be written again", || {
        let entry = admin.get(&key).unwrap();
        match entry {
            Some(e) if e.mod_revision > deleted => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// The row of node `id` in a `fleet-status` table.
fn row_of<'a>(table: &'a str, id: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("no row for {id} in\n{table}"))
}

/// Waits until `node` reports its watch in `state`, and returns the report.
fn wait_watch_report(node: &Node, state: WatchState) -> NodeStatus {
    eventually(
        &format!("node {} to report its watch {state}", node.id),
        || match node.status() {
            Some(s) if s.watch.as_ref().is_some_and(|w| w.state == state) => Ok(s),
            other => Err(format!("last report: {other:?}")),
        },
    )
}

/// A node whose `workers` handler blocks, the first time it runs, until the test lets it go.
struct Gated {
    node: Node,
    entered: mpsc::Receiver<()>,
    release: mpsc::Sender<()>,
}

fn gated_node(etcd: &Etcd, id: &str) -> Gated {
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let gate = Mutex::new(Some((entered_tx, release_rx)));
    let client = EtcdClient::with_options([etcd.endpoint()], super::fast()).unwrap();
    let source = EtcdSource::new(client.clone(), KEY);
    let reloader = Reloader::<NodeConfig>::builder(source.clone())
        .on_apply("workers", move |_| {
            if let Some((entered, release)) = gate.lock().unwrap().take() {
                entered.send(()).unwrap();
                release
                    .recv_timeout(LIMIT)
                    .expect("the test to release the handler");
            }
            Ok(())
        })
        .build()
        .unwrap();
    let follower = EtcdFollower::start(&reloader, &source, FollowerOptions::new(id));
    Gated {
        node: Node {
            id: id.to_string(),
            reloader,
            follower,
            client,
        },
        entered,
        release,
    }
}

#[test]
fn a_backlog_of_50_revisions_is_applied_as_one_reload() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let first = admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let gated = gated_node(&etcd, "slow-1");
    let node = &gated.node;
    node.wait_status(NodeResult::Applied, first);

    // A reload that takes long (its handler is held) while 50 revisions are written: they queue
    // up on the watch.
    admin.put(KEY, super::text("0.0.0.0:7000", 3)).unwrap();
    gated
        .entered
        .recv_timeout(LIMIT)
        .expect("the reload of revision 3 to reach its handler");
    let before = node.follower.stats();
    let mut newest = 0;
    for workers in 4..54 {
        newest = admin
            .put(KEY, super::text("0.0.0.0:7000", workers))
            .unwrap();
    }
    gated.release.send(()).unwrap();

    node.wait_status(NodeResult::Applied, newest);
    assert_eq!(node.config().workers, 53);
    let after = node.follower.stats();
    assert_eq!(
        after.reloads - before.reloads,
        2,
        "the held reload (counted when done), then one reload of the newest value for the whole backlog: \
         {before:?} -> {after:?}"
    );
    // generation 1 at start, 2 for revision 3, 3 for the backlog; nothing read twice.
    assert_eq!(node.reloader.handle().generation(), 3);
    let unchanged = node
        .reloader
        .history()
        .iter()
        .filter(|e| matches!(e.result, hotcfg::ReloadResult::Unchanged))
        .count();
    assert_eq!(unchanged, 0, "no reload found nothing new");
}

#[test]
fn fleet_status_reports_expected_nodes_that_are_missing_or_paused() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let mut nodes = super::start_nodes(&etcd, 3, RestartPolicy::Reject);
    let fleet_status = |expect: &[&str], expect_count: Option<usize>| {
        super::run(
            &super::cli(RestartPolicy::Reject),
            Op::FleetStatus {
                etcd: etcd.endpoint(),
                access: Default::default(),
                key: KEY.to_string(),
                status_prefix: None,
                expect: expect.iter().map(|s| s.to_string()).collect(),
                expect_count,
                json: false,
            },
        )
    };
    eventually("the three nodes to report converged", || {
        let (code, table) = fleet_status(&["node-1", "node-2", "node-3"], Some(3));
        holds(code == EXIT_OK, table)
    });

    // A crashed (here: stopped) node leaves the view: only an expectation tells it is missing.
    let gone = nodes.pop().unwrap();
    let key = gone.follower.status_key().unwrap().to_string();
    gone.follower.shutdown(Duration::from_secs(2));
    eventually("the stopped node's report to disappear", || {
        let entry = admin.get(&key).unwrap();
        holds(entry.is_none(), entry)
    });
    let (code, table) = fleet_status(&[], None);
    assert_eq!(
        code, EXIT_OK,
        "without an expectation the fleet shrank: {table}"
    );
    let (code, table) = fleet_status(&["node-1", "node-2", "node-3"], None);
    assert_eq!(code, EXIT_NOT_CONVERGED, "{table}");
    let row = row_of(&table, "node-3");
    assert!(
        row.contains("missing") && row.contains("no report"),
        "{table}"
    );
    assert!(
        table
            .trim_end()
            .ends_with("2 node(s); 2 applied the current revision; 1 missing; not converged"),
        "{table}"
    );
    let (code, table) = fleet_status(&[], Some(3));
    assert_eq!(code, EXIT_NOT_CONVERGED, "{table}");
    assert!(table.contains("2 of 3 expected node(s) report"), "{table}");

    // A paused node reports it, and is not converged, even once it holds the current revision.
    let paused = &nodes[1];
    paused.follower.pause();
    let status = wait_watch_report(paused, WatchState::Paused);
    assert!(!status.is_following());
    let (code, table) = fleet_status(&["node-1", "node-2"], None);
    assert_eq!(code, EXIT_NOT_CONVERGED, "{table}");
    let row = row_of(&table, "node-2");
    assert!(
        row.contains("paused") && row.contains("watch paused since"),
        "{table}"
    );
    assert!(table.contains("1 not watching the key"), "{table}");

    let newest = admin.put(KEY, super::text("0.0.0.0:7000", 5)).unwrap();
    nodes[0].wait_status(NodeResult::Applied, newest);
    let (code, table) = fleet_status(&["node-1", "node-2"], None);
    assert_eq!(code, EXIT_NOT_CONVERGED, "{table}");
    assert!(table.contains("1 applied the current revision"), "{table}");

    // A reload by other means (SIGHUP) brings it to the current revision, but its watch is still
    // down and it would miss the next change: still not converged.
    paused.reloader.reload_now();
    paused.wait_status(NodeResult::Applied, newest);
    let (code, table) = fleet_status(&["node-1", "node-2"], None);
    assert_eq!(code, EXIT_NOT_CONVERGED, "{table}");
    let row = row_of(&table, "node-2");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cells[..4],
        ["node-2", &newest.to_string(), "applied", "paused"],
        "{table}"
    );
    assert!(table.contains("1 not watching the key"), "{table}");

    paused.follower.resume();
    paused.wait_status(NodeResult::Applied, newest);
    let (code, table) = eventually("the fleet to converge after the resume", || {
        let (code, table) = fleet_status(&["node-1", "node-2"], Some(2));
        if code == EXIT_OK {
            Ok((code, table))
        } else {
            Err(table)
        }
    });
    assert_eq!(code, EXIT_OK);
    assert!(table.contains("watching"), "{table}");
}

#[test]
fn a_node_whose_watch_is_broken_says_so_and_is_not_converged() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let first = admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    // A node whose client accepts at most 64 KiB per response.
    let options = super::fast().max_response_bytes(64 * 1024);
    let client = EtcdClient::with_options([etcd.endpoint()], options).unwrap();
    let source = EtcdSource::new(client.clone(), KEY);
    let reloader = Reloader::<NodeConfig>::builder(source.clone())
        .build()
        .unwrap();
    let follower = EtcdFollower::start(
        &reloader,
        &source,
        FollowerOptions::new("small-1")
            .backoff(Duration::from_millis(50), Duration::from_millis(400)),
    );
    let node = Node {
        id: "small-1".into(),
        reloader,
        follower,
        client,
    };
    node.wait_status(NodeResult::Applied, first);

    // A catch-up too large for it, each value small enough: it reads the newest value afresh
    // instead of asking for the same revisions again.
    node.follower.pause();
    eventually("the paused follower to drop its watch", || {
        let stats = node.follower.stats();
        holds(!stats.connected, stats)
    });
    let mut newest = 0;
    for workers in [3, 4, 5] {
        newest = admin.put(KEY, padded(workers, 40_000)).unwrap();
    }
    node.follower.resume();
    node.wait_status(NodeResult::Applied, newest);
    assert_eq!(node.config().workers, 5);
    let stats = node.follower.stats();
    assert_eq!(
        stats.resyncs, 1,
        "one fresh read instead of retries: {stats:?}"
    );

    // A value too large for it: its watch cannot be kept, and it says so.
    let huge = admin.put(KEY, padded(6, 100_000)).unwrap();
    let status = wait_watch_report(&node, WatchState::Reconnecting);
    let health = status.watch.clone().unwrap();
    let error = health.last_error.clone().unwrap();
    assert!(
        error.contains("above this client's limit of 65536 bytes"),
        "{error}"
    );
    assert_eq!(node.follower.health().state, WatchState::Reconnecting);
    let disconnects = node.follower.stats().disconnects;
    let fleet = FleetStatus::read(&admin, KEY, &source.default_status_prefix()).unwrap();
    assert!(!fleet.converged(), "{fleet}");
    let table = fleet.to_string();
    assert!(
        table.contains("reconnecting") && table.contains("watch reconnecting since"),
        "{table}"
    );
    assert_eq!(fleet.key_revision, Some(huge));

    // Its retries back off: it is still reconnecting since the same moment.
    eventually("a few more attempts", || {
        let stats = node.follower.stats();
        holds(stats.disconnects >= disconnects + 2, stats)
    });
    assert_eq!(node.follower.health().since, health.since);

    // A value it can take again: it recovers on its own.
    let good = admin.put(KEY, super::text("0.0.0.0:7000", 7)).unwrap();
    node.wait_status(NodeResult::Applied, good);
    eventually("the watch to be back", || {
        let health = node.follower.health();
        holds(health.is_watching(), health)
    });
    assert_eq!(node.config().workers, 7);
}

#[test]
fn a_killed_etcd_is_reported_as_unreachable() {
    let mut etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let nodes = super::start_nodes(&etcd, 1, RestartPolicy::Reject);
    etcd.stop();
    let health = eventually("the node to notice etcd is gone", || {
        let health = nodes[0].follower.health();
        holds(health.state == WatchState::Reconnecting, &health)?;
        Ok(health)
    });
    let error = health.last_error.unwrap();
    assert!(error.starts_with("cannot reach etcd"), "{error}");
}

#[test]
fn a_deleted_status_key_is_written_again() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let revision = admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let nodes = super::start_nodes(&etcd, 1, RestartPolicy::Reject);
    let node: &Node = &nodes[0];
    let key = node.follower.status_key().unwrap().to_string();
    admin.delete(&key).unwrap();
    let status = eventually("the deleted status key to be written again", || {
        node.status().ok_or_else(|| "still absent".to_string())
    });
    assert_eq!(
        (status.result, status.revision),
        (NodeResult::Applied, Some(revision))
    );
}

/// One call to etcd's JSON gateway (HTTP/1.0, so the answer is not chunked).
fn gateway(etcd: &Etcd, path: &str, body: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(etcd.endpoint()).expect("connect to etcd");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("etcd's answer");
    let (_, json) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP body in {answer:?}"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The ids of the leases etcd holds.
fn leases(etcd: &Etcd) -> Vec<String> {
    let answer = gateway(etcd, "/v3/lease/leases", "{}");
    answer["leases"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|l| l["ID"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_status_lease_lost_while_etcd_is_up_is_replaced_and_the_report_restored() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    let revision = admin.put(KEY, super::text("0.0.0.0:7000", 2)).unwrap();
    let nodes = super::start_nodes(&etcd, 1, RestartPolicy::Reject);
    let held = leases(&etcd);
    assert_eq!(held.len(), 1, "the node's status lease: {held:?}");

    // The lease ends while etcd is up (revoked here; expired after a long pause alike): the
    // report goes with it.
    gateway(
        &etcd,
        "/v3/lease/revoke",
        &format!(r#"{{"ID":"{}"}}"#, held[0]),
    );
    let status = eventually("the report to be back on a new lease", || {
        let now = leases(&etcd);
        match nodes[0].status() {
            Some(status) if now.len() == 1 && now != held => Ok(status),
            other => Err(format!("leases {now:?}, report {other:?}")),
        }
    });
    assert_eq!(
        (status.result, status.revision),
        (NodeResult::Applied, Some(revision))
    );
}
