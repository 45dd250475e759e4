//! Issue 18: the pusher killed with `kill -9` mid-rollout, as a process: two task daemons on a
//! real etcd, `taskdaemon push --waves 1,100%` killed while the first wave's node is on
//! probation. The rollout stays in etcd as it was (the admitted node on the candidate, the other
//! on the stable value), and another `push --resume` finishes it.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use hotcfg::etcd::{NodeResult, NodeStatus, RolloutPhase, RolloutState};
use hotcfg_tests::Sandbox;

use super::{admin, eventually, Etcd, Running};

const KEY: &str = "taskdaemon/config";

/// A task daemon following [`KEY`] as `id`, with a 2 s probation, in a directory of its own.
fn daemon(etcd: &Etcd, sandbox: &Sandbox, id: &str) -> Running {
    let dir = sandbox.path(id);
    std::fs::create_dir_all(&dir).unwrap();
    let endpoint = etcd.endpoint();
    Running::taskdaemon(&endpoint, KEY, id, ["--probation-secs", "2"], &dir).0
}

/// `taskdaemon push ARGS` against [`KEY`], its output captured.
fn push(etcd: &Etcd, dir: &Path, args: &[&str]) -> Command {
    let mut push = Command::new(crate::daemon::binary());
    push.arg("push")
        .args(args)
        .args([
            "--etcd",
            &etcd.endpoint(),
            "--key",
            KEY,
            "--wave-timeout",
            "60s",
        ])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    push
}

fn report(etcd: &Etcd, node: &str) -> Option<NodeStatus> {
    let entry = admin(etcd).get(&format!("{KEY}/status/{node}")).unwrap()?;
    Some(serde_json::from_slice(&entry.value).unwrap())
}

fn rollout(etcd: &Etcd) -> Option<RolloutState> {
    let entry = admin(etcd).get(&format!("{KEY}/rollout")).unwrap()?;
    Some(serde_json::from_slice(&entry.value).unwrap())
}

/// Waits until `node` reports `result` at `revision`.
fn reports(etcd: &Etcd, node: &str, result: NodeResult, revision: i64) {
    eventually(
        &format!("{node} to report {result:?} at {revision}"),
        || match report(etcd, node) {
            Some(s) if s.result == result && s.revision == Some(revision) => Ok(()),
            other => Err(format!("last report: {other:?}")),
        },
    );
}

#[test]
fn a_pusher_killed_mid_rollout_leaves_it_as_it_was_and_another_push_resumes_it() {
    let etcd = Etcd::start();
    let sandbox = Sandbox::new();
    let stable = admin(&etcd).put(KEY, crate::daemon::config(2, 10)).unwrap();
    let _nodes = [
        daemon(&etcd, &sandbox, "node1"),
        daemon(&etcd, &sandbox, "node2"),
    ];
    reports(&etcd, "node1", NodeResult::Applied, stable);
    reports(&etcd, "node2", NodeResult::Applied, stable);

    let candidate_file = sandbox.write("hot.toml", &crate::daemon::config(4, 10));
    let pusher: Child = push(&etcd, sandbox.dir(), &[candidate_file.to_str().unwrap()])
        .args([
            "--waves", "1,100%", "--author", "alice", "--reason", "canary",
        ])
        .spawn()
        .expect("start the pusher");
    let mut pusher = Running(pusher);
    // The first wave's node runs the candidate, on probation for 2 s: the pusher waits on it.
    let candidate = eventually("the rollout's first wave to be admitted", || {
        match (
            rollout(&etcd),
            admin(&etcd)
                .get(&format!("{KEY}/rollout/candidate"))
                .unwrap(),
        ) {
            (Some(state), Some(entry)) if state.phase == RolloutPhase::Running => {
                Ok(entry.mod_revision)
            }
            other => Err(format!("rollout: {:?}", other.0)),
        }
    });
    let admitted = eventually("one node to run the candidate", || {
        let on = ["node1", "node2"]
            .into_iter()
            .find(|n| report(&etcd, n).is_some_and(|s| s.revision == Some(candidate)));
        on.ok_or_else(|| "no node on the candidate yet".to_string())
    });
    pusher.0.kill().expect("kill -9 the pusher");
    let status = pusher.0.wait().unwrap();
    assert_eq!(
        status.code(),
        None,
        "killed by a signal, not exited: {status}"
    );

    // As it was: running, the admitted node on the candidate, the other on the stable value.
    let state = rollout(&etcd).expect("the rollout stays in etcd");
    assert_eq!(
        (state.phase, state.wave),
        (RolloutPhase::Running, 0),
        "{state:?}"
    );
    let other = if admitted == "node1" {
        "node2"
    } else {
        "node1"
    };
    assert_eq!(report(&etcd, other).unwrap().revision, Some(stable));

    // Another push resumes it: both waves pass, the candidate becomes the key's value.
    let resumed = push(&etcd, sandbox.dir(), &["--resume"]).output().unwrap();
    let said = String::from_utf8_lossy(&resumed.stdout).to_string()
        + &String::from_utf8_lossy(&resumed.stderr);
    assert_eq!(resumed.status.code(), Some(0), "{said}");
    assert!(said.contains("resuming rollout"), "{said}");
    assert!(
        rollout(&etcd).is_none(),
        "the rollout's keys are gone once done"
    );
    let value = admin(&etcd).get(KEY).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(value.value).unwrap(),
        crate::daemon::config(4, 10)
    );
    for node in ["node1", "node2"] {
        eventually(
            &format!("{node} to run the key's new value"),
            || match report(&etcd, node) {
                Some(s) if s.revision == Some(value.mod_revision) && s.result.is_ok() => Ok(()),
                other => Err(format!("last report: {other:?}")),
            },
        );
    }
}
