//! Issue 18: who pushed and why reach every node's audit record, its status and `fleet-status`;
//! per-node overrides (`KEY/nodes/<node id>`) layered over the shared value.

use std::path::{Path, PathBuf};

use hotcfg::audit::AuditRecord;
use hotcfg::cli::{Command as Op, EXIT_INVALID, EXIT_OK};
use hotcfg::etcd::{EtcdSource, NodeResult};
use hotcfg::{ChangeNote, RestartPolicy};
use hotcfg_tests::Sandbox;

use super::{admin, cli, eventually, fleet_status_op, pushed_revision, run, text, Etcd, Node, KEY};

/// `push` of FILE to [`KEY`] (or, with `node`, to its override) with this reason and author.
fn push_op(
    etcd: &Etcd,
    file: PathBuf,
    reason: Option<&str>,
    author: Option<&str>,
    node: Option<&str>,
) -> Op {
    let mut op = super::push(etcd, file, None);
    if let Op::Push {
        reason: r,
        author: a,
        node: n,
        ..
    } = &mut op
    {
        (*r, *a, *n) = (
            reason.map(str::to_string),
            author.map(str::to_string),
            node.map(str::to_string),
        );
    }
    op
}

fn fleet_status(etcd: &Etcd, json: bool) -> (u8, String) {
    run(
        &cli(RestartPolicy::Reject),
        fleet_status_op(etcd, Default::default(), json),
    )
}

/// The last record of an audit log.
fn last_record(path: &Path) -> AuditRecord {
    let text = std::fs::read_to_string(path).expect("read the audit log");
    let line = text.lines().last().expect("a record");
    serde_json::from_str(line).expect("an audit record")
}

#[test]
fn the_author_and_reason_of_a_push_reach_every_nodes_audit_record_status_and_fleet_status() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let first = admin(&etcd).put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes: Vec<(Node, PathBuf)> = (1..=3)
        .map(|i| {
            let id = format!("node-{i}");
            let log = sandbox.dir().join(format!("{id}.audit.jsonl"));
            let source = EtcdSource::new(etcd.client(), KEY);
            let node = Node::start_with(source, &id, RestartPolicy::Reject, Some(&log));
            node.wait_status(NodeResult::Applied, first);
            (node, log)
        })
        .collect();

    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 8));
    let reason = "raise workers for the sale";
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(&etcd, file.clone(), Some(reason), Some("alice@ops-1"), None),
    );
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains(&format!("by alice@ops-1: {reason}")), "{out}");
    let revision = pushed_revision(&out);
    let note = ChangeNote::new("alice@ops-1").reason(reason);
    for (node, log) in &nodes {
        let status = node.wait_status(NodeResult::Applied, revision);
        assert_eq!(status.change.as_ref(), Some(&note), "{status:?}");
        let record = last_record(log);
        assert_eq!(record.result, "applied", "{record:?}");
        let source = record.source.expect("the record names its source");
        assert_eq!(source.revision, Some(revision));
        assert_eq!(source.change.as_ref(), Some(&note), "node {}", node.id);
    }
    let (code, table) = fleet_status(&etcd, false);
    assert_eq!(code, EXIT_OK, "{table}");
    assert_eq!(
        table.lines().next(),
        Some(format!("key {KEY} at revision {revision}, pushed by alice@ops-1: {reason}").as_str()),
        "{table}"
    );
    let (_, json) = fleet_status(&etcd, true);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["change"]["author"], "alice@ops-1", "{json}");
    assert_eq!(json["nodes"][0]["change"]["reason"], reason, "{json}");

    // The operator's history of one node shows who and why.
    let (code, history) = run(
        &cli(RestartPolicy::Reject),
        Op::History {
            audit_log: nodes[0].1.clone(),
            verify: true,
        },
    );
    assert_eq!(code, EXIT_OK, "{history}");
    assert!(
        history.contains(&format!("    by alice@ops-1: {reason}")),
        "{history}"
    );

    // A value written by other means has no author, not the previous push's.
    let other = admin(&etcd).put(KEY, text("0.0.0.0:7000", 9)).unwrap();
    for (node, log) in &nodes {
        let status = node.wait_status(NodeResult::Applied, other);
        assert_eq!(status.change, None, "{status:?}");
        assert_eq!(last_record(log).source.unwrap().change, None);
    }
    let (_, table) = fleet_status(&etcd, false);
    assert_eq!(
        table.lines().next(),
        Some(format!("key {KEY} at revision {other}").as_str())
    );

    // Without --author, the author is USER@HOST; a reason that would forge a line is refused.
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(&etcd, file.clone(), None, None, None),
    );
    assert_eq!(code, EXIT_OK, "{out}");
    let by = out.lines().find_map(|l| l.strip_prefix("by ")).expect(&out);
    assert_eq!(by, ChangeNote::by_current_user().author, "{out}");
    let before = admin(&etcd).get(KEY).unwrap().unwrap().mod_revision;
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(&etcd, file, Some("ok\nnode-9  1  applied"), None, None),
    );
    assert_eq!(code, EXIT_INVALID, "{out}");
    assert!(
        out.starts_with("nothing pushed: --author/--reason: the reason holds a control character"),
        "{out}"
    );
    assert_eq!(admin(&etcd).get(KEY).unwrap().unwrap().mod_revision, before);
}

#[test]
fn a_node_layers_its_own_override_over_the_shared_value_and_fleet_status_lists_it() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let admin = admin(&etcd);
    admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    // node-2 starts with an override: only the field it changes.
    let own = admin
        .put(&format!("{KEY}/nodes/node-2"), "workers = 5\n")
        .unwrap();
    let start = |id: &str| {
        let source = EtcdSource::new(etcd.client(), KEY).node_override(id);
        Node::start_with(source, id, RestartPolicy::Reject, None)
    };
    let (one, two) = (start("node-1"), start("node-2"));
    let shared = admin.get(KEY).unwrap().unwrap().mod_revision;
    one.wait_status(NodeResult::Applied, shared);
    two.wait_status(NodeResult::Applied, own);
    assert_eq!((one.config().workers, two.config().workers), (2, 5));

    // An override pushed for node-1 is checked merged over the shared value; node-2 is untouched.
    let file = sandbox.write("one.toml", "workers = 7\n");
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(
            &etcd,
            file,
            Some("node-1 only"),
            Some("bob"),
            Some("node-1"),
        ),
    );
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("workers [workers]: 2 -> 7"), "{out}");
    assert!(
        out.contains(&format!("one.toml to {KEY}/nodes/node-1: revision")),
        "{out}"
    );
    let one_rev = pushed_revision(&out);
    let status = one.wait_status(NodeResult::Applied, one_rev);
    assert_eq!(
        status.change,
        Some(ChangeNote::new("bob").reason("node-1 only"))
    );
    assert_eq!(one.config().workers, 7);
    assert_eq!(two.config().workers, 5);
    assert_eq!(two.reloader.handle().generation(), 1, "node-2 reloaded");

    // A shared change reaches everyone; where an override sets the field, the override wins.
    let file = sandbox.write("shared.toml", &text("0.0.0.0:7000", 3));
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(&etcd, file, Some("three"), Some("carol"), None),
    );
    assert_eq!(code, EXIT_OK, "{out}");
    let shared = pushed_revision(&out);
    one.wait_status(NodeResult::Unchanged, shared);
    two.wait_status(NodeResult::Unchanged, shared);
    assert_eq!((one.config().workers, two.config().workers), (7, 5));

    // fleet-status lists the overrides and counts each node current at its own revision.
    let (code, table) = fleet_status(&etcd, false);
    assert_eq!(code, EXIT_OK, "{table}");
    assert!(
        table.contains(&format!(
            "overrides: node-1 (revision {one_rev}), node-2 (revision {own})"
        )),
        "{table}"
    );
    assert!(
        table.contains("2 node(s); 2 applied the current revision; converged"),
        "{table}"
    );

    // An override that fails validation merged is refused by push, nothing written; put there
    // by other means, node-2 refuses it naming the override's key and keeps its configuration.
    let bad = sandbox.write("bad.toml", "workers = 0\n");
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_op(&etcd, bad, Some("node-2 only"), Some("bob"), Some("node-2")),
    );
    assert_eq!(code, EXIT_INVALID, "{out}");
    // Located in the pushed file, merged over the shared value.
    assert!(
        out.contains("bad.toml:1: `workers`: must be at least 1"),
        "{out}"
    );
    let key_two = format!("{KEY}/nodes/node-2");
    assert_eq!(admin.get(&key_two).unwrap().unwrap().mod_revision, own);
    let forced = admin.put(&key_two, "workers = \"many\"\n").unwrap();
    let status = two.wait_status(NodeResult::Failed, forced);
    let error = status.error.unwrap_or_default();
    assert!(error.contains(&format!("etcd:{key_two}")), "{error}");
    assert_eq!(two.config().workers, 5);

    // Deleting the override returns node-2 to the shared value.
    let gone = admin.delete(&key_two).unwrap();
    eventually(
        "node-2 to run the shared value after its override is deleted",
        || match (two.config().workers, two.status()) {
            (3, Some(s)) if s.result == NodeResult::Applied => Ok(()),
            other => Err(format!("workers and report: {other:?} (deleted at {gone})")),
        },
    );
}
