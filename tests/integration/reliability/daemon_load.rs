//! The task daemon under load: 200 reloads of every kind while clients submit and poll.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hotcfg_tests::daemon::{Client, Daemon};
use hotcfg_tests::wait_until;

use super::write_atomically;

const TOKEN: &str = "l0ad-t0ken";

/// The daemon's configuration for edit number `n`, of kind `kind`.
fn daemon_text(n: usize, kind: &str) -> String {
    let mut text = format!(
        r#"api_token = "{TOKEN}"

[daemon]
listen = "127.0.0.1:0"

[storage]
data_dir = "data"

[limits]
max_concurrent = {max}
queue_capacity = {capacity}
submits_per_second = 100000

[templates]
progress = "P {{id}} {{iteration}} v{n}"
done = "D {{id}}"

[monitoring]
log_level = "{level}"
status_interval_secs = 1

[loops.build]
max_iterations = 3
delay_ms = {delay}
template = "progress"

[loops.short]
max_iterations = 3
delay_ms = 1
template = "progress"

[loops.pin]
max_iterations = 100000000
delay_ms = 20
template = "progress"
"#,
        max = 3 + n % 3,
        capacity = 20 + n % 7,
        level = ["info", "warn", "debug"][n % 3],
        delay = 1 + n % 2,
    );
    match kind {
        "invalid" => {
            text = text.replace(
                &format!("max_concurrent = {}", 3 + n % 3),
                "max_concurrent = 0",
            )
        }
        "syntax" => text.push_str("[limits\n"),
        "veto" => text = text.split("[loops.pin]").next().unwrap().to_string(),
        "restart" => text = text.replace("data_dir = \"data\"", "data_dir = \"elsewhere\""),
        _ => {}
    }
    text
}

#[derive(Default)]
struct Tally {
    queued: Vec<u64>,
    full: u64,
    statuses: u64,
    problems: Vec<String>,
}

#[test]
fn the_daemon_under_load_loses_nothing_across_200_reloads() {
    let started = Instant::now();
    let daemon = Daemon::start(crate::daemon::binary(), "reject", &daemon_text(0, "valid"));
    let mut control = daemon.client(TOKEN);
    let pin = control.call("submit pin")["queued"].as_u64().unwrap();
    // The pinned loop runs through every reload: it must never restart or stop.
    wait_until("the pinned loop to start", Duration::from_secs(20), || {
        control.call("status")["loops"]
            .as_array()
            .is_some_and(|loops| loops.iter().any(|l| l["id"] == pin))
    });
    let stop = Arc::new(AtomicBool::new(false));
    // Acknowledged submits so far: durable submits are slower than the reloads, so the clients
    // keep submitting after the last reload until they have been answered often enough.
    let acknowledged = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tallies: Vec<_> = (0..4)
        .map(|worker| {
            let mut client = daemon.client(TOKEN);
            let stop = stop.clone();
            let acknowledged = acknowledged.clone();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let kind = if (i + worker).is_multiple_of(2) {
                        "build"
                    } else {
                        "short"
                    };
                    match client.try_call(&format!("submit {kind}")) {
                        Ok(reply) => match (reply["queued"].as_u64(), reply["error"].as_str()) {
                            (Some(id), None) => {
                                tally.queued.push(id);
                                acknowledged.fetch_add(1, Ordering::Relaxed);
                            }
                            (None, Some(e)) if e.starts_with("queue full") => tally.full += 1,
                            _ => tally.problems.push(format!("submit: {reply}")),
                        },
                        Err(e) => {
                            tally.problems.push(format!("submit: {e}"));
                            break;
                        }
                    }
                    match client.try_call("status") {
                        Ok(reply) if reply["generation"].is_u64() && reply["loops"].is_array() => {
                            tally.statuses += 1
                        }
                        Ok(reply) => tally.problems.push(format!("status: {reply}")),
                        Err(e) => {
                            tally.problems.push(format!("status: {e}"));
                            break;
                        }
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
                (tally, client)
            })
        })
        .collect();

    let config = daemon.sandbox.path("taskdaemon.toml");
    let mut live_sha = hotcfg_tests::sha256_hex(daemon_text(0, "valid").as_bytes());
    let mut pin_iterations = 0;
    let mut results = BTreeMap::<String, u32>::new();
    let (mut slowest_reload, mut reload_replies) = (Duration::ZERO, Duration::ZERO);
    for n in 1..=200 {
        let kind = match n % 8 {
            0..=3 => "valid",
            4 => "invalid",
            5 => "veto",
            6 => "restart",
            _ => "syntax",
        };
        let text = daemon_text(n, kind);
        write_atomically(&config, &text);
        let asked = Instant::now();
        let reply = control.call("reload");
        let took = asked.elapsed();
        slowest_reload = slowest_reload.max(took);
        reload_replies += took;
        let result = reply["result"].as_str().unwrap_or_default().to_string();
        let error = reply["error"].as_str().unwrap_or_default();
        let ok = match kind {
            "valid" => {
                // Applied by this reload, or by the watcher just before it.
                daemon.assert_reload_made_live(&reply, &text);
                true
            }
            "invalid" => result == "failed" && error.contains("`limits.max_concurrent`"),
            "syntax" => result == "failed" && error.contains("invalid TOML"),
            "veto" => result == "rejected" && error.contains("loop type `pin` is in use"),
            _ => result == "rejected" && error.contains("need a restart: storage.data_dir"),
        };
        assert!(ok, "reload {n} ({kind}): {reply}");
        assert!(reply["summary"].is_string(), "{reply}");
        *results.entry(format!("{kind}: {result}")).or_default() += 1;
        if kind == "valid" {
            live_sha = hotcfg_tests::sha256_hex(text.as_bytes());
        }
        let status = control.call("status");
        assert_eq!(
            status["config_sha256"],
            live_sha.as_str(),
            "after reload {n} ({kind})"
        );
        let pinned = status["loops"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["id"] == pin)
            .unwrap_or_else(|| panic!("the pinned loop is gone after reload {n}: {status}"));
        assert_eq!(
            pinned["started_generation"], 1,
            "the pinned loop restarted: {status}"
        );
        let iterations = pinned["iterations"].as_u64().unwrap();
        assert!(
            iterations >= pin_iterations,
            "the pinned loop went back: {status}"
        );
        pin_iterations = iterations;
    }
    let reload_time = started.elapsed();
    wait_until(
        "the clients to have more than 100 submits acknowledged",
        Duration::from_secs(60),
        || acknowledged.load(Ordering::Relaxed) > 100,
    );
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut clients: Vec<Client> = Vec::new();
    for handle in tallies {
        let (t, client) = handle.join().unwrap();
        tally.queued.extend(t.queued);
        tally.full += t.full;
        tally.statuses += t.statuses;
        tally.problems.extend(t.problems);
        clients.push(client);
    }
    assert!(tally.problems.is_empty(), "{:?}", tally.problems);
    assert!(
        tally.queued.len() > 100,
        "only {} items queued",
        tally.queued.len()
    );

    // Every queued item runs to its end exactly once; no connection was dropped.
    let mut status = control.call("status");
    wait_until(
        "the queue to drain and the loops to finish",
        Duration::from_secs(60),
        || {
            status = control.call("status");
            status["queue_len"] == 0 && status["loops"].as_array().unwrap().len() == 1
        },
    );
    assert_eq!(status["finished"], tally.queued.len() as u64, "{status}");
    assert_eq!(status["connections"], 5, "{status}");
    for client in &mut clients {
        assert!(client.call("status")["generation"].is_u64());
    }
    let ids: BTreeSet<u64> = tally.queued.iter().copied().collect();
    assert_eq!(ids.len(), tally.queued.len(), "an id was handed out twice");
    let data = daemon.sandbox.path("data");
    for id in &ids {
        let log = std::fs::read_to_string(data.join(format!("loops/{id}.log"))).unwrap();
        let iterations: Vec<&str> = log
            .lines()
            .map(|l| l.split(' ').nth(2).unwrap_or_default())
            .collect();
        assert_eq!(
            iterations,
            ["1", "2", "3"],
            "loop {id} did not run 1..=3 once:\n{log}"
        );
        let done = std::fs::read_to_string(data.join(format!("finished/{id}.txt"))).unwrap();
        assert_eq!(done.trim(), format!("D {id}"));
    }
    let records = hotcfg::verify_audit_log(daemon.sandbox.path("audit.jsonl")).unwrap();
    assert!(records.len() > 200, "{} audit records", records.len());
    eprintln!(
        "daemon under load: 200 reloads in {reload_time:?} ({results:?}; `reload` replies took {:?} on average, {slowest_reload:?} at most, the engine {:.1} ms); {} items queued, {} refused as full, {} status replies, {} audit records; {:?} in all",
        reload_replies / 200,
        records.iter().map(|r| r.duration_ms).sum::<f64>() / records.len() as f64,
        tally.queued.len(),
        tally.full,
        tally.statuses,
        records.len(),
        started.elapsed()
    );
}
