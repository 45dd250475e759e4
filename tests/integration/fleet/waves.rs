//! Issue 18: staged rollouts in waves on a real etcd, five nodes each: a rollout that completes;
//! one halted by a node whose validation refuses the candidate (a NACK); one halted by a node
//! whose probation finds it unhealthy; one halted by a wave timeout; a pusher that dies
//! mid-rollout, then another resumes it, or aborts it.

use std::path::PathBuf;
use std::time::Duration;

use hotcfg::cli::{Command as Op, WaveArgs, EXIT_CONFLICT, EXIT_HALTED, EXIT_OK};
use hotcfg::etcd::{EtcdSource, NodeResult, PreparedPush, Rollout, RolloutPhase, WaveSize};
use hotcfg::{Health, Pipeline, Probe, ReloaderBuilder, RestartPolicy, Violations};
use hotcfg_tests::Sandbox;

use super::{admin, cli, eventually, holds, run, text, validate, Etcd, Node, NodeConfig, KEY};

/// A wave's time to pass in these tests: failures halt at once, only the timeout test waits.
const WAVE_TIMEOUT: Duration = Duration::from_secs(10);

/// A node that takes part in rollouts (its source names it), built with `setup`.
fn wave_node(
    etcd: &Etcd,
    id: &str,
    setup: impl FnOnce(ReloaderBuilder<NodeConfig>) -> ReloaderBuilder<NodeConfig>,
) -> Node {
    let source = EtcdSource::new(etcd.client(), KEY).for_node(id);
    let builder = hotcfg::Reloader::<NodeConfig>::builder(source.clone())
        .validator(validate)
        .policy(RestartPolicy::Reject)
        .on_apply("workers", |_| Ok(()));
    let reloader = setup(builder)
        .build()
        .unwrap_or_else(|e| panic!("node {id} cannot start: {e}"));
    Node::follow(&source, id, reloader)
}

/// Five nodes on the stable value (workers 2), `setup(i)` for node-i; waits until all report it.
fn five_nodes(
    etcd: &Etcd,
    setup: impl Fn(usize, ReloaderBuilder<NodeConfig>) -> ReloaderBuilder<NodeConfig>,
) -> (Vec<Node>, i64) {
    let stable = admin(etcd).put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let nodes: Vec<Node> = (1..=5)
        .map(|i| wave_node(etcd, &format!("node-{i}"), |b| setup(i, b)))
        .collect();
    for node in &nodes {
        node.wait_status(NodeResult::Applied, stable);
    }
    (nodes, stable)
}

/// `push FILE --waves SIZES` (or, without a file, `--resume`/`--abort` as `waves` says).
fn push_waves(etcd: &Etcd, file: PathBuf, waves: WaveArgs) -> Op {
    let mut op = super::push(etcd, file, None);
    if let Op::Push {
        reason,
        author,
        waves: slot,
        ..
    } = &mut op
    {
        *reason = Some("more workers".into());
        *author = Some("alice".into());
        *slot = waves;
    }
    op
}

fn waves(sizes: &str) -> WaveArgs {
    WaveArgs {
        waves: Some(sizes.into()),
        wave_timeout: Some(WAVE_TIMEOUT),
        ..Default::default()
    }
}

fn workers(nodes: &[Node]) -> Vec<u32> {
    nodes.iter().map(|n| n.config().workers).collect()
}

fn generations(nodes: &[Node]) -> Vec<u64> {
    nodes
        .iter()
        .map(|n| n.reloader.handle().generation())
        .collect()
}

/// Waits until every node runs `expected` workers.
fn wait_workers(nodes: &[Node], expected: &[u32]) {
    eventually(&format!("the nodes to run workers {expected:?}"), || {
        let now = workers(nodes);
        holds(now == expected, now)
    });
}

/// What `push` does to the running rollout.
enum Act {
    Resume,
    Abort,
}

/// `push --resume` or `push --abort` of the rollout of [`KEY`].
fn on_running(etcd: &Etcd, act: Act) -> (u8, String) {
    let args = WaveArgs {
        resume: matches!(act, Act::Resume),
        abort: matches!(act, Act::Abort),
        wave_timeout: Some(WAVE_TIMEOUT),
        ..Default::default()
    };
    run(
        &cli(RestartPolicy::Reject),
        push_waves(etcd, PathBuf::new(), args),
    )
}

/// The row of `node` in a rollout's per-node table.
fn row<'a>(out: &'a str, node: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(&format!("{node} ")))
        .unwrap_or_else(|| panic!("no row for {node} in:\n{out}"))
}

#[test]
fn a_three_wave_rollout_reaches_every_node_once_then_becomes_the_keys_value() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, stable) = five_nodes(&etcd, |_, b| b);
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));

    // A dry run shows the waves and writes nothing.
    let mut dry = push_waves(&etcd, file.clone(), waves("1,25%,100%"));
    if let Op::Push { dry_run, .. } = &mut dry {
        *dry_run = true;
    }
    let (code, out) = run(&cli(RestartPolicy::Reject), dry);
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("wave 1 of 3: node-1\nwave 2 of 3: node-2\nwave 3 of 3: node-3, node-4, node-5\ndry run: nothing written"), "{out}");
    assert_eq!(admin(&etcd).get(&format!("{KEY}/rollout")).unwrap(), None);

    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_waves(&etcd, file, waves("1,25%,100%")),
    );
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("3 wave(s) over 5 node(s)"), "{out}");
    assert!(
        out.contains("wave 1 of 3: node-1 run the candidate"),
        "{out}"
    );
    assert!(
        out.contains("wave 2 of 3: node-2 run the candidate"),
        "{out}"
    );
    assert!(
        out.contains("wave 3 of 3: node-3, node-4, node-5 run the candidate"),
        "{out}"
    );
    for i in 1..=5 {
        assert!(row(&out, &format!("node-{i}")).contains("passed"), "{out}");
    }
    let done: i64 = out
        .lines()
        .filter(|l| l.starts_with("rollout ") && l.contains(" done: "))
        .find_map(|l| l.split("at revision ").nth(1)?.parse().ok())
        .unwrap_or_else(|| panic!("no final revision in:\n{out}"));
    assert!(done > stable);

    // The candidate became the key's value; nodes find it unchanged: one apply each.
    for node in &nodes {
        let status = node.wait_status(NodeResult::Unchanged, done);
        assert_eq!(
            status.change.as_ref().map(|c| c.author.as_str()),
            Some("alice")
        );
    }
    assert_eq!(workers(&nodes), [4; 5]);
    assert_eq!(generations(&nodes), [2; 5], "one apply per node");
    let client = admin(&etcd);
    assert_eq!(client.get(&format!("{KEY}/rollout")).unwrap(), None);
    assert_eq!(
        client.get(&format!("{KEY}/rollout/candidate")).unwrap(),
        None
    );
    let (code, table) = run(
        &cli(RestartPolicy::Reject),
        super::fleet_status_op(&etcd, Default::default(), false),
    );
    assert_eq!(code, EXIT_OK, "{table}");
}

#[test]
fn a_node_whose_validation_refuses_the_candidate_halts_the_rollout_and_its_wave_returns_to_stable()
{
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    // node-3 allows at most 3 workers: it refuses the candidate (a NACK).
    let (nodes, stable) = five_nodes(&etcd, |i, b| match i {
        3 => b.validator(|c: &NodeConfig, v: &mut Violations| {
            if c.workers > 3 {
                v.push("workers", "node-3 runs at most 3");
            }
        }),
        _ => b,
    });
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));

    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_waves(&etcd, file, waves("1,3,100%")),
    );
    assert_eq!(code, EXIT_HALTED, "{out}");
    assert!(
        out.contains("halted at wave 2 of 3: node-3 failed:"),
        "{out}"
    );
    assert!(row(&out, "node-3").contains("2     failed"), "{out}");
    assert!(
        row(&out, "node-3").contains("node-3 runs at most 3"),
        "{out}"
    );
    assert!(row(&out, "node-1").contains("passed"), "{out}");
    assert!(row(&out, "node-4").contains("not admitted"), "{out}");

    // The admitted nodes return to the stable value; the others were never touched.
    wait_workers(&nodes, &[2, 2, 2, 2, 2]);
    assert_eq!(
        generations(&nodes)[3..],
        [1, 1],
        "node-4 and node-5 untouched"
    );
    for node in &nodes[..2] {
        node.wait_status(NodeResult::Applied, stable);
    }
    // fleet-status shows the halt; a plain push after it is allowed and clears it.
    let (_, table) = run(
        &cli(RestartPolicy::Reject),
        super::fleet_status_op(&etcd, Default::default(), false),
    );
    assert!(
        table.contains(" halted at wave 2 of 3: node-3 failed: invalid configuration: "),
        "{table}"
    );
    assert!(
        table.contains(&format!(
            "; every node runs the stable revision {stable}; by alice"
        )),
        "{table}"
    );
    let file = sandbox.write("three.toml", &text("0.0.0.0:7000", 3));
    let (code, out) = run(&cli(RestartPolicy::Reject), super::push(&etcd, file, None));
    assert_eq!(code, EXIT_OK, "{out}");
    assert_eq!(admin(&etcd).get(&format!("{KEY}/rollout")).unwrap(), None);
    wait_workers(&nodes, &[3, 3, 3, 3, 3]);
}

#[test]
fn a_node_unhealthy_during_its_probation_halts_the_wave() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    // Every node checks its health after a change; node-2 is sick with more than 3 workers.
    let (nodes, _) = five_nodes(&etcd, |i, b| {
        b.probation(
            Duration::from_millis(300),
            move |probe: &Probe<NodeConfig>| {
                if i == 2 && probe.new.config().workers > 3 {
                    Health::unhealthy("error rate 40%")
                } else {
                    Health::Healthy
                }
            },
        )
    });
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));

    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_waves(&etcd, file, waves("1,2,100%")),
    );
    assert_eq!(code, EXIT_HALTED, "{out}");
    assert!(row(&out, "node-1").contains("passed"), "{out}");
    let node2 = row(&out, "node-2");
    assert!(node2.contains("failed"), "{out}");
    assert!(
        node2.contains("reverted by probation: unhealthy: error rate 40%"),
        "{out}"
    );
    wait_workers(&nodes, &[2, 2, 2, 2, 2]);
    assert_eq!(generations(&nodes)[2..], [1, 1, 1], "later waves untouched");
}

#[test]
fn a_wave_that_does_not_pass_within_its_timeout_halts() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, _) = five_nodes(&etcd, |_, b| b);
    nodes[0].follower.pause();
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));
    let args = WaveArgs {
        wave_timeout: Some(Duration::from_millis(700)),
        ..waves("1,100%")
    };
    let (code, out) = run(&cli(RestartPolicy::Reject), push_waves(&etcd, file, args));
    assert_eq!(code, EXIT_HALTED, "{out}");
    assert!(
        out.contains("halted at wave 1 of 2: not passed within 700ms, waiting for node-1 ("),
        "{out}"
    );
    assert!(row(&out, "node-1").contains("waiting"), "{out}");
    assert_eq!(generations(&nodes), [1; 5]);
}

/// A rollout started and its first wave passed by a pusher that then dies (the library driven
/// step-wise, then dropped): node-1 runs the candidate, the others the stable value.
fn started_then_abandoned(etcd: &Etcd, nodes: &[Node], sandbox: &Sandbox) -> i64 {
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));
    let pipeline = Pipeline::<NodeConfig>::new().validator(validate);
    let client = admin(etcd);
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY)
        .unwrap()
        .with_change(hotcfg::ChangeNote::new("alice").reason("more workers"));
    let sizes = WaveSize::parse_list("1,100%").unwrap();
    let rollout = Rollout::start(&push, &client, &sizes, WAVE_TIMEOUT).unwrap();
    assert_eq!(rollout.wait_wave().unwrap(), Ok(()));
    assert_eq!(rollout.state().phase, RolloutPhase::Running);
    let candidate = rollout.candidate_revision();
    drop(rollout);
    wait_workers(nodes, &[4, 2, 2, 2, 2]);
    nodes[0].wait_status(NodeResult::Applied, candidate);
    candidate
}

#[test]
fn a_rollout_whose_pusher_died_is_resumed_by_another_push_and_a_plain_push_is_refused_meanwhile() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, _) = five_nodes(&etcd, |_, b| b);
    let candidate = started_then_abandoned(&etcd, &nodes, &sandbox);

    let file = sandbox.write("other.toml", &text("0.0.0.0:7000", 3));
    let (code, out) = run(&cli(RestartPolicy::Reject), super::push(&etcd, file, None));
    assert_eq!(code, EXIT_CONFLICT, "{out}");
    assert!(out.contains("is running (wave 1 of 2)"), "{out}");
    assert!(
        out.contains("`push --resume` continues it, `push --abort`"),
        "{out}"
    );
    let (code, table) = run(
        &cli(RestartPolicy::Reject),
        super::fleet_status_op(&etcd, Default::default(), false),
    );
    assert_ne!(
        code, EXIT_OK,
        "a rollout in progress is not converged:\n{table}"
    );
    assert!(
        table.contains(" running: wave 1 of 2, 1 of 5 node(s) admitted"),
        "{table}"
    );
    assert!(
        table.contains("1 done, 0 waiting, 0 failed; by alice"),
        "{table}"
    );
    let node1 = row(&table, "node-1");
    assert!(
        node1.contains(&format!("{candidate} (candidate)  applied")),
        "{table}"
    );
    let (_, json) = run(
        &cli(RestartPolicy::Reject),
        super::fleet_status_op(&etcd, Default::default(), true),
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["rollout"]["state"]["phase"], "running", "{json}");
    assert_eq!(
        json["rollout"]["done"],
        serde_json::json!(["node-1"]),
        "{json}"
    );
    assert_eq!(json["converged"], false, "{json}");

    let (code, out) = on_running(&etcd, Act::Resume);
    assert_eq!(code, EXIT_OK, "{out}");
    assert!(out.contains("resuming rollout"), "{out}");
    wait_workers(&nodes, &[4, 4, 4, 4, 4]);
    assert_eq!(generations(&nodes), [2; 5]);
}

#[test]
fn a_rollout_whose_pusher_died_is_aborted_by_another_push_and_its_nodes_return_to_stable() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, stable) = five_nodes(&etcd, |_, b| b);
    started_then_abandoned(&etcd, &nodes, &sandbox);

    let (code, out) = on_running(&etcd, Act::Abort);
    assert_eq!(code, EXIT_HALTED, "{out}");
    assert!(out.contains("aborted by alice"), "{out}");
    wait_workers(&nodes, &[2, 2, 2, 2, 2]);
    nodes[0].wait_status(NodeResult::Applied, stable);
    assert_eq!(generations(&nodes)[1..], [1, 1, 1, 1]);
    // Nothing left to resume.
    let (code, out) = on_running(&etcd, Act::Resume);
    assert_ne!(code, EXIT_OK, "{out}");
    assert!(out.contains("is aborted (aborted by alice)"), "{out}");
}

#[test]
fn a_rollout_survives_an_etcd_restart_and_is_resumed_after_it() {
    let mut etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, _) = five_nodes(&etcd, |_, b| b);
    let candidate = started_then_abandoned(&etcd, &nodes, &sandbox);

    // The state is in etcd only: after a restart, node-1 still runs the candidate, the others
    // the stable value, and the rollout resumes.
    etcd.stop();
    let port = etcd.client_port;
    etcd.run_on(port);
    for node in &nodes {
        eventually(&format!("{} to watch again", node.id), || {
            holds(node.follower.stats().connected, node.follower.stats())
        });
    }
    assert_eq!(workers(&nodes), [4, 2, 2, 2, 2]);
    nodes[0].wait_status(NodeResult::Applied, candidate);
    let (code, out) = on_running(&etcd, Act::Resume);
    assert_eq!(code, EXIT_OK, "{out}");
    wait_workers(&nodes, &[4, 4, 4, 4, 4]);
}

#[test]
fn a_rollout_that_cannot_start_writes_nothing_and_says_why() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let client = admin(&etcd);
    let pipeline = Pipeline::<NodeConfig>::new().validator(validate);
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));
    let sizes = WaveSize::parse_list("1,100%").unwrap();
    let rollout_key = format!("{KEY}/rollout");
    let refusal = |push: &PreparedPush, sizes: &[WaveSize]| {
        let err = Rollout::start(push, &client, sizes, WAVE_TIMEOUT).unwrap_err();
        assert_eq!(client.get(&rollout_key).unwrap(), None, "nothing written");
        err.to_string()
    };

    // An absent key has no stable value to return to.
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY).unwrap();
    assert!(refusal(&push, &sizes).contains("push it without --waves"));
    // No node reports: nothing to roll out to.
    client.put(KEY, text("0.0.0.0:7000", 2)).unwrap();
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY).unwrap();
    assert!(refusal(&push, &sizes).contains("no node reports under the status prefix"));

    let (nodes, _) = five_nodes(&etcd, |_, b| b);
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY).unwrap();
    // Waves that leave nodes out; a note push would refuse.
    let short = WaveSize::parse_list("1,50%").unwrap();
    assert!(refusal(&push, &short).contains("reaches 3 of 5 nodes: end the waves with 100%"));
    let forged = push.clone().with_change(hotcfg::ChangeNote::new("a\nb"));
    assert!(refusal(&forged, &sizes).contains("the change note"));
    // Planned against a revision that is gone: refused as a conflict.
    client.put(KEY, text("0.0.0.0:7000", 3)).unwrap();
    let err = refusal(&push, &sizes);
    assert!(err.contains("changed since revision"), "{err}");
    // --waves that do not parse.
    let (code, out) = run(
        &cli(RestartPolicy::Reject),
        push_waves(&etcd, file.clone(), waves("1,0%")),
    );
    assert_eq!(code, hotcfg::cli::EXIT_INVALID, "{out}");
    assert!(
        out.contains("nothing pushed: --waves: `0%` is not a wave size"),
        "{out}"
    );

    // One rollout at a time: a second pusher is refused, naming the running one.
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY).unwrap();
    let first = Rollout::start(&push, &client, &sizes, WAVE_TIMEOUT).unwrap();
    let err = Rollout::start(&push, &client, &sizes, WAVE_TIMEOUT).unwrap_err();
    assert!(err.to_string().contains(&first.state().id), "{err}");
    assert!(
        err.to_string().contains("`push --resume` continues it"),
        "{err}"
    );
    let stored = client
        .get(&rollout_key)
        .unwrap()
        .expect("the first rollout");
    let stored: hotcfg::etcd::RolloutState = serde_json::from_slice(&stored.value).unwrap();
    assert_eq!(&stored, first.state(), "the refused start wrote nothing");
    drop(nodes);
}

#[test]
fn a_pusher_whose_rollout_another_aborts_stops_waiting_at_once() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let (nodes, _) = five_nodes(&etcd, |_, b| b);
    nodes[0].follower.pause(); // wave 1 cannot pass: the pusher waits
    let file = sandbox.write("new.toml", &text("0.0.0.0:7000", 4));
    let pipeline = Pipeline::<NodeConfig>::new().validator(validate);
    let client = admin(&etcd);
    let push = PreparedPush::prepare(&pipeline, &file, &client, KEY).unwrap();
    let sizes = WaveSize::parse_list("1,100%").unwrap();
    let long = Duration::from_secs(60);
    let mut rollout = Rollout::start(&push, &client, &sizes, long).unwrap();
    let pusher = std::thread::spawn(move || rollout.run(&mut |_| {}));

    let (code, out) = on_running(&etcd, Act::Abort);
    assert_eq!(code, EXIT_HALTED, "{out}");
    eventually("the first pusher to stop waiting", || {
        holds(pusher.is_finished(), "still waiting")
    });
    let err = pusher.join().unwrap().unwrap_err();
    assert!(err.to_string().contains("changed meanwhile"), "{err}");
}
