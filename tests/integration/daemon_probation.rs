//! The task daemon's probation (issue 17): a change that passes validation but makes loop
//! iterations fail is reverted automatically, with the loops, queue and connections intact;
//! commit-confirmed through `POST /api/confirm`. Driven as a process over loopback.

use hotcfg_tests::daemon::{Daemon, LIMIT};
use hotcfg_tests::http_client::request;
use hotcfg_tests::{sha256_hex, wait_until, Sandbox};
use serde_json::Value;

use crate::daemon::{binary, config};

const TOKEN: &str = "t0ps3cret";

fn start(options: &[&str]) -> Daemon {
    let sandbox = Sandbox::new();
    sandbox.write("taskdaemon.toml", &config(2, 10));
    let audit = sandbox.path("audit.jsonl");
    let mut all = vec!["--policy", "reject"];
    all.extend_from_slice(options);
    Daemon::start_with(binary(), &all, sandbox, &audit)
}

fn post(daemon: &Daemon, path: &str, body: &str) -> (u16, Value) {
    let response = request(&daemon.addr, "POST", path, Some(TOKEN), body);
    (response.status, response.json())
}

fn status(daemon: &Daemon) -> Value {
    // 409 while the file holds quarantined content: the body is the status either way.
    request(&daemon.addr, "GET", "/api/status", Some(TOKEN), "").json()
}

/// Waits until `/api/status`'s probation state is `state`; the status then.
fn probation_becomes(daemon: &Daemon, state: &str) -> Value {
    let mut last = Value::Null;
    wait_until(&format!("probation state `{state}`"), LIMIT, || {
        last = status(daemon);
        last["probation"]["state"] == state
    });
    last
}

fn iterations_of(status: &Value, id: u64) -> Option<u64> {
    status["loops"].as_array()?.iter().find(|l| l["id"] == id)?["iterations"].as_u64()
}

#[test]
fn a_change_that_makes_loops_fail_is_reverted_with_the_work_intact() {
    let daemon = start(&["--probation-secs", "60"]);
    let mut client = daemon.client(TOKEN);
    let id = client.call("submit build")["queued"].as_u64().unwrap();
    wait_until("the loop runs", LIMIT, || {
        iterations_of(&status(&daemon), id).is_some_and(|n| n > 0)
    });
    let good = std::fs::read_to_string(daemon.sandbox.path("taskdaemon.toml")).unwrap();
    // `{iterations}` for `{iteration}`: valid to validation, a broken line to every loop.
    let bad = good.replace("P {id} {iteration}", "P {id} {iterations}");
    daemon.edit(|_| bad.clone());
    let (code, reply) = post(&daemon, "/api/reload", "");
    assert_eq!(code, 200, "{reply}");

    let after = probation_becomes(&daemon, "reverted");
    let probation = &after["probation"];
    assert_eq!(probation["generation"], 2, "{probation}");
    assert_eq!(
        (probation["restored"].clone(), after["generation"].clone()),
        (1.into(), 3.into())
    );
    let reason = probation["reason"].as_str().unwrap();
    assert!(
        reason.contains("loop iteration(s) failed under generation 2"),
        "{reason}"
    );
    assert_eq!(
        probation["quarantined"][0]["sha256"],
        sha256_hex(bad.as_bytes())
    );
    // The loop, the queue and the connection are intact.
    let before = iterations_of(&after, id).expect("the loop still runs");
    wait_until("the loop goes on", LIMIT, || {
        iterations_of(&status(&daemon), id).is_some_and(|n| n > before)
    });
    assert_eq!(client.call("status")["queue_capacity"], 10);
    // Recorded: the event's trigger, the audit record.
    let audit = daemon.audit();
    let revert = audit
        .iter()
        .find(|r| r["trigger"]["kind"] == "probation")
        .expect("a revert record");
    assert_eq!(
        (
            revert["generation"].clone(),
            revert["trigger"]["reverted"].clone()
        ),
        (3.into(), 2.into())
    );
    // The file still holds the reverted text: quarantined, refused, said in the status.
    let (code, reply) = post(&daemon, "/api/reload", "");
    assert_eq!(code, 409, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap_or_default()
            .contains("is quarantined")
            || reply.to_string().contains("is quarantined"),
        "{reply}"
    );
    // No commit-confirmed here.
    let (code, reply) = post(&daemon, "/api/confirm", "");
    assert_eq!(code, 404, "{reply}");
}

#[test]
fn commit_confirmed_through_the_http_api() {
    let daemon = start(&["--probation-secs", "0", "--confirm-within", "60"]);
    daemon.edit(|text| text.replace("max_concurrent = 2", "max_concurrent = 3"));
    let (code, reply) = post(&daemon, "/api/reload", "");
    assert_eq!(code, 200, "{reply}");
    assert_eq!(status(&daemon)["probation"]["state"], "on_probation");
    let (code, reply) = post(&daemon, "/api/confirm", r#"{"generation": 5}"#);
    assert_eq!(
        (code, reply["error"].as_str()),
        (
            409,
            Some("generation 5 does not await confirmation; generation 2 does")
        )
    );
    let (code, reply) = post(&daemon, "/api/confirm", "{nonsense");
    assert_eq!(code, 400, "{reply}");
    let said = reply["error"].as_str().unwrap_or_default();
    assert!(
        said.starts_with(r#"expected an empty body or {"generation": N}: "#),
        "{said}"
    );
    let (code, reply) = post(&daemon, "/api/confirm", "");
    assert_eq!((code, reply["confirmed"].clone()), (200, 2.into()));
    probation_becomes(&daemon, "passed");
    let (code, reply) = post(&daemon, "/api/confirm", "");
    assert_eq!(
        (code, reply["error"].as_str()),
        (
            409,
            Some("no change awaits confirmation (live generation 2)")
        )
    );

    let late = start(&["--probation-secs", "0", "--confirm-within", "1"]);
    late.edit(|text| text.replace("max_concurrent = 2", "max_concurrent = 3"));
    post(&late, "/api/reload", "");
    let after = probation_becomes(&late, "reverted");
    assert_eq!(after["probation"]["reason"], "not confirmed within 1s");
    assert_eq!(after["max_concurrent"], 2);
    let (code, reply) = post(&late, "/api/confirm", "");
    assert_eq!(code, 409, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .starts_with("too late: generation 2 was already reverted"),
        "{reply}"
    );
}
