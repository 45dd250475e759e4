//! End-to-end: the real `taskdaemon` binary in a temporary directory, driven over HTTP and by
//! editing its configuration file.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use hotcfg_tests::daemon::{Client, Daemon, LIMIT};
use hotcfg_tests::http_client::EventStream;
use hotcfg_tests::{wait_until, Sandbox};
use serde_json::Value;

/// Builds the example once per test run and returns its path. With the `etcd` feature when this
/// crate has it, so the fleet tests run the same binary (one build, no race on its path).
///
/// `HOTCFG_TASKDAEMON=PATH` runs the tests against that binary instead (for example a build of
/// an older commit, to see a new test fail there).
pub(crate) fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("HOTCFG_TASKDAEMON") {
            return PathBuf::from(path);
        }
        hotcfg_tests::daemon::build_taskdaemon(false)
    })
}

/// The configuration the end-to-end tests run the daemon on (a free port, a token, two loop types).
pub(crate) fn config(max_concurrent: u32, queue_capacity: u32) -> String {
    format!(
        r#"api_token = "t0ps3cret"

[daemon]
listen = "127.0.0.1:0"

[storage]
data_dir = "data"

[limits]
max_concurrent = {max_concurrent}
queue_capacity = {queue_capacity}
submits_per_second = 1000

[templates]
progress = "P {{id}} {{iteration}}"
done = "D {{id}}"
template_files = []

[monitoring]
log_level = "info"
status_interval_secs = 60

[loops.build]
max_iterations = 1000000
delay_ms = 5
template = "progress"

[loops.short]
max_iterations = 1000000
delay_ms = 5
template = "progress"
"#
    )
}

/// The token every test configuration sets.
pub(crate) const TOKEN: &str = "t0ps3cret";

fn start(policy: &str, text: &str) -> Daemon {
    Daemon::start(binary(), policy, text)
}

fn loops(status: &Value) -> Vec<(u64, String, u64)> {
    status["loops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_u64().unwrap(),
                l["type"].as_str().unwrap().to_string(),
                l["iterations"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// After a reload: same loops (ids, types) with more iterations, same queue, one more generation.
fn assert_work_survived(before: &Value, after: &Value, what: &str) {
    let (b, a) = (loops(before), loops(after));
    assert_eq!(
        b.iter().map(|l| (l.0, &l.1)).collect::<Vec<_>>(),
        a.iter().map(|l| (l.0, &l.1)).collect::<Vec<_>>(),
        "{what}: the running loops changed"
    );
    for (old, new) in b.iter().zip(&a) {
        assert!(new.2 > old.2, "{what}: loop {} stopped iterating", old.0);
    }
    assert_eq!(
        before["queue_len"], after["queue_len"],
        "{what}: the queue lost items"
    );
    assert_eq!(
        after["generation"].as_u64().unwrap(),
        before["generation"].as_u64().unwrap() + 1,
        "{what}: generation did not advance by exactly one"
    );
}

fn wait_generation(client: &mut Client, generation: u64) -> Value {
    let mut status = Value::Null;
    wait_until(&format!("generation {generation}"), LIMIT, || {
        status = client.call("status");
        status["generation"].as_u64() >= Some(generation)
    });
    status
}

fn wait_loops_running(client: &mut Client, count: usize) -> Value {
    let mut status = Value::Null;
    wait_until(&format!("{count} loops iterating"), LIMIT, || {
        status = client.call("status");
        loops(&status).iter().filter(|l| l.2 > 0).count() >= count
    });
    status
}

/// A named edit of the configuration text.
type Edit = fn(&str) -> String;

#[test]
fn hot_edits_keep_loops_queue_and_connections() {
    let mut daemon = start("reject", &config(2, 10));
    let mut alice = daemon.client(TOKEN);
    let mut bob = daemon.client(TOKEN);
    for _ in 0..4 {
        assert!(alice.call("submit build")["queued"].is_u64());
    }
    assert!(bob.call("submit short")["queued"].is_u64());
    // An event stream held open through every reload, beside the two clients.
    let mut events = EventStream::open(&daemon.addr, TOKEN, None);
    let mut status = wait_loops_running(&mut bob, 2);
    assert_eq!(status["queue_len"], 3);
    assert_eq!(status["connections"], 3);
    assert_eq!(status["event_streams"], 1);

    let edits: [(&str, Edit); 4] = [
        ("limits", |t| {
            t.replace("queue_capacity = 10", "queue_capacity = 3")
        }),
        ("loops", |t| {
            t.replace(
                "delay_ms = 5\ntemplate = \"progress\"\n\n[loops.short]",
                "delay_ms = 4\ntemplate = \"progress\"\n\n[loops.short]",
            ) + "\n[loops.extra]\nmax_iterations = 3\ndelay_ms = 1\ntemplate = \"done\"\n"
        }),
        ("templates", |t| {
            t.replace("P {id} {iteration}", "Q {id} {iteration}")
        }),
        ("monitoring", |t| {
            t.replace("log_level = \"info\"", "log_level = \"debug\"")
        }),
    ];
    for (scope, edit) in edits {
        let generation = status["generation"].as_u64().unwrap();
        daemon.edit(edit);
        let mut after = wait_generation(&mut alice, generation + 1);
        // Give every loop time for one more iteration, then compare.
        wait_until("every loop to iterate again", LIMIT, || {
            after = bob.call("status");
            loops(&after)
                .iter()
                .zip(loops(&status))
                .all(|(a, b)| a.2 > b.2)
        });
        assert_work_survived(&status, &after, scope);
        assert_eq!(after["connections"], 3, "{scope}: a connection was dropped");
        let event = events
            .next_event()
            .unwrap_or_else(|e| panic!("{scope}: the event stream: {e}"));
        assert_eq!(
            event.data["generation"],
            generation + 1,
            "{scope}: {event:?}"
        );
        assert_eq!(event.data["result"], "applied", "{scope}: {event:?}");
        let record = daemon.audit_record(generation as usize + 1);
        assert_eq!(record["result"], "applied", "{scope}: {record}");
        // Every change is of this scope, and there is at least one.
        let classes: BTreeSet<&str> = record["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["class"].as_str().unwrap_or("(no class)"))
            .collect();
        assert_eq!(classes, BTreeSet::from([scope]), "{scope}: {record}");
        status = after;
    }
    // The queue kept every item at the lowered capacity, and refuses more until it drains.
    assert_eq!(status["queue_capacity"], 3);
    assert!(alice.call("submit build")["error"]
        .as_str()
        .unwrap()
        .contains("queue full"));
    // The templates edit shows in the loops' output from their next iteration.
    let first_loop = loops(&status)[0].0;
    let log = std::fs::read_to_string(daemon.sandbox.path(&format!("data/loops/{first_loop}.log")))
        .unwrap();
    assert!(log.contains("P ") && log.contains("Q "), "{log}");
    let iterations_before = loops(&status)[0].2;
    let code = daemon.stop();
    assert!(code.success(), "exit status {code}");
    // SIGTERM: the queue and the checkpoints were already in the database; the next start
    // resumes the running loops from their checkpoints and queues the rest again.
    daemon.restart();
    let mut client = daemon.client(TOKEN);
    let job = client.call(&format!("job {first_loop}"));
    assert_eq!(job["state"], "running", "{job}");
    assert!(
        job["iterations"].as_u64().unwrap() >= iterations_before,
        "{job}"
    );
    let status = client.call("status");
    assert_eq!(
        loops(&status).len() as u64 + status["queue_len"].as_u64().unwrap(),
        5,
        "{status}"
    );
}

#[test]
fn restart_only_edits_are_rejected_or_deferred() {
    let daemon = start("reject", &config(2, 10));
    let mut client = daemon.client(TOKEN);
    daemon.edit(|t| t.replace("data_dir = \"data\"", "data_dir = \"elsewhere\""));
    let record = daemon.audit_record(2);
    assert_eq!(record["result"], "rejected", "{record}");
    assert_eq!(record["changes"][0]["path"], "storage.data_dir");
    let status = client.call("status");
    assert_eq!(status["generation"], 1);
    assert_eq!(status["pending_restart"], serde_json::json!([]));
    drop(daemon);

    let daemon = start("defer", &config(2, 10));
    let mut client = daemon.client(TOKEN);
    daemon.edit(|t| {
        t.replace("data_dir = \"data\"", "data_dir = \"elsewhere\"")
            .replace("queue_capacity = 10", "queue_capacity = 11")
    });
    let record = daemon.audit_record(2);
    assert_eq!(record["result"], "applied", "{record}");
    assert_eq!(
        record["pending_restart"],
        serde_json::json!(["storage.data_dir"])
    );
    // The audit record can be written a moment before the new generation is published.
    let status = wait_generation(&mut client, 2);
    assert_eq!(status["generation"], 2);
    assert_eq!(status["queue_capacity"], 11);
    assert_eq!(
        status["pending_restart"],
        serde_json::json!(["storage.data_dir"])
    );
}

#[test]
fn vetoed_removals_and_invalid_files_change_nothing() {
    let daemon = start("reject", &config(2, 10));
    let mut client = daemon.client(TOKEN);
    client.call("submit short");
    wait_loops_running(&mut client, 1);
    let sha_before = client.call("status")["config_sha256"].clone();

    assert_removing_short_is_vetoed(&daemon, "is in use by 1 running loop(s) and 0 queued");
    assert_eq!(client.call("status")["config_sha256"], sha_before);

    // Back to the full file, but with an invalid value.
    daemon.edit(|_| config(0, 10));
    let record = daemon.audit_record(3);
    assert_eq!(record["result"], "failed", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains("taskdaemon.toml:10: `limits.max_concurrent`: must be at least 1"),
        "{error}"
    );
    assert_eq!(client.call("status")["generation"], 1);

    // The next good edit is applied.
    daemon.edit(|_| config(3, 10));
    let status = wait_generation(&mut client, 2);
    assert_eq!(status["max_concurrent"], 3);
    assert_eq!(
        status["config_sha256"],
        hotcfg_tests::sha256_hex(&std::fs::read(daemon.sandbox.path("taskdaemon.toml")).unwrap())
    );
}

/// Issue 22: only queued (not running) work of a type is enough to veto removing it.
#[test]
fn a_loop_type_used_only_by_queued_items_cannot_be_removed() {
    let daemon = start("reject", &config(1, 10));
    let mut client = daemon.client(TOKEN);
    client.call("submit build");
    wait_loops_running(&mut client, 1);
    // The only slot is taken: `short` waits in the queue.
    assert!(client.call("submit short")["queued"].is_u64());
    let status = client.call("status");
    assert_eq!(status["queue_len"], 1, "{status}");

    assert_removing_short_is_vetoed(
        &daemon,
        "is in use by 0 running loop(s) and 1 queued item(s)",
    );
    assert_eq!(client.call("status")["generation"], 1);
}

/// Removes loop type `short` from the file and expects the loops handler's veto saying `why`.
fn assert_removing_short_is_vetoed(daemon: &Daemon, why: &str) {
    daemon.edit(|t| t.split("[loops.short]").next().unwrap().to_string());
    let record = daemon.audit_record(2);
    assert_eq!(record["result"], "rejected", "{record}");
    let error = record["error"].as_str().unwrap();
    assert!(
        error.contains(&format!("loop type `short` {why}")),
        "{record}"
    );
}

#[test]
fn the_api_needs_the_token_and_redacts_it() {
    let daemon = start("reject", &config(2, 10));
    let mut anonymous = Client::connect(&daemon.addr);
    assert!(anonymous.call("status")["error"]
        .as_str()
        .unwrap()
        .starts_with("unauthorized"));
    let mut guessing = Client::with_token(&daemon.addr, "wrong");
    assert!(guessing.call("status")["error"]
        .as_str()
        .unwrap()
        .starts_with("unauthorized"));
    let mut client = daemon.client(TOKEN);
    let config = client.call("config");
    assert_eq!(config["api_token"], "<redacted>");
    assert!(!config.to_string().contains("t0ps3cret"));
    assert!(client.call("submit nope")["error"]
        .as_str()
        .unwrap()
        .contains("unknown loop type `nope`"));
    let reload = client.call("reload");
    assert_eq!(reload["result"], "unchanged", "{reload}");
    assert_eq!(client.call("frobnicate")["error"], "no such endpoint");
}

pub(crate) fn run(args: &[&str], dir: &Path) -> (i32, String) {
    let output = Command::new(binary())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run taskdaemon");
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

/// `taskdaemon plan --config CURRENT CANDIDATE [--json]`.
fn run_plan(current: &Path, candidate: &Path, json: bool, dir: &Path) -> (i32, String) {
    let mut args = vec![
        "plan",
        "--config",
        current.to_str().unwrap(),
        candidate.to_str().unwrap(),
    ];
    if json {
        args.push("--json");
    }
    run(&args, dir)
}

#[test]
fn operator_commands_report_and_exit_clearly() {
    let sandbox = Sandbox::new();
    let good = sandbox.write("good.toml", &config(2, 10));
    let bad = sandbox.write(
        "bad.toml",
        &config(2, 10).replace("delay_ms = 5", "delay_ms = \"soon\""),
    );
    let restart = sandbox.write(
        "restart.toml",
        &config(2, 10).replace("\"data\"", "\"other\""),
    );
    let hot = sandbox.write("hot.toml", &config(4, 10));
    let dir = sandbox.dir();

    let (code, out) = run(&["check", good.to_str().unwrap()], dir);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    let (code, out) = run(&["check", bad.to_str().unwrap()], dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("bad.toml:25: `loops.build.delay_ms`: invalid type"),
        "{out}"
    );

    let (code, out) = run_plan(&good, &hot, true, dir);
    assert_eq!(code, 0, "{out}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["decision"], "apply");
    assert_eq!(plan["changes"][0]["path"], "limits.max_concurrent");
    assert_eq!(plan["handlers"], serde_json::json!(["limits"]));
    let (code, out) = run_plan(&good, &restart, false, dir);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("decision: reject: 1 change(s) need a restart: storage.data_dir"),
        "{out}"
    );
    let (code, out) = run_plan(&good, &bad, true, dir);
    assert_eq!(code, 1, "{out}");

    let (code, out) = run(&["fields"], dir);
    assert_eq!(code, 0);
    let api = out.lines().find(|l| l.starts_with("api_token")).unwrap();
    assert!(api.contains("auth") && api.contains("yes"), "{api}");
    assert!(out
        .lines()
        .any(|l| l.starts_with("loops.*.max_iterations") && l.contains("loops")));

    // History of a real run, verified, then tampered with.
    let daemon = start("reject", &config(2, 10));
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 3"));
    daemon.audit_record(2);
    let audit = daemon.sandbox.path("audit.jsonl");
    let (code, out) = run(
        &[
            "history",
            "--audit-log",
            audit.to_str().unwrap(),
            "--verify",
        ],
        dir,
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("limits.max_concurrent [limits] modified: 2 -> 3"),
        "{out}"
    );
    assert!(out.contains("hash chain verified: 2 record(s)"), "{out}");
    let text = std::fs::read_to_string(&audit).unwrap();
    std::fs::write(&audit, text.replacen("startup", "manual", 1)).unwrap();
    let (code, out) = run(
        &[
            "history",
            "--audit-log",
            audit.to_str().unwrap(),
            "--verify",
        ],
        dir,
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(":2: hash chain broken"), "{out}");
}

#[test]
fn the_demo_runs_every_step_and_exits_zero() {
    let sandbox = Sandbox::new();
    let (code, out) = run(&["--demo"], sandbox.dir());
    assert_eq!(code, 0, "{out}");
    for expected in [
        "step 1: a hot change",
        "ok: applied",
        "ok: every running loop kept its id and its progress",
        "ok: rejected: the listener cannot move",
        "ok: kept out; the running configuration stays",
        "ok: vetoed by the loops handler",
        "ok: failed and rolled back",
        "ok: reloaded because banner.tmpl changed",
        "ok: loop iterations failed, so probation reverted it as a new generation",
        "ok: the reverted content is quarantined while the file holds it",
        "hash chain verified",
        "demo finished: every step behaved as expected",
    ] {
        assert!(
            out.contains(expected),
            "the demo did not print `{expected}`:\n{out}"
        );
    }
}

#[test]
fn first_run_writes_the_embedded_default_config() {
    let sandbox = Sandbox::new();
    let mut daemon = Command::new(binary())
        .current_dir(sandbox.dir())
        .args(["--config", "fresh.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(daemon.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    // The default listens on a fixed port that may be taken here: only the first line matters.
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(
        first.starts_with("wrote the default configuration to fresh.toml"),
        "{first}"
    );
    let written = std::fs::read_to_string(sandbox.path("fresh.toml")).unwrap();
    assert!(written.contains("[limits]") && written.contains("[loops.build]"));
}

/// The daemon refuses a misspelt key instead of running without the setting (issue 14: it ran
/// without its `api_token` that way).
#[test]
fn the_daemon_refuses_unknown_keys() {
    let sandbox = Sandbox::new();
    let misspelt = sandbox.write(
        "misspelt.toml",
        &config(2, 10).replace("api_token =", "api_tokn ="),
    );
    let (code, out) = run(&["check", misspelt.to_str().unwrap()], sandbox.dir());
    assert_eq!(code, 1, "{out}");
    // `deny_unknown_fields` (serde) or hotcfg's own check, whichever sees it first.
    assert!(
        out.contains("misspelt.toml:1: `api_tokn`: unknown "),
        "{out}"
    );
}

/// `taskdaemon schema`: the configuration's JSON Schema, each field with what a change needs.
#[cfg(feature = "schemars")]
#[test]
fn the_daemon_prints_its_json_schema() {
    let sandbox = Sandbox::new();
    let (code, out) = run(&["schema"], sandbox.dir());
    assert_eq!(code, 0, "{out}");
    let schema: Value = serde_json::from_str(&out).expect("schema prints JSON");
    let properties = &schema["properties"];
    assert_eq!(
        properties["daemon"]["x-hotcfg-class"], "restart",
        "{schema:#}"
    );
    assert_eq!(
        properties["limits"]["properties"]["max_concurrent"]["x-hotcfg-class"], "scope:limits",
        "{schema:#}"
    );
    assert_eq!(
        properties["api_token"]["x-hotcfg-secret"], true,
        "{schema:#}"
    );
}
