//! Fleets on a real etcd: each test starts its own `etcd` (Debian's `etcd-server`, installed by
//! `scripts/install-deps`) on free loopback ports in a temporary data directory, runs nodes (an
//! engine on an `EtcdSource` plus an `EtcdFollower`) against it, and stops it at the end.
//!
//! Compiled with this crate's `etcd` feature, which `--all-features` (scripts/test) turns on:
//! `cargo test -p hotcfg-tests --features etcd --test integration fleet`.

use std::fs::File;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg::cli::{Cli, Command as Op, EXIT_CONFLICT, EXIT_OK, EXIT_REJECTED};
use hotcfg::etcd::{
    EtcdClient, EtcdFollower, EtcdOptions, EtcdSecurity, EtcdSource, FollowerOptions, NodeResult,
    NodeStatus, PreparedPush, PushError,
};
use hotcfg::{HotReload, Pipeline, ReloadResult, Reloader, RestartPolicy, Violations};
use hotcfg_tests::{Rendezvous, Sandbox};

mod catchup;
mod lkg;
mod notes;
mod revert;
mod secured;
mod waves;
mod waves_killed;

/// The longest any single condition is waited for.
const LIMIT: Duration = Duration::from_secs(15);
const KEY: &str = "apps/demo/config.toml";

// ---------------------------------------------------------------------------------------------
// A real etcd.

/// One etcd server in a temporary data directory, killed on drop.
struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// `https` when the server has TLS arguments.
    scheme: &'static str,
    /// Extra server arguments (TLS files).
    server_args: Vec<String>,
    /// How this test's clients reach it (TLS, user): plain by default.
    security: EtcdSecurity,
}

/// Two free loopback ports (held together while chosen, so they differ).
fn free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn etcd_binary() -> PathBuf {
    std::env::var_os("ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

impl Etcd {
    fn start() -> Etcd {
        Etcd::start_with(None)
    }

    /// Starts a server; with `tls`, serving clients over TLS with these arguments (certificate
    /// files), reached by this test's clients with `security`.
    fn start_with(tls: Option<(Vec<String>, EtcdSecurity)>) -> Etcd {
        let (client_port, peer_port) = free_ports();
        let (scheme, server_args, security) = match tls {
            Some((args, security)) => ("https", args, security),
            None => ("http", Vec::new(), EtcdSecurity::new()),
        };
        let mut etcd = Etcd {
            child: None,
            dir: tempfile::tempdir().expect("create a data directory"),
            client_port,
            peer_port,
            scheme,
            server_args,
            security,
        };
        etcd.run_on(client_port);
        etcd
    }

    /// A client of this server as this test's clients reach it.
    fn client(&self) -> EtcdClient {
        EtcdClient::with_security([self.endpoint()], fast(), self.security.clone()).unwrap()
    }

    fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Starts the server on the same data directory and peer port, serving clients on `port`,
    /// and waits until it answers.
    fn run_on(&mut self, port: u16) {
        assert!(self.child.is_none(), "etcd is already running");
        let client_url = format!("{}://127.0.0.1:{port}", self.scheme);
        let peer_url = format!("http://127.0.0.1:{}", self.peer_port);
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open the etcd log");
        let child = Command::new(etcd_binary())
            .arg("--name=fleet-test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=fleet-test={peer_url}"))
            .arg("--heartbeat-interval=20")
            .arg("--election-timeout=200")
            .args(&self.server_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {}: {e} (scripts/install-deps installs etcd-server)",
                    etcd_binary().display()
                )
            });
        self.child = Some(child);
        self.wait_ready(port);
    }

    /// Polls a client until the server answers a read, or fails naming what it waited for.
    fn wait_ready(&mut self, port: u16) {
        let endpoint = format!("127.0.0.1:{port}");
        let client =
            EtcdClient::with_security([endpoint.clone()], fast(), self.security.clone()).unwrap();
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < LIMIT {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "etcd exited ({status}) before answering at {endpoint}; log:\n{}",
                    self.log_tail()
                );
            }
            match client.revision() {
                Ok(_) => return,
                Err(err) => last = err.to_string(),
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "timed out after {LIMIT:?} waiting for etcd to answer a read at {endpoint} (last: \
             {last}); log:\n{}",
            self.log_tail()
        );
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Short timeouts, so waits on a stopped etcd stay short.
fn fast() -> EtcdOptions {
    EtcdOptions::default()
        .connect_timeout(Duration::from_millis(500))
        .request_timeout(Duration::from_secs(2))
        .keep_alive(Duration::from_secs(1))
}

// ---------------------------------------------------------------------------------------------
// Nodes.

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
struct NodeConfig {
    /// Where the node listens: moving it needs a restart.
    #[reload(restart)]
    listen: String,
    /// Worker threads, resized live.
    #[reload(scope = "workers")]
    workers: u32,
}

fn validate(config: &NodeConfig, v: &mut Violations) {
    if config.workers == 0 {
        v.push("workers", "must be at least 1");
    }
}

fn text(listen: &str, workers: u32) -> String {
    format!("listen = \"{listen}\"\nworkers = {workers}\n")
}

/// One member of the fleet: an engine on the key and its follower.
struct Node {
    id: String,
    reloader: Reloader<NodeConfig>,
    follower: EtcdFollower,
    client: EtcdClient,
}

impl Node {
    fn start(etcd: &Etcd, id: &str, policy: RestartPolicy) -> Node {
        Node::start_with(EtcdSource::new(etcd.client(), KEY), id, policy, None)
    }

    /// A node on `source`, recording its reloads in `audit_log` when given.
    fn start_with(
        source: EtcdSource,
        id: &str,
        policy: RestartPolicy,
        audit_log: Option<&std::path::Path>,
    ) -> Node {
        let mut builder = Reloader::<NodeConfig>::builder(source.clone())
            .validator(validate)
            .policy(policy)
            .on_apply("workers", |_| Ok(()));
        if let Some(path) = audit_log {
            builder = builder.audit_log(path);
        }
        let reloader = builder
            .build()
            .unwrap_or_else(|e| panic!("node {id} cannot start: {e}"));
        Node::follow(&source, id, reloader)
    }

    /// A node on `reloader` (built on `source`), following `source`.
    fn follow(source: &EtcdSource, id: &str, reloader: Reloader<NodeConfig>) -> Node {
        let client = source.client().clone();
        let follower = EtcdFollower::start(
            &reloader,
            source,
            FollowerOptions::new(id)
                .lease_ttl(Duration::from_secs(5))
                .backoff(Duration::from_millis(50), Duration::from_millis(500)),
        );
        Node {
            id: id.to_string(),
            reloader,
            follower,
            client,
        }
    }

    fn config(&self) -> NodeConfig {
        self.reloader.handle().snapshot().config().clone()
    }

    /// This node's report, as stored in etcd (`None` when absent or etcd is down).
    fn status(&self) -> Option<NodeStatus> {
        let key = self.follower.status_key().unwrap();
        let entry = self.client.get(key).ok()??;
        Some(serde_json::from_slice(&entry.value).expect("a status report is JSON"))
    }

    /// Waits until this node reports `result` for `revision`, and returns the report.
    fn wait_status(&self, result: NodeResult, revision: i64) -> NodeStatus {
        eventually(
            &format!("node {} to report {result} at revision {revision}", self.id),
            || match self.status() {
                Some(s) if s.result == result && s.revision == Some(revision) => Ok(s),
                other => Err(format!("last report: {other:?}")),
            },
        )
    }
}

fn start_nodes(etcd: &Etcd, count: usize, policy: RestartPolicy) -> Vec<Node> {
    let nodes: Vec<Node> = (1..=count)
        .map(|i| Node::start(etcd, &format!("node-{i}"), policy))
        .collect();
    let revision = admin(etcd).get(KEY).unwrap().unwrap().mod_revision;
    for node in &nodes {
        node.wait_status(NodeResult::Applied, revision);
    }
    nodes
}

fn admin(etcd: &Etcd) -> EtcdClient {
    etcd.client()
}

/// Polls `check` every 20 ms for at most [`LIMIT`] until it gives `Ok`; on timeout panics with
/// `what` and the state the last `Err` described.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(state) if start.elapsed() > LIMIT => {
                panic!("timed out after {LIMIT:?} waiting for {what}; {state}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// `Ok` when `condition` holds, else `Err` with `state` for the timeout message.
fn holds(condition: bool, state: impl std::fmt::Debug) -> Result<(), String> {
    if condition {
        Ok(())
    } else {
        Err(format!("now: {state:?}"))
    }
}

/// Runs an operator command; returns its exit code and output.
fn run(cli: &Cli<NodeConfig>, command: Op) -> (u8, String) {
    let mut out = Vec::new();
    let code = cli.run(&command, &mut out);
    (code, String::from_utf8(out).unwrap())
}

fn push(etcd: &Etcd, file: PathBuf, expect_revision: Option<i64>) -> Op {
    Op::Push {
        file,
        etcd: etcd.endpoint(),
        access: Default::default(),
        key: KEY.to_string(),
        expect_revision,
        dry_run: false,
        reason: None,
        author: None,
        node: None,
        waves: Default::default(),
    }
}

/// `fleet-status` of [`KEY`], reaching etcd with `access`.
fn fleet_status_op(etcd: &Etcd, access: hotcfg::cli::EtcdAccess, json: bool) -> Op {
    Op::FleetStatus {
        etcd: etcd.endpoint(),
        access,
        key: KEY.to_string(),
        status_prefix: None,
        expect: Vec::new(),
        expect_count: None,
        json,
    }
}

fn cli(policy: RestartPolicy) -> Cli<NodeConfig> {
    Cli::from(Pipeline::new().validator(validate).policy(policy))
}

/// The revision a push output reports (`pushed ... : revision N`).
fn pushed_revision(output: &str) -> i64 {
    output
        .lines()
        .find_map(|l| {
            l.strip_prefix("pushed ")?
                .rsplit_once(": revision ")?
                .1
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `pushed ...: revision N` line in:\n{output}"))
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[test]
fn a_pushed_hot_change_reaches_every_node_and_each_reports_it_applied() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let admin = admin(&etcd);
    let first = admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let mut nodes = start_nodes(&etcd, 3, RestartPolicy::Reject);
    for node in &nodes {
        let status = node.status().unwrap();
        assert_eq!(status.revision, Some(first), "{status:?}");
        assert_eq!(node.config().workers, 2);
    }

    // A dry run plans against the value in etcd and writes nothing.
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 8));
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        Op::Push {
            file: file.clone(),
            etcd: etcd.endpoint(),
            access: Default::default(),
            key: KEY.to_string(),
            expect_revision: None,
            dry_run: true,
            reason: None,
            author: None,
            node: None,
            waves: Default::default(),
        },
    );
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(
        out.contains(&format!("planned against: etcd:{KEY} at revision {first}")),
        "{out}"
    );
    assert!(out.contains("workers [workers]: 2 -> 8"), "{out}");
    assert!(out.contains("dry run: nothing written"), "{out}");
    assert_eq!(admin.get(KEY).unwrap().unwrap().mod_revision, first);

    let (code, out) = run(&cli(RestartPolicy::Reject), push(&etcd, file, Some(first)));
    assert_eq!(code, EXIT_OK, "{out}");
    let revision = pushed_revision(&out);
    for node in &nodes {
        let status = node.wait_status(NodeResult::Applied, revision);
        assert_eq!(node.config().workers, 8, "node {}", node.id);
        assert_eq!(status.node, node.id);
        assert_eq!(status.generation, 2, "{status:?}");
        assert!(status.error.is_none() && status.pending_restart.is_empty());
        let event = node.reloader.last_event();
        assert_eq!(event.source.as_ref().unwrap().revision, Some(revision));
        assert!(
            event.trigger.to_string().starts_with("remote etcd"),
            "{}",
            event.trigger
        );
    }

    // The operator's table: every node at the pushed revision; exit 0 when converged.
    let fleet_status = || {
        run(
            &cli(RestartPolicy::Reject),
            fleet_status_op(&etcd, Default::default(), false),
        )
    };
    let (code, table) = fleet_status();
    assert_eq!(code, EXIT_OK, "{table}");
    assert!(
        table.contains(&format!("key {KEY} at revision {revision}")),
        "{table}"
    );
    assert!(
        table.contains("NODE    REVISION  RESULT   WATCH     PENDING RESTART  ERROR"),
        "{table}"
    );
    for node in &nodes {
        let row = table
            .lines()
            .find(|l| l.starts_with(&node.id))
            .unwrap_or_else(|| panic!("no row for {} in\n{table}", node.id));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                node.id.as_str(),
                &revision.to_string(),
                "applied",
                "watching",
                "-",
                "-"
            ]
        );
    }
    assert!(
        table.contains("3 node(s); 3 applied the current revision; converged"),
        "{table}"
    );

    // A node that leaves takes its report with it: `shutdown` returns once the lease is revoked
    // (a crash lets it expire). Checked at once: expiry would remove it a few seconds later too
    // (cargo-mutants, issue 22: `revoke` replaced by `()` and a deadline already past survived).
    let gone = nodes.pop().unwrap();
    let key = gone.follower.status_key().unwrap().to_string();
    gone.follower.shutdown(LIMIT);
    let entry = admin.get(&key).unwrap();
    assert!(entry.is_none(), "still reported after shutdown: {entry:?}");
    let (code, table) = fleet_status();
    assert_eq!(code, EXIT_OK, "{table}");
    assert!(
        table.contains("2 node(s)") && !table.contains("node-3"),
        "{table}"
    );

    // Dropping a follower stops it too: its report goes.
    let dropped = nodes.pop().unwrap();
    let key = dropped.follower.status_key().unwrap().to_string();
    drop(dropped);
    eventually("the dropped node's status key to disappear", || {
        let entry = admin.get(&key).unwrap();
        holds(entry.is_none(), entry)
    });
}

#[test]
fn a_restart_only_push_is_rejected_or_deferred_by_every_node_which_says_so() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let admin = admin(&etcd);
    let before = admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let rejecting = start_nodes(&etcd, 3, RestartPolicy::Reject);

    // Under the reject policy: written (it is the desired state), with a warning and exit 3.
    let file = sandbox.write("moved.toml", &text("0.0.0.0:8000", 2));
    let (code, out) = run(&cli(RestartPolicy::Reject), push(&etcd, file, None));
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(
        out.contains("listen [restart]: \"0.0.0.0:7000\" -> \"0.0.0.0:8000\""),
        "{out}"
    );
    let revision = pushed_revision(&out);
    assert!(
        out.contains(&format!(
            "warning: nodes running revision {before} with the reject policy will refuse \
             revision {revision} (1 change(s) need a restart: listen)"
        )),
        "{out}"
    );
    for node in &rejecting {
        let status = node.wait_status(NodeResult::Rejected, revision);
        let error = status.error.as_deref().unwrap();
        assert!(error.contains("listen"), "{error}");
        assert_eq!(
            node.config().listen,
            "0.0.0.0:7000",
            "node {} kept it",
            node.id
        );
        assert!(matches!(
            node.reloader.last_event().result,
            ReloadResult::Rejected { .. }
        ));
    }
    let (code, table) = run(
        &cli(RestartPolicy::Reject),
        Op::FleetStatus {
            etcd: etcd.endpoint(),
            access: Default::default(),
            key: KEY.to_string(),
            status_prefix: None,
            expect: Vec::new(),
            expect_count: None,
            json: false,
        },
    );
    assert_eq!(code, hotcfg::cli::EXIT_NOT_CONVERGED, "{table}");
    assert!(
        table.contains("rejected") && table.contains("not converged"),
        "{table}"
    );

    // A push plans against the value in etcd; it also says which nodes run something else.
    let back = sandbox.write("back.toml", &text("0.0.0.0:7000", 2));
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        Op::Push {
            file: back,
            etcd: etcd.endpoint(),
            access: Default::default(),
            key: KEY.to_string(),
            expect_revision: None,
            dry_run: true,
            reason: None,
            author: None,
            node: None,
            waves: Default::default(),
        },
    );
    assert_eq!(code, EXIT_REJECTED, "{out}");
    assert!(
        out.contains(&format!(
            "note: 3 of 3 node(s) do not run revision {revision}: node-1 (rejected at revision \
             {revision}), node-2 (rejected at revision {revision}), node-3 (rejected at revision \
             {revision}); each node diffs against its own live configuration"
        )),
        "{out}"
    );
    drop(rejecting);

    // Under the defer policy the same kind of change is accepted and reported pending restart,
    // together with a hot change that is applied at once.
    admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let deferring = start_nodes(&etcd, 3, RestartPolicy::Defer);
    let file = sandbox.write("moved-and-more.toml", &text("0.0.0.0:9000", 5));
    let (code, out) = run(&cli(RestartPolicy::Defer), push(&etcd, file, None));
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("deferred until restart: listen"), "{out}");
    let revision = pushed_revision(&out);
    for node in &deferring {
        let status = node.wait_status(NodeResult::Applied, revision);
        assert_eq!(status.pending_restart, ["listen"], "{status:?}");
        assert!(
            status
                .warnings
                .iter()
                .any(|w| w.contains("deferred until restart: listen")),
            "{status:?}"
        );
        let config = node.config();
        assert_eq!(
            (config.listen.as_str(), config.workers),
            ("0.0.0.0:7000", 5)
        );
    }
    let (code, table) = run(
        &cli(RestartPolicy::Defer),
        Op::FleetStatus {
            etcd: etcd.endpoint(),
            access: Default::default(),
            key: KEY.to_string(),
            status_prefix: None,
            expect: Vec::new(),
            expect_count: None,
            json: false,
        },
    );
    assert_eq!(code, EXIT_OK, "{table}");
    for node in &deferring {
        let row = table.lines().find(|l| l.starts_with(&node.id)).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                node.id.as_str(),
                &revision.to_string(),
                "applied",
                "watching",
                "listen",
                "-"
            ]
        );
    }
}

#[test]
fn an_invalid_value_is_refused_by_every_node_which_keeps_its_config_and_reports_the_error() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes = start_nodes(&etcd, 3, RestartPolicy::Reject);

    // Broken syntax, written directly into etcd (no push to check it first).
    let broken = admin
        .put(KEY, "listen = \"0.0.0.0:7000\"\nworkers = [\n")
        .unwrap();
    for node in &nodes {
        let status = node.wait_status(NodeResult::Failed, broken);
        let error = status.error.unwrap();
        // toml 1.x points at the unclosed `[` (line 2), toml_edit pointed at the end (line 3).
        assert!(error.contains(&format!("etcd:{KEY}:2:")), "{error}");
        assert!(error.contains("invalid TOML"), "{error}");
        assert_eq!(node.config().workers, 2, "node {} kept its config", node.id);
        assert_eq!(node.reloader.handle().generation(), 1);
    }

    // A value that parses but breaks a validation rule.
    let invalid = admin.put(KEY, text("0.0.0.0:7000", 0)).unwrap();
    for node in &nodes {
        let status = node.wait_status(NodeResult::Failed, invalid);
        let error = status.error.unwrap();
        assert!(error.contains("`workers`: must be at least 1"), "{error}");
        assert_eq!(node.config().workers, 2);
    }

    // The key deleted: nothing to read, the config stays, the error is reported.
    let deleted = admin.delete(KEY).unwrap();
    for node in &nodes {
        let status = node.wait_status(NodeResult::Failed, deleted);
        assert!(
            status.error.unwrap().contains("does not exist"),
            "node {}",
            node.id
        );
        assert_eq!(node.config().workers, 2);
    }

    // The next good value is applied everywhere.
    let good = admin.put(KEY, text("0.0.0.0:7000", 3)).unwrap();
    for node in &nodes {
        node.wait_status(NodeResult::Applied, good);
        assert_eq!(node.config().workers, 3);
    }

    // push refuses an invalid file before touching etcd.
    let sandbox = Sandbox::new();
    let file = sandbox.write("bad.toml", &text("0.0.0.0:7000", 0));
    let (code, out) = run(&cli(RestartPolicy::Reject), push(&etcd, file, None));
    assert_eq!(code, hotcfg::cli::EXIT_INVALID, "{out}");
    assert!(
        out.contains("nothing pushed") && out.contains("bad.toml:2"),
        "{out}"
    );
    assert_eq!(admin.get(KEY).unwrap().unwrap().mod_revision, good);
}

#[test]
fn nodes_keep_serving_through_an_etcd_restart_then_catch_up_with_changes_made_meanwhile() {
    let mut etcd = Etcd::start();
    let admin = admin(&etcd);
    let first = admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes = start_nodes(&etcd, 3, RestartPolicy::Reject);

    etcd.stop();
    for node in &nodes {
        eventually(&format!("node {} to notice etcd is gone", node.id), || {
            let stats = node.follower.stats();
            holds(!stats.connected, stats)
        });
        // Still serving; an explicit reload fails and changes nothing.
        let event = node.reloader.reload_now();
        assert!(
            matches!(&event.result, ReloadResult::Failed { error, .. }
                if error.to_string().contains("cannot reach etcd")),
            "{event}"
        );
        assert_eq!(node.config().workers, 2);
        assert_eq!(node.reloader.handle().generation(), 1);
    }

    // A change the nodes cannot see: etcd serves clients on another port for a while (same data
    // directory), then comes back where the nodes look for it.
    let (elsewhere, _) = free_ports();
    etcd.run_on(elsewhere);
    let other = EtcdClient::with_options([format!("127.0.0.1:{elsewhere}")], fast()).unwrap();
    let changed = other.put(KEY, text("0.0.0.0:7000", 6)).unwrap();
    assert!(changed > first);
    etcd.stop();
    for node in &nodes {
        assert_eq!(node.config().workers, 2, "node {} saw nothing yet", node.id);
    }
    let port = etcd.client_port;
    etcd.run_on(port);

    for node in &nodes {
        node.wait_status(NodeResult::Applied, changed);
        assert_eq!(node.config().workers, 6, "node {}", node.id);
        let stats = node.follower.stats();
        assert!(stats.disconnects >= 1, "{stats:?}");
        assert_eq!(stats.resyncs, 0, "resumed from its revision: {stats:?}");
        assert!(stats.connected && stats.revision == changed, "{stats:?}");
        // Its Debug shows where it reports and the same figures (cargo-mutants, issue 22).
        let shown = format!("{:?}", node.follower);
        let expected = format!(
            "EtcdFollower {{ status_key: Some(\"{KEY}/status/{}\")",
            node.id
        );
        assert!(shown.starts_with(&expected), "{shown}");
        assert!(shown.contains(&format!("revision: {changed}")), "{shown}");
    }
}

#[test]
fn a_node_whose_revision_was_compacted_reads_afresh_and_converges() {
    let etcd = Etcd::start();
    let admin = admin(&etcd);
    admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes = start_nodes(&etcd, 2, RestartPolicy::Reject);
    let (held, live) = (&nodes[0], &nodes[1]);

    assert!(!held.follower.is_paused());
    held.follower.pause();
    assert!(held.follower.is_paused());
    eventually("the paused follower to drop its watch", || {
        let stats = held.follower.stats();
        holds(!stats.connected, stats)
    });
    let seen = held.follower.stats().revision;
    admin.put(KEY, text("0.0.0.0:7000", 3)).unwrap();
    let newest = admin.put(KEY, text("0.0.0.0:7000", 4)).unwrap();
    live.wait_status(NodeResult::Applied, newest);
    admin.compact(newest).unwrap();
    assert!(seen < newest);
    assert_eq!(held.config().workers, 2, "a paused node holds its config");

    held.follower.resume();
    assert!(!held.follower.is_paused());
    let status = held.wait_status(NodeResult::Applied, newest);
    assert_eq!(held.config().workers, 4);
    assert_eq!(
        status.generation, 2,
        "one reload to the newest value: {status:?}"
    );
    let stats = held.follower.stats();
    assert_eq!(stats.resyncs, 1, "{stats:?}");

    // It keeps following after the fresh read.
    let after = admin.put(KEY, text("0.0.0.0:7000", 7)).unwrap();
    for node in &nodes {
        node.wait_status(NodeResult::Applied, after);
        assert_eq!(node.config().workers, 7);
    }
}

#[test]
fn of_two_pushes_planned_against_the_same_revision_one_is_written_the_other_refused() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let admin = admin(&etcd);
    let base = admin.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes = start_nodes(&etcd, 3, RestartPolicy::Reject);
    let alice = sandbox.write("alice.toml", &text("0.0.0.0:7000", 10));
    let bob = sandbox.write("bob.toml", &text("0.0.0.0:7000", 20));

    // Both plan against `base`, then both write: the compare-and-swap lets exactly one through.
    let client = hotcfg::etcd::EtcdClient::new([etcd.endpoint()]).unwrap();
    let planner = cli(RestartPolicy::Reject);
    let a = PreparedPush::prepare(planner.pipeline(), &alice, &client, KEY).unwrap();
    let b = PreparedPush::prepare(planner.pipeline(), &bob, &client, KEY).unwrap();
    assert_eq!((a.revision, b.revision), (base, base));
    let written = a.commit(&client).unwrap();
    let refused = b.commit(&client).unwrap_err();
    assert_eq!(
        refused,
        PushError::Conflict {
            key: KEY.to_string(),
            planned: base,
            current: written,
        }
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "push refused: {KEY} changed since revision {base}, the revision this push was \
             planned against: it is now at revision {written} (another operator pushed first); \
             nothing was written. Run push again to plan against the current value."
        )
    );
    assert_eq!(refused.exit_code(), EXIT_CONFLICT);
    for node in &nodes {
        node.wait_status(NodeResult::Applied, written);
        assert_eq!(node.config().workers, 10, "alice's value, not bob's");
    }

    // The same race through the command, both operators at once with the revision they reviewed.
    let reviewed = written;
    let carol = sandbox.write("carol.toml", &text("0.0.0.0:7000", 30));
    let dave = sandbox.write("dave.toml", &text("0.0.0.0:7000", 40));
    let barrier = Arc::new(Rendezvous::new(2));
    let results: Vec<(u8, String)> = [carol, dave]
        .into_iter()
        .map(|file| {
            let barrier = Arc::clone(&barrier);
            let command = push(&etcd, file, Some(reviewed));
            std::thread::spawn(move || {
                barrier.wait("the other operator's push to be ready");
                run(&cli(RestartPolicy::Reject), command)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    let codes: Vec<u8> = results.iter().map(|(c, _)| *c).collect();
    assert!(
        codes == [EXIT_OK, EXIT_CONFLICT] || codes == [EXIT_CONFLICT, EXIT_OK],
        "{results:#?}"
    );
    let (_, winner) = results.iter().find(|(c, _)| *c == EXIT_OK).unwrap();
    let (_, loser) = results.iter().find(|(c, _)| *c == EXIT_CONFLICT).unwrap();
    let final_revision = pushed_revision(winner);
    assert!(
        loser.contains(&format!(
            "push refused: {KEY} changed since revision {reviewed}"
        )) && loser.contains(&format!("it is now at revision {final_revision}"))
            && loser.contains("nothing was written"),
        "{loser}"
    );
    let expected = if winner.contains("carol.toml") {
        30
    } else {
        40
    };
    for node in &nodes {
        node.wait_status(NodeResult::Applied, final_revision);
        assert_eq!(node.config().workers, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// The task daemon as a fleet member.

/// A child process killed on drop.
struct Running(Child);

impl Running {
    /// Waits for the daemon's `taskdaemon listening on ADDR` line (its stdout piped) and returns
    /// ADDR; the rest of its output is drained.
    fn listening(&mut self) -> String {
        use std::io::{BufRead, BufReader};

        let mut stdout = BufReader::new(self.0.stdout.take().expect("stdout is piped"));
        let mut printed = Vec::new();
        let addr = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("the daemon exited before listening; it printed {printed:?}");
            }
            if let Some(addr) = line.trim().strip_prefix("taskdaemon listening on ") {
                break addr.to_string();
            }
            printed.push(line);
        };
        std::thread::spawn(move || for _ in stdout.lines() {});
        addr
    }
}

impl Running {
    /// Starts the task daemon as node `node` of the fleet on `key` at `endpoint`, with `extra`
    /// flags, in `dir`; returns it once it listens, and its address.
    fn taskdaemon(
        endpoint: &str,
        key: &str,
        node: &str,
        extra: impl IntoIterator<Item = impl AsRef<std::ffi::OsStr>>,
        dir: &std::path::Path,
    ) -> (Running, String) {
        let mut daemon = Running(
            Command::new(crate::daemon::binary())
                .args(["--etcd", endpoint, "--key", key, "--node-id", node])
                .args(extra)
                .current_dir(dir)
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("start taskdaemon"),
        );
        let addr = daemon.listening();
        (daemon, addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request of the daemon's HTTP API on a fresh connection with the token.
fn ask(addr: &str, command: &str) -> serde_json::Value {
    hotcfg_tests::daemon::Client::with_token(addr, "t0ps3cret").call(command)
}

#[test]
fn the_task_daemon_runs_from_etcd_takes_pushes_and_leaves_the_status_view_when_stopped() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let admin = admin(&etcd);
    let key = "taskdaemon/config";
    let first = admin.put(key, crate::daemon::config(2, 10)).unwrap();
    let binary = crate::daemon::binary();
    let endpoint = etcd.endpoint();

    let (mut daemon, addr) = Running::taskdaemon(&endpoint, key, "td-1", [""; 0], sandbox.dir());

    let status_key = format!("{key}/status/td-1");
    let report = |result: NodeResult, revision: i64| {
        eventually(&format!("td-1 to report {result} at {revision}"), || {
            let status: Option<NodeStatus> = admin
                .get(&status_key)
                .unwrap()
                .map(|e| serde_json::from_slice(&e.value).unwrap());
            match status {
                Some(s) if s.result == result && s.revision == Some(revision) => Ok(s),
                other => Err(format!("last report: {other:?}")),
            }
        })
    };
    report(NodeResult::Applied, first);
    assert_eq!(ask(&addr, "config")["limits"]["max_concurrent"], 2);

    // The daemon's own operator commands talk to etcd.
    let command = |args: &[&str]| {
        let output = Command::new(binary)
            .args(args)
            .current_dir(sandbox.dir())
            .output()
            .expect("run a taskdaemon command");
        (
            output.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    let file = sandbox.write("new.toml", &crate::daemon::config(5, 10));
    let (code, out) = command(&[
        "push",
        file.to_str().unwrap(),
        "--etcd",
        &endpoint,
        "--key",
        key,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("limits.max_concurrent [limits]: 2 -> 5"),
        "{out}"
    );
    let revision = pushed_revision(&out);
    let status = report(NodeResult::Applied, revision);
    assert_eq!(status.generation, 2, "{status:?}");
    assert_eq!(ask(&addr, "config")["limits"]["max_concurrent"], 5);

    let (code, table) = command(&["fleet-status", "--etcd", &endpoint, "--key", key]);
    assert_eq!(code, 0, "{table}");
    assert!(
        table.contains("td-1") && table.contains("converged"),
        "{table}"
    );

    // SIGTERM: the daemon stops cleanly and revokes its lease; its report goes at once.
    let pid = daemon.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let exit = eventually("the daemon to exit after SIGTERM", || {
        daemon
            .0
            .try_wait()
            .unwrap()
            .ok_or_else(|| "still running".to_string())
    });
    assert!(exit.success(), "{exit}");
    assert!(
        admin.get(&status_key).unwrap().is_none(),
        "the report outlived the daemon"
    );
    let (code, table) = command(&["fleet-status", "--etcd", &endpoint, "--key", key]);
    assert_eq!(code, 6, "{table}");
    assert!(
        table.contains("no node reports under taskdaemon/config/status/"),
        "{table}"
    );
}
