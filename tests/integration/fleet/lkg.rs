//! Issue 18: last-known-good start. A node that starts while etcd is unreachable starts from the
//! last version it applied (its audit log's snapshots), stale in its status until it reads the
//! key again; then it converges. Without a usable version, the start fails naming why; a key that
//! does not exist (etcd up) still fails as before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotcfg::audit::AuditRecord;
use hotcfg::etcd::{EtcdFollower, EtcdSource, FollowerOptions, NodeResult, NodeStatus};
use hotcfg::{BuildError, Reloader, SourceErrorKind, Trigger};
use hotcfg_tests::Sandbox;

use hotcfg::RestartPolicy;

use super::{admin, cli, eventually, fleet_status_op, run, text, validate, Etcd, NodeConfig, KEY};

/// A node with an audit log and last-known-good start on.
struct Node {
    reloader: Reloader<NodeConfig>,
    follower: EtcdFollower,
}

fn build(source: &EtcdSource, audit: &Path) -> Result<Reloader<NodeConfig>, BuildError> {
    Reloader::<NodeConfig>::builder(source.clone())
        .validator(validate)
        .on_apply("workers", |_| Ok(()))
        .audit_log(audit)
        .last_known_good()
        .build()
}

impl Node {
    fn start(etcd: &Etcd, audit: &Path) -> Node {
        let source = EtcdSource::new(etcd.client(), KEY);
        let reloader =
            build(&source, audit).unwrap_or_else(|e| panic!("the node cannot start: {e}"));
        let options = FollowerOptions::new("node-1")
            .lease_ttl(Duration::from_secs(5))
            .backoff(Duration::from_millis(50), Duration::from_millis(300));
        let follower = EtcdFollower::start(&reloader, &source, options);
        Node { reloader, follower }
    }

    fn stop(self) {
        self.follower.shutdown(Duration::from_secs(5));
    }

    fn status(&self, etcd: &Etcd) -> Option<NodeStatus> {
        let key = self.follower.status_key().unwrap();
        let entry = admin(etcd).get(key).ok()??;
        Some(serde_json::from_slice(&entry.value).expect("a status report is JSON"))
    }

    /// Waits until the node's report says `result` at `revision`, not stale.
    fn wait_fresh(&self, etcd: &Etcd, result: NodeResult, revision: i64) -> NodeStatus {
        eventually(
            &format!("the node to report {result} at revision {revision}, not stale"),
            || match self.status(etcd) {
                Some(s) if s.result == result && s.revision == Some(revision) && !s.stale => Ok(s),
                other => Err(format!(
                    "last report: {other:?}, stale: {:?}",
                    self.reloader.stale()
                )),
            },
        )
    }
}

/// Puts a first value (workers 2), runs a node until it applied it, stops it.
fn ran_once(etcd: &Etcd, audit: &Path) {
    let v1 = admin(etcd).put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let node = Node::start(etcd, audit);
    node.wait_fresh(etcd, NodeResult::Applied, v1);
    node.stop();
}

fn records(path: &Path) -> Vec<AuditRecord> {
    hotcfg::verify_audit_log(path).expect("the audit log verifies")
}

fn build_error(source: &EtcdSource, audit: &Path) -> String {
    match build(source, audit) {
        Ok(_) => panic!("the node started"),
        Err(err) => err.to_string(),
    }
}

#[test]
fn a_node_started_during_an_etcd_outage_starts_from_last_known_good_stale_then_converges() {
    let mut etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    let admin_client = admin(&etcd);
    let v1 = admin_client.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let node = Node::start(&etcd, &audit);
    node.wait_fresh(&etcd, NodeResult::Applied, v1);
    let v2 = admin_client.put(KEY, text("0.0.0.0:7000", 3)).unwrap();
    node.wait_fresh(&etcd, NodeResult::Applied, v2);
    node.stop();

    // etcd is down: the node starts from v2, the last version it applied, stale.
    etcd.stop();
    let node = Node::start(&etcd, &audit);
    assert_eq!(node.reloader.handle().load().workers, 3);
    let event = node.reloader.last_event();
    let Trigger::LastKnownGood(start) = &event.trigger else {
        panic!("started with {event}");
    };
    assert_eq!(start.generation, 2, "{start}");
    assert!(
        start.unreachable.contains(&format!("etcd:{KEY}")),
        "{start}"
    );
    assert_eq!(node.reloader.stale().as_ref(), Some(start));
    let last = records(&audit).pop().unwrap();
    assert_eq!(last.trigger.kind, "last-known-good", "{last:?}");
    assert_eq!(last.trigger.generation, Some(2));
    assert_eq!(last.result, "applied");
    assert_eq!(
        last.source.as_ref().unwrap().revision,
        None,
        "not read from etcd now"
    );

    // etcd returns, still at v2: the node reads it, finds it unchanged and is no longer stale.
    etcd.run_on(etcd.client_port);
    let status = node.wait_fresh(&etcd, NodeResult::Unchanged, v2);
    assert_eq!(status.generation, 1, "{status:?}");
    assert!(node.reloader.stale().is_none());
    let last = records(&audit).pop().unwrap();
    assert_eq!(
        (last.trigger.kind.as_str(), last.result.as_str()),
        ("remote", "unchanged"),
        "the read that ended staleness is recorded: {last:?}"
    );

    // A new value applies as on any node.
    let v3 = admin_client.put(KEY, text("0.0.0.0:7000", 5)).unwrap();
    node.wait_fresh(&etcd, NodeResult::Applied, v3);
    assert_eq!(node.reloader.handle().load().workers, 5);
    node.stop();
}

#[test]
fn a_stale_node_reports_stale_until_it_reads_the_value_pushed_during_the_outage() {
    let mut etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    ran_once(&etcd, &audit);

    etcd.stop();
    let node = Node::start(&etcd, &audit);
    assert!(node.reloader.stale().is_some());
    // Held paused, the node reports but does not read the key: its report says stale.
    node.follower.pause();
    etcd.run_on(etcd.client_port);
    let v2 = admin(&etcd).put(KEY, text("0.0.0.0:7000", 7)).unwrap();
    let stale = eventually("the node to report stale", || match node.status(&etcd) {
        Some(s) if s.stale => Ok(s),
        other => Err(format!("last report: {other:?}")),
    });
    assert_eq!(
        (stale.result, stale.revision),
        (NodeResult::Applied, None),
        "{stale:?}"
    );
    assert!(
        stale
            .trigger
            .starts_with("last-known-good generation 1 of an earlier run"),
        "{stale:?}"
    );
    let (_, table) = run(
        &cli(RestartPolicy::Reject),
        fleet_status_op(&etcd, Default::default(), false),
    );
    assert!(
        table.contains("stale: started from its last-known-good version, key not read since"),
        "{table}"
    );
    assert!(
        table
            .trim_end()
            .ends_with("1 not watching the key; 1 stale; not converged"),
        "{table}"
    );

    node.follower.resume();
    let status = node.wait_fresh(&etcd, NodeResult::Applied, v2);
    assert_eq!(status.generation, 2, "{status:?}");
    assert_eq!(node.reloader.handle().load().workers, 7);
    node.stop();
}

#[test]
fn without_a_usable_last_known_good_a_start_during_an_outage_fails_naming_why() {
    let mut etcd = Etcd::start();
    let sandbox = Sandbox::new();

    // Versions of another key only.
    let other_log = sandbox.path("other.jsonl");
    admin(&etcd)
        .put("apps/other.toml", text("0.0.0.0:7000", 2))
        .unwrap();
    drop(
        build(
            &EtcdSource::new(etcd.client(), "apps/other.toml"),
            &other_log,
        )
        .unwrap(),
    );
    // A snapshot damaged after the node stopped.
    let corrupt_log = sandbox.path("corrupt.jsonl");
    ran_once(&etcd, &corrupt_log);
    let snapshot = snapshot_of_last_record(&corrupt_log);
    let bytes = std::fs::read(&snapshot).unwrap();
    std::fs::write(&snapshot, &bytes[..bytes.len() / 2]).unwrap();

    etcd.stop();
    let source = EtcdSource::new(etcd.client(), KEY);
    let none = build_error(&source, &sandbox.path("empty.jsonl"));
    assert!(none.starts_with(&format!("etcd:{KEY}: ")), "{none}");
    assert!(
        none.contains(&format!(
            "no last-known-good version to start from: {} records no applied version of etcd:{KEY}",
            sandbox.path("empty.jsonl").display()
        )),
        "{none}"
    );
    let other = build_error(&source, &other_log);
    assert!(
        other.contains("(it records versions of etcd:apps/other.toml only)"),
        "{other}"
    );
    let corrupt = build_error(&source, &corrupt_log);
    assert!(corrupt.contains("is corrupt"), "{corrupt}");
    assert!(
        corrupt.contains(&snapshot.display().to_string()),
        "{corrupt}"
    );
    // Another node's override is not this node's version.
    etcd.run_on(etcd.client_port);
    let n2 = EtcdSource::new(etcd.client(), KEY).node_override("node-2");
    admin(&etcd)
        .put(&format!("{KEY}/nodes/node-2"), "workers = 4\n")
        .unwrap();
    let override_log = sandbox.path("node-2.jsonl");
    drop(build(&n2, &override_log).unwrap());
    etcd.stop();
    let n1 = EtcdSource::new(etcd.client(), KEY).node_override("node-1");
    let other_node = build_error(&n1, &override_log);
    assert!(
        other_node.contains(&format!(
            "has the layer etcd:{KEY}/nodes/node-2, which this source does not read"
        )),
        "{other_node}"
    );
    // The same log serves node-2 itself.
    let restarted = build(&n2, &override_log).unwrap();
    assert_eq!(restarted.handle().load().workers, 4);
    assert!(restarted.stale().is_some());
}

#[test]
fn a_key_that_does_not_exist_still_fails_at_start_when_etcd_answers() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let audit = sandbox.path("audit.jsonl");
    ran_once(&etcd, &audit);
    admin(&etcd).delete(KEY).unwrap();

    let err = build(&EtcdSource::new(etcd.client(), KEY), &audit).unwrap_err();
    let BuildError::Config(config) = &err else {
        panic!("not the error of a missing key: {err}");
    };
    let read = config.read_error().expect("a read error");
    assert_eq!(read.kind, SourceErrorKind::NotFound, "{err}");
    assert!(!err.to_string().contains("last-known-good"), "{err}");
}

/// The snapshot file the last record of the log names.
fn snapshot_of_last_record(log: &Path) -> PathBuf {
    let record = records(log).pop().unwrap();
    let id = record.snapshot.expect("the record names a snapshot");
    hotcfg::audit::snapshot_dir(log).join(id)
}

#[test]
fn the_task_daemon_with_an_audit_log_starts_from_last_known_good_during_an_outage() {
    let mut etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let key = "taskdaemon/config";
    let first = admin(&etcd).put(key, crate::daemon::config(3, 10)).unwrap();
    let endpoint = etcd.endpoint();
    let start = || {
        let audit = ["--audit-log", "audit.jsonl"];
        super::Running::taskdaemon(&endpoint, key, "td-lkg", audit, sandbox.dir())
    };
    let status =
        |addr: &str| hotcfg_tests::daemon::Client::with_token(addr, "t0ps3cret").call("status");
    let (daemon, addr) = start();
    eventually("the daemon to apply the key", || {
        let last = records(&sandbox.path("audit.jsonl")).pop();
        match &last {
            Some(r) if r.source.as_ref().and_then(|s| s.revision) == Some(first) => Ok(()),
            _ => Err(format!("last record: {last:?}")),
        }
    });
    assert_eq!(status(&addr)["stale"], serde_json::Value::Null);
    drop(daemon);

    // etcd down: the daemon starts from its last-known-good version and says it is stale.
    etcd.stop();
    let (_daemon, addr) = start();
    let stale = status(&addr);
    let said = stale["stale"].as_str().unwrap_or_else(|| panic!("{stale}"));
    assert!(said.starts_with("generation 1 of an earlier run"), "{said}");
    assert_eq!(stale["queue_capacity"], 10, "{stale}");

    // etcd returns: the follower reads the key, and the daemon is no longer stale.
    etcd.run_on(etcd.client_port);
    eventually("the daemon to read etcd again", || {
        let now = status(&addr);
        match now["stale"].is_null() {
            true => Ok(()),
            false => Err(format!("status: {now}")),
        }
    });
}
