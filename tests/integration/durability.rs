//! Issue 12: what the daemon acknowledged, it finishes exactly once, whatever happens to the
//! process (`kill -9`, SIGTERM) or the disk (full, torn files, damaged state).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg_tests::daemon::{Client, Daemon, LIMIT};
use hotcfg_tests::{wait_until, Sandbox, SmallDisk};
use serde_json::Value;

use crate::daemon::{binary, config, run, TOKEN};

/// Loops that finish after `iterations` iterations of 5 ms.
fn finite(max_concurrent: u32, capacity: u32, iterations: u32) -> String {
    config(max_concurrent, capacity).replace(
        "max_iterations = 1000000",
        &format!("max_iterations = {iterations}"),
    )
}

/// Checks what the daemon stored for `id`: known, and completed once if finished.
fn assert_kept(client: &mut Client, id: u64, when: &str) -> Value {
    let job = client.call(&format!("job {id}"));
    let state = job["state"].as_str().unwrap_or_else(|| {
        panic!("{when}: acknowledged job {id} was lost: {job}");
    });
    let completions = u64::from(state == "finished");
    assert!(
        ["queued", "running", "finished"].contains(&state) && job["completions"] == completions,
        "{when}: job {id}: {job}"
    );
    job
}

/// Waits until nothing is queued or running.
fn wait_for_drain(client: &mut Client, limit: Duration) {
    wait_until("the queue to drain and every loop to finish", limit, || {
        let status = client.call("status");
        status["queue_len"] == 0 && status["loops"].as_array().is_some_and(Vec::is_empty)
    });
}

/// `history --verify` on `audit`: exit status and output.
fn verify_history(audit: &Path, dir: &Path) -> (i32, String) {
    run(
        &[
            "history",
            "--audit-log",
            audit.to_str().unwrap(),
            "--verify",
        ],
        dir,
    )
}

/// A small deterministic generator for the kill instants (seed printed, so a failure replays).
struct Instants(u64);

impl Instants {
    fn next_ms(&mut self, low: u64, high: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        low + self.0 % (high - low)
    }
}

/// Submits (from three clients at once, so that commits are shared), reloads and edits (valid
/// and invalid) until the daemon dies; `kill -9` after `after`. Returns the ids whose
/// `{"queued": id}` reply arrived, and the submits stored and commits that stored them shortly
/// before the kill (`status.storage`).
fn burst_then_kill(daemon: &mut Daemon, after: Duration, text: &str) -> (Vec<u64>, [u64; 2]) {
    let stop = Arc::new(AtomicBool::new(false));
    let submitters: Vec<_> = (0..3)
        .map(|_| {
            let mut submitter = daemon.client(TOKEN);
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for n in 0u64.. {
                    let kind = if n % 2 == 0 { "build" } else { "short" };
                    match submitter.try_call(&format!("submit {kind}")) {
                        Ok(reply) => acknowledged.extend(reply["queued"].as_u64()),
                        Err(_) => break, // killed
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
                acknowledged
            })
        })
        .collect();
    let mut reloader = daemon.client(TOKEN);
    let reloads = std::thread::spawn(move || {
        while reloader.try_call("reload").is_ok() {
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    let config = daemon.sandbox.path("taskdaemon.toml");
    let edits = {
        let (stop, text) = (Arc::clone(&stop), text.to_string());
        std::thread::spawn(move || {
            for n in 0u32.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let edited = match n % 3 {
                    0 => text.replace("queue_capacity = 100000", "queue_capacity = 99999"),
                    1 => text.replace("max_concurrent = 3", "max_concurrent = 0"), // invalid
                    _ => text.clone(),
                };
                write_atomically(&config, &edited);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(after);
    let storage = daemon.client(TOKEN).call("status")["storage"].clone();
    let grouping = ["submits_stored", "submit_commits"].map(|k| storage[k].as_u64().unwrap_or(0));
    daemon.kill();
    stop.store(true, Ordering::SeqCst);
    edits.join().unwrap();
    reloads.join().unwrap();
    // The next start reads a valid file.
    write_atomically(&daemon.sandbox.path("taskdaemon.toml"), text);
    let acknowledged = submitters
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    (acknowledged, grouping)
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[test]
fn kill_9_at_random_instants_never_loses_or_reuses_an_acknowledged_id() {
    const TRIALS: usize = 30;
    let text = finite(3, 100_000, 4);
    let mut daemon = Daemon::start(binary(), "reject", &text);
    let seed = std::env::var("HOTCFG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |d| d.as_nanos() as u64) ^ u64::from(std::process::id())
        });
    eprintln!("crash injection: seed {seed} (HOTCFG_CRASH_SEED replays it)");
    let mut instants = Instants(seed.max(1));
    let mut acknowledged = BTreeSet::new();
    let mut grouped = [0u64; 2];
    let started = Instant::now();
    for trial in 1..=TRIALS {
        let after = Duration::from_millis(instants.next_ms(100, 700));
        let (fresh, [stored, commits]) = burst_then_kill(&mut daemon, after, &text);
        grouped[0] += stored;
        grouped[1] += commits;
        let highest_before = acknowledged.last().copied().unwrap_or(0);
        for id in &fresh {
            assert!(
                *id > highest_before && acknowledged.insert(*id),
                "trial {trial}: id {id} was handed out before (highest earlier: {highest_before})"
            );
        }
        daemon.restart();
        let mut client = daemon.client(TOKEN);
        for id in &acknowledged {
            assert_kept(
                &mut client,
                *id,
                &format!("trial {trial} (killed after {after:?})"),
            );
        }
        if let Err(err) = hotcfg::verify_audit_log(daemon.sandbox.path("audit.jsonl")) {
            panic!("trial {trial}: the audit chain does not verify: {err}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "{trial} trials took {:?}: stopping the stress test",
            started.elapsed()
        );
    }
    // Resumed and queued work runs to its end, each job completed exactly once.
    let mut client = daemon.client(TOKEN);
    wait_for_drain(&mut client, LIMIT * 6);
    for id in &acknowledged {
        let job = assert_kept(&mut client, *id, "after draining");
        assert_eq!(job["state"], "finished", "{job}");
    }
    assert!(
        acknowledged.len() > TRIALS,
        "only {} submits acknowledged",
        acknowledged.len()
    );
    eprintln!(
        "crash injection: {TRIALS} kill -9 trials, {} acknowledged submits, all finished exactly once, in {:?}; shortly before the kills {} submits had been stored in {} commits",
        acknowledged.len(),
        started.elapsed(),
        grouped[0],
        grouped[1]
    );
}

#[test]
fn a_queue_saved_at_sigterm_survives_a_crash_right_after_the_next_start() {
    let mut daemon = Daemon::start(binary(), "reject", &config(1, 10));
    let mut client = daemon.client(TOKEN);
    let running = client.call("submit build")["queued"].as_u64().unwrap();
    let queued: Vec<u64> = (0..3)
        .map(|_| client.call("submit short")["queued"].as_u64().unwrap())
        .collect();
    assert!(daemon.stop().success());
    daemon.restart();
    daemon.kill();
    daemon.restart();
    let mut client = daemon.client(TOKEN);
    let status = client.call("status");
    assert_eq!(status["queue_len"], 3, "{status}");
    for id in queued.iter().chain([&running]) {
        assert_kept(&mut client, *id, "after SIGTERM, a start and kill -9");
    }
    // Ids go on from the highest handed out, after a clean stop as after a crash.
    let next = client.call("submit short")["queued"].as_u64().unwrap();
    assert!(next > queued[2], "id {next} after {queued:?}");
}

#[test]
fn a_torn_audit_log_is_repaired_on_start_and_verifies() {
    let mut daemon = Daemon::start(binary(), "reject", &config(2, 10));
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 3"));
    daemon.audit_record(2);
    assert!(daemon.stop().success());
    let audit = daemon.sandbox.path("audit.jsonl");
    let text = std::fs::read(&audit).unwrap();
    std::fs::write(&audit, &text[..text.len() - 40]).unwrap();

    daemon.restart();
    daemon.edit(|t| t.replace("max_concurrent = 3", "max_concurrent = 4"));
    let record = daemon.audit_record(4);
    assert_eq!(record["result"], "applied", "{record}");
    let recovered = daemon.audit_record(2);
    assert_eq!(recovered["result"], "recovered", "{recovered}");
    let (code, out) = verify_history(&audit, daemon.sandbox.dir());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 torn tail(s) repaired on open"), "{out}");
}

/// Names in `dir` starting with `prefix`.
fn names_starting(dir: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

#[test]
fn damaged_state_is_moved_aside_and_named_never_deleted() {
    let sandbox = Sandbox::new();
    sandbox.write("taskdaemon.toml", &config(2, 10));
    let data = sandbox.path("data");
    std::fs::create_dir_all(data.join("loops")).unwrap();
    let items: Vec<String> = (1..=10)
        .map(|id| format!(r#"{{"id":{id},"loop_type":"short"}}"#))
        .collect();
    let queue = format!("[{}]", items.join(","));
    std::fs::write(data.join("queue.json"), &queue[..queue.len() / 2]).unwrap();
    std::fs::write(data.join("loops/12.json"), r#"{"id":12,"loop_ty"#).unwrap();
    std::fs::write(data.join("state.db"), vec![0x5a; 8192]).unwrap();
    let audit = sandbox.path("audit.jsonl");
    let daemon = Daemon::start_in(binary(), "reject", sandbox, &audit);

    let mut client = daemon.client(TOKEN);
    let stderr = daemon.stderr();
    for (dir, prefix) in [
        (data.clone(), "queue.json.corrupt-"),
        (data.join("loops"), "12.json.corrupt-"),
        (data.clone(), "state.db.corrupt-"),
    ] {
        let aside = names_starting(&dir, prefix);
        assert_eq!(aside.len(), 1, "{prefix}: {aside:?}");
        assert!(
            stderr.contains(&aside[0]),
            "{} is not named:\n{stderr}",
            aside[0]
        );
    }
    assert!(!data.join("queue.json").exists());
    let aside = names_starting(&data, "state.db.corrupt-");
    assert_eq!(
        std::fs::read(data.join(&aside[0])).unwrap(),
        vec![0x5a; 8192]
    );
    // It starts with what it can trust, and hands out no id the damaged files used.
    let id = client.call("submit short")["queued"].as_u64().unwrap();
    assert!(id > 12, "id {id} may repeat one of the damaged state");
}

#[test]
fn an_earlier_versions_queue_and_checkpoints_are_migrated_once() {
    let sandbox = Sandbox::new();
    sandbox.write("taskdaemon.toml", &config(1, 10));
    let data = sandbox.path("data");
    std::fs::create_dir_all(data.join("loops")).unwrap();
    std::fs::write(
        data.join("queue.json"),
        r#"[{"id":5,"loop_type":"short"},{"id":6,"loop_type":"build"}]"#,
    )
    .unwrap();
    std::fs::write(
        data.join("loops/7.json"),
        r#"{"id":7,"loop_type":"build","iterations":3}"#,
    )
    .unwrap();
    let audit = sandbox.path("audit.jsonl");
    let mut daemon = Daemon::start_in(binary(), "reject", sandbox, &audit);
    let mut client = daemon.client(TOKEN);
    assert!(data.join("queue.json.migrated").exists());
    assert!(data.join("loops/7.json.migrated").exists());
    for id in [5, 6] {
        assert_kept(&mut client, id, "after migration");
    }
    let job = assert_kept(&mut client, 7, "after migration");
    assert!(job["iterations"].as_u64().unwrap() >= 3, "{job}");
    assert!(client.call("submit short")["queued"].as_u64().unwrap() > 7);
    assert!(daemon.stop().success());
    assert!(
        !data.join("queue.json").exists(),
        "the legacy file was written again"
    );
    daemon.restart();
    let status = daemon.client(TOKEN).call("status");
    assert_eq!(status["queue_len"], 3, "{status}");
}

/// Submits until one is refused (bounded); returns the ids acknowledged before.
fn submit_until_refused(client: &mut Client) -> Vec<u64> {
    let mut acknowledged = Vec::new();
    for _ in 0..2000 {
        let reply = client.call("submit short");
        match reply["queued"].as_u64() {
            Some(id) => acknowledged.push(id),
            None => {
                let error = reply["error"].as_str().unwrap_or_default();
                assert!(
                    error.contains("storage") && error.contains("not queued"),
                    "{reply}"
                );
                eprintln!(
                    "full disk: {} submit(s) still stored, then refused: {error}",
                    acknowledged.len()
                );
                return acknowledged;
            }
        }
    }
    panic!("2000 submits were acknowledged on a full disk");
}

#[test]
fn a_full_disk_refuses_submits_keeps_state_and_recovers_when_space_returns() {
    let Some(disk) = SmallDisk::mount_or_skip("4m") else {
        return;
    };
    let sandbox = Sandbox::new();
    let data = disk.path("data");
    sandbox.write(
        "taskdaemon.toml",
        &finite(3, 10_000, 60).replace("data_dir = \"data\"", &format!("data_dir = {data:?}")),
    );
    let mut daemon = Daemon::start_in(binary(), "reject", sandbox, &disk.path("audit.jsonl"));
    let mut client = daemon.client(TOKEN);
    let mut acknowledged: Vec<u64> = (0..6)
        .map(|_| client.call("submit short")["queued"].as_u64().unwrap())
        .collect();

    disk.fill();
    acknowledged.extend(submit_until_refused(&mut client));
    let status = client.call("status");
    assert_eq!(status["storage"]["state"], "degraded", "{status}");
    assert!(
        status["storage"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("full")),
        "{status}"
    );
    assert!(daemon.stderr().contains("storage write failed"));
    // A reload whose audit record cannot be written fails closed, with the reason. (The first
    // records may still fit in the free end of the log's last page.)
    let text = std::fs::read_to_string(daemon.sandbox.path("taskdaemon.toml")).unwrap();
    let refused = (4..100)
        .find(|n| {
            let edited = text.replace("max_concurrent = 3", &format!("max_concurrent = {n}"));
            daemon.edit(|_| edited);
            let reload = client.call("reload");
            if reload["result"] != "failed" {
                return false;
            }
            let error = reload["error"].as_str().unwrap_or_default();
            assert!(
                error.starts_with("the audit log is not writable: "),
                "{reload}"
            );
            true
        })
        .expect("a reload refused for its audit record");
    // The file watcher may be retrying the same edit (applied, then rolled back): wait for it.
    wait_until("the refused edit to be rolled back", LIMIT, || {
        client.call("status")["max_concurrent"] != refused
    });

    // Space returns: the daemon recovers without a restart.
    disk.free();
    acknowledged.push(client.call("submit short")["queued"].as_u64().unwrap());
    assert_eq!(client.call("status")["storage"]["state"], "ok");
    client.call("reload");
    wait_until(
        "the refused edit to apply once space returned",
        LIMIT,
        || client.call("status")["max_concurrent"] == refused,
    );

    // SIGTERM on a full disk keeps what was durable.
    disk.fill();
    acknowledged.extend(submit_until_refused(&mut client));
    assert!(daemon.stop().success());
    disk.free();
    daemon.restart();
    let mut client = daemon.client(TOKEN);
    wait_for_drain(&mut client, LIMIT * 3);
    for id in &acknowledged {
        let job = assert_kept(&mut client, *id, "after a full disk and SIGTERM");
        assert_eq!(job["state"], "finished", "{job}");
    }
    let (code, out) = verify_history(&disk.path("audit.jsonl"), daemon.sandbox.dir());
    assert_eq!(code, 0, "{out}");
    let stderr = daemon.stderr();
    let failed = |what: &str| {
        stderr
            .lines()
            .filter(|l| l.contains("storage write failed") && l.contains(what))
            .count()
    };
    eprintln!(
        "full disk: {} jobs acknowledged, all finished once; failed writes logged: {} submit(s), {} checkpoint(s), {} completion(s)",
        acknowledged.len(),
        failed("what=\"submit\""),
        failed("what=\"checkpoint\""),
        failed("what=\"completion\""),
    );
}

/// SIGTERM the moment the daemon says where it listens: the stop handler is already installed,
/// so it stops cleanly (exit 0) instead of dying of the signal's default action.
#[test]
fn sigterm_right_after_the_daemon_announces_itself_stops_it_cleanly() {
    let mut daemon = Daemon::start(binary(), "reject", &config(1, 10));
    for attempt in 1..=10 {
        let status = daemon.stop();
        assert!(
            status.success(),
            "attempt {attempt}: {status}; stderr:\n{}",
            daemon.stderr()
        );
        daemon.restart();
    }
}
