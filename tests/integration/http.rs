//! The daemon's HTTP API, driven as a process over loopback: each attack of issue 16 (bounded in
//! count and time), the endpoints, the event stream and `/metrics`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hotcfg_tests::daemon::{Daemon, LIMIT};
use hotcfg_tests::http_client::{get_json, request, Connection, EventStream};
use hotcfg_tests::{wait_until, Sandbox};
use serde_json::Value;

use crate::daemon::{binary, config};

const TOKEN: &str = "t0ps3cret";

/// The end-to-end configuration with `server` settings.
pub(crate) fn http_config(server: &str) -> String {
    format!("{}\n[server]\n{server}\n", config(2, 10))
}

fn start(server: &str) -> Daemon {
    Daemon::start(binary(), "reject", &http_config(server))
}

/// Where `daemon` serves HTTP.
pub(crate) fn http(daemon: &Daemon) -> String {
    daemon.addr.clone()
}

/// The daemon's configuration file as it is now, for candidates that differ only where meant.
pub(crate) fn current_text(daemon: &Daemon) -> String {
    std::fs::read_to_string(daemon.sandbox.path("taskdaemon.toml")).unwrap()
}

/// A script in `sandbox` that runs the daemon after `setup` (shell lines: a limit, a variable).
fn wrapped_binary(sandbox: &Sandbox, setup: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = format!("#!/bin/sh\n{setup}\nexec '{}' \"$@\"\n", binary().display());
    let path = sandbox.write("taskdaemon.sh", &script);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn status(daemon: &Daemon) -> Value {
    let response = request(&http(daemon), "GET", "/api/status", Some(TOKEN), "");
    assert!(
        response.status == 200 || response.status == 409,
        "status: {} {}",
        response.status,
        response.text()
    );
    response.json()
}

fn submit(addr: &str, loop_type: &str) -> (u16, Value) {
    let body = format!(r#"{{"type": "{loop_type}"}}"#);
    let response = request(addr, "POST", "/api/submit", Some(TOKEN), &body);
    (response.status, response.json())
}

#[test]
fn an_over_long_request_head_or_body_runs_nothing() {
    let daemon = start("body_limit_bytes = 1024");
    let addr = http(&daemon);
    let addr = addr.as_str();
    // The old line protocol's bug: the tail of an over-long line ran as a command. Here the head is
    // refused whole and the connection closed, so the pipelined submit after it never runs.
    let mut connection = Connection::open(addr);
    let long_path = format!("/{}", "A".repeat(64 * 1024));
    let submit_body = r#"{"type": "build"}"#;
    let pipelined = format!(
        "GET {long_path} HTTP/1.1\r\nhost: x\r\n\r\nPOST /api/submit HTTP/1.1\r\nhost: x\r\n\
         authorization: Bearer {TOKEN}\r\ncontent-length: {}\r\n\r\n{submit_body}",
        submit_body.len()
    );
    let _ = connection.stream().write_all(pipelined.as_bytes());
    match connection.read_response() {
        Ok(answer) => assert!(
            answer.status == 431 || answer.status == 414 || answer.status == 400,
            "{} {}",
            answer.status,
            answer.text()
        ),
        Err(closed) => assert!(
            closed.contains("closed") || closed.contains("reset"),
            "{closed}"
        ),
    }
    assert!(connection.closed_by_server(), "the connection stayed open");
    // A header line over the limit, the same.
    let huge_header = "x".repeat(32 * 1024);
    let answer = Connection::open(addr).send(
        "GET",
        "/api/status",
        Some(TOKEN),
        &[("x-pad", &huge_header)],
        b"",
    );
    assert!(
        answer.as_ref().map_or(true, |a| a.status == 431),
        "{answer:?}"
    );
    // A body over the limit: refused with 413, as JSON, nothing queued.
    let big = format!(r#"{{"type": "build", "pad": "{}"}}"#, "B".repeat(4096));
    let answer = request(addr, "POST", "/api/submit", Some(TOKEN), &big);
    assert_eq!(answer.status, 413, "{}", answer.text());
    assert!(answer.json()["error"].is_string());
    let after = status(&daemon);
    assert_eq!(after["queue_len"], 0, "{after}");
    assert_eq!(after["loops"], serde_json::json!([]), "{after}");
}

#[test]
fn a_connection_flood_past_the_cap_leaves_clients_and_reloads_working() {
    const CAP: usize = 32;
    const FLOOD: usize = 300;
    // 128 descriptors: the flood is larger than the limit, the cap well below it.
    let scripts = Sandbox::new();
    let daemon = Daemon::start(
        &wrapped_binary(&scripts, "ulimit -n 128"),
        "reject",
        &http_config(&format!(
            "max_connections = {CAP}\nheader_timeout_secs = 60"
        )),
    );
    let addr = http(&daemon);
    let addr = addr.as_str();
    let mut existing = Connection::open(addr);
    let before = existing
        .send("GET", "/api/status", Some(TOKEN), &[], b"")
        .unwrap();
    assert_eq!(before.status, 200, "{}", before.text());

    let started = Instant::now();
    let mut flood = Vec::new();
    let mut refused = 0;
    for _ in 0..FLOOD {
        match TcpStream::connect(addr) {
            Ok(stream) => flood.push(stream),
            Err(_) => refused += 1,
        }
        assert!(
            started.elapsed() < LIMIT,
            "the flood took longer than {LIMIT:?}"
        );
    }
    // The connections past the cap are answered 503 and closed.
    let mut answered_503 = 0;
    for stream in flood.iter().skip(CAP) {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut &*stream, &mut text);
        if text.starts_with("HTTP/1.1 503") {
            answered_503 += 1;
        }
    }
    assert!(
        answered_503 > 0,
        "no connection past the cap was answered 503 ({refused} refused by the kernel)"
    );

    // The client connected before the flood is still served, and a reload still works: the
    // watcher sees the edit (no descriptor shortage reached it).
    let during = existing
        .send("GET", "/api/status", Some(TOKEN), &[], b"")
        .unwrap();
    assert_eq!(during.status, 200, "{}", during.text());
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 3"));
    let record = daemon.audit_record(2);
    assert_eq!(record["result"], "applied", "{record}");
    let reload = existing
        .send("POST", "/api/reload", Some(TOKEN), &[], b"")
        .unwrap();
    assert_eq!(reload.status, 200, "{}", reload.text());

    // When the flood goes away, new clients are served again.
    drop(flood);
    wait_until("a new client to be served after the flood", LIMIT, || {
        Connection::open(addr)
            .send("GET", "/api/status", Some(TOKEN), &[], b"")
            .is_ok_and(|r| r.status == 200)
    });
    let stderr = daemon.stderr();
    assert!(!stderr.contains("Too many open files"), "{stderr}");
}

#[test]
fn slow_and_idle_clients_are_closed_by_the_timeouts() {
    const CLIENTS: usize = 20;
    let daemon = start("header_timeout_secs = 1\nrequest_timeout_secs = 1");
    let addr = http(&daemon);
    let addr = addr.as_str();
    let started = Instant::now();
    // Slowloris: a byte at a time, never finishing the head; and clients that send nothing.
    let mut slow: Vec<Connection> = (0..CLIENTS).map(|_| Connection::open(addr)).collect();
    let mut idle: Vec<Connection> = (0..CLIENTS).map(|_| Connection::open(addr)).collect();
    let head = b"GET /api/status HTTP/1.1\r\nhost: localhost\r\nx-slow: ";
    let mut closed = vec![false; CLIENTS];
    for byte in head.iter().cycle().take(200) {
        for (connection, closed) in slow.iter_mut().zip(&mut closed) {
            if !*closed && connection.stream().write_all(&[*byte]).is_err() {
                *closed = true;
            }
        }
        if closed.iter().all(|c| *c) {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "slow clients still open after {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    for connection in slow.iter_mut().chain(idle.iter_mut()) {
        assert!(
            connection.closed_by_server(),
            "a slow or idle client was not closed"
        );
    }
    // A body sent a byte at a time past the request timeout is answered 408.
    let mut slow_body = Connection::open(addr);
    let head = format!(
        "POST /api/submit HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {TOKEN}\r\n\
         content-length: 100\r\n\r\n{{"
    );
    slow_body.stream().write_all(head.as_bytes()).unwrap();
    let answer = slow_body.read_response().unwrap();
    assert_eq!(answer.status, 408, "{}", answer.text());
    // Meanwhile the daemon serves everyone else.
    assert_eq!(status(&daemon)["queue_len"], 0);
}

#[test]
fn token_guessing_is_slowed_then_locked_out_and_logged_without_the_token() {
    let daemon = start(
        "auth_failures_before_delay = 2\nauth_failures_before_lockout = 5\nauth_lockout_secs = 60",
    );
    let addr = http(&daemon);
    let addr = addr.as_str();
    let mut codes = Vec::new();
    let mut slowest = Duration::ZERO;
    for attempt in 0..20 {
        let guess = format!("guess-{attempt}");
        let started = Instant::now();
        let answer = request(addr, "GET", "/api/status", Some(&guess), "");
        if attempt == 3 {
            slowest = started.elapsed();
        }
        codes.push(answer.status);
        if answer.status == 429 {
            assert!(
                answer.header("retry-after").is_some(),
                "{:?}",
                answer.headers
            );
        }
    }
    assert_eq!(&codes[..4], &[401; 4], "{codes:?}");
    assert!(codes[4..].iter().all(|c| *c == 429), "{codes:?}");
    // The fourth failure is two past the free ones: it waited at least two delay steps.
    assert!(
        slowest >= Duration::from_millis(500),
        "not slowed: {slowest:?}"
    );
    // Locked out means locked out, even with the right token, for this address.
    assert_eq!(
        request(addr, "GET", "/api/status", Some(TOKEN), "").status,
        429
    );
    let stderr = daemon.stderr();
    assert!(stderr.contains("authentication failed"), "{stderr}");
    assert!(stderr.contains("peer=127.0.0.1:"), "{stderr}");
    assert!(
        !stderr.contains("guess-"),
        "a guess reached the log:\n{stderr}"
    );
}

#[test]
fn token_mistakes_are_refused_with_their_location() {
    let sandbox = Sandbox::new();
    let base = http_config("").replace("api_token = \"t0ps3cret\"\n", "");
    let cases = [
        (
            "empty.toml",
            format!("api_token = \"\"\n{base}"),
            "empty.toml:1: `api_token`: is empty",
        ),
        (
            "padded.toml",
            format!("api_token = \" t0k \"\n{base}"),
            "padded.toml:1: `api_token`: has leading or trailing whitespace",
        ),
        (
            "misspelled.toml",
            format!("api-token = \"t0k\"\n{base}"),
            "misspelled.toml:1: `api-token`: unknown field",
        ),
        // Appended after the last table, TOML puts it in `[server]`.
        (
            "appended.toml",
            format!("{base}api_token = \"t0k\"\n"),
            "`server.api_token`: unknown field",
        ),
    ];
    for (name, text, expected) in cases {
        let path = sandbox.write(name, &text);
        let output = std::process::Command::new(binary())
            .args(["check", path.to_str().unwrap()])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{name}: {out}");
        assert!(
            out.contains(expected),
            "{name}: expected `{expected}` in:\n{out}"
        );
        // The daemon refuses to start on it.
        let output = std::process::Command::new(binary())
            .args(["--config", path.to_str().unwrap()])
            .current_dir(sandbox.dir())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{name}: the daemon started");
    }
}

#[test]
fn rust_log_overrides_the_configured_log_level() {
    let text = || http_config("").replace("log_level = \"info\"", "log_level = \"error\"");
    let scripts = Sandbox::new();
    let quiet = Daemon::start(
        &wrapped_binary(&scripts, "unset RUST_LOG"),
        "reject",
        &text(),
    );
    let loud_scripts = Sandbox::new();
    let loud = Daemon::start(
        &wrapped_binary(&loud_scripts, "export RUST_LOG=info"),
        "reject",
        &text(),
    );
    // The status reporter logs an info line as soon as it starts, after the level is set.
    let status_line = " status generation=";
    wait_until("the status line under RUST_LOG=info", LIMIT, || {
        loud.stderr().contains(status_line)
    });
    // Both have served a request by now, so the quiet one had its chance to log too.
    status(&quiet);
    status(&loud);
    assert!(!quiet.stderr().contains(status_line), "{}", quiet.stderr());
}

#[test]
fn every_endpoint_answers_json_with_a_status_code() {
    let daemon = start("");
    let addr = http(&daemon);
    let addr = addr.as_str();
    // Without the token, everything but the page is refused.
    for path in [
        "/api/status",
        "/api/config",
        "/api/fields",
        "/api/history",
        "/metrics",
    ] {
        let answer = request(addr, "GET", path, None, "");
        assert_eq!(answer.status, 401, "{path}");
        assert!(
            answer.json()["error"].as_str().unwrap().contains("Bearer"),
            "{path}"
        );
    }
    let page = request(addr, "GET", "/", None, "");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<title>taskdaemon</title>"));
    assert_eq!(
        request(addr, "GET", "/nope", Some(TOKEN), "").json()["error"],
        "no such endpoint"
    );

    let live = status(&daemon);
    assert_eq!(live["in_sync"], true, "{live}");
    assert_eq!(live["desired_sha256"], live["config_sha256"]);
    assert_eq!(live["last_reload"]["result"], "applied");

    let config = get_json(addr, "/api/config", TOKEN);
    assert_eq!(config["api_token"], "<redacted>");
    assert!(!config.to_string().contains(TOKEN));
    let fields = get_json(addr, "/api/fields", TOKEN);
    let token_field = fields
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "api_token")
        .unwrap();
    assert_eq!(token_field["secret"], true, "{token_field}");

    let (code, queued) = submit(addr, "build");
    assert_eq!(code, 202, "{queued}");
    assert!(queued["queued"].is_u64(), "{queued}");
    let (code, refused) = submit(addr, "nope");
    assert_eq!(code, 400, "{refused}");
    assert!(refused["error"]
        .as_str()
        .unwrap()
        .contains("unknown loop type `nope`"));
    let bad = request(addr, "POST", "/api/submit", Some(TOKEN), "{\"kind\": 1}");
    assert_eq!(bad.status, 400, "{}", bad.text());
    let said = bad.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        said.starts_with(r#"expected {"type": "LOOP TYPE"}: unknown field `kind`"#),
        "{said}"
    );

    let reload = request(addr, "POST", "/api/reload", Some(TOKEN), "");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_eq!(reload.json()["result"], "unchanged");

    // An invalid file: the reload is refused (409), status says the file is not what runs.
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 0"));
    daemon.audit_record(2);
    let reload = request(addr, "POST", "/api/reload", Some(TOKEN), "");
    assert_eq!(reload.status, 409, "{}", reload.text());
    assert_eq!(reload.json()["result"], "failed");
    let drifted = request(addr, "GET", "/api/status", Some(TOKEN), "");
    assert_eq!(drifted.status, 409, "{}", drifted.text());
    let drifted = drifted.json();
    assert_eq!(drifted["in_sync"], false);
    assert!(
        drifted["drift"]
            .as_str()
            .unwrap()
            .contains("max_concurrent"),
        "{drifted}"
    );

    // The plan of a candidate, applying nothing.
    let running = current_text(&daemon).replace("max_concurrent = 0", "max_concurrent = 2");
    let candidate = running.replace("max_concurrent = 2", "max_concurrent = 4");
    let plan = request(addr, "POST", "/api/plan", Some(TOKEN), &candidate);
    assert_eq!(plan.status, 200, "{}", plan.text());
    let plan = plan.json();
    assert_eq!(plan["decision"], "apply", "{plan}");
    assert_eq!(plan["changes"][0]["path"], "limits.max_concurrent");
    let restart = running.replace("data_dir = \"data\"", "data_dir = \"other\"");
    let plan = request(addr, "POST", "/api/plan", Some(TOKEN), &restart).json();
    assert_eq!(plan["decision"], "reject", "{plan}");
    let garbage = request(addr, "POST", "/api/plan", Some(TOKEN), "[limits\n").json();
    assert_eq!(garbage["decision"], "invalid", "{garbage}");
    assert!(
        garbage["error"].to_string().contains("candidate"),
        "{garbage}"
    );
    assert_eq!(status(&daemon)["generation"], 1);

    let history = get_json(addr, "/api/history", TOKEN);
    let results: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["result"].as_str().unwrap())
        .collect();
    assert_eq!(results.first(), Some(&"applied"), "{history}");
    assert!(results.contains(&"failed"), "{history}");
    assert_eq!(history["audit"]["verified"], true, "{history}");
    assert_eq!(
        history["audit"]["records"].as_u64().unwrap() as usize,
        results.len()
    );
}

#[test]
fn the_plan_shows_a_handler_veto_before_anything_is_applied() {
    let daemon = start("");
    let addr = http(&daemon);
    assert_eq!(submit(&addr, "short").0, 202);
    wait_until("the short loop to run", LIMIT, || {
        status(&daemon)["loops"]
            .as_array()
            .is_some_and(|l| !l.is_empty())
    });
    let without_short = current_text(&daemon)
        .split("[loops.short]")
        .next()
        .unwrap()
        .to_string()
        + "\n[server]\n";
    let plan = request(&addr, "POST", "/api/plan", Some(TOKEN), &without_short);
    assert_eq!(plan.status, 200, "{}", plan.text());
    let plan = plan.json();
    let in_use = "loop type `short` is in use by 1 running loop(s)";
    assert_eq!(plan["decision"], "reject", "{plan}");
    assert!(
        plan["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("vetoed by the `loops` handler: {in_use}")),
        "{plan}"
    );
    let loops = verdict(&plan, "loops");
    assert_eq!(loops["verdict"], "vetoed", "{plan}");
    assert!(
        loops["message"].as_str().unwrap().contains(in_use),
        "{plan}"
    );
    // Nothing was applied, and a plan that removes nothing in use is not vetoed.
    assert_eq!(status(&daemon)["generation"], 1);
    let more_loops = current_text(&daemon)
        + "\n[loops.extra]\nmax_iterations = 3\ndelay_ms = 1\ntemplate = \"done\"\n";
    let plan = request(&addr, "POST", "/api/plan", Some(TOKEN), &more_loops).json();
    assert_eq!(verdict(&plan, "loops")["verdict"], "accepted", "{plan}");
    assert_eq!(plan["decision"], "apply", "{plan}");
}

#[test]
fn the_plan_asks_every_affected_handler_and_changes_nothing() {
    let daemon = start("");
    let addr = http(&daemon);
    daemon.sandbox.write("greeting.txt", "hello {id}");
    let live = current_text(&daemon);
    let candidate = |template_file: &str| {
        live.replace("max_concurrent = 2", "max_concurrent = 3")
            .replace("log_level = \"info\"", "log_level = \"debug\"")
            .replace(
                "template_files = []",
                &format!("template_files = [\"{template_file}\"]"),
            )
    };

    // Every handler the reload would run answers: limits, templates and monitoring.
    let plan = request(
        &addr,
        "POST",
        "/api/plan",
        Some(TOKEN),
        &candidate("greeting.txt"),
    );
    assert_eq!(plan.status, 200, "{}", plan.text());
    let plan = plan.json();
    assert_eq!(plan["decision"], "apply", "{plan}");
    let mut handlers: Vec<&str> = plan["handlers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|scope| scope.as_str().unwrap())
        .collect();
    handlers.sort_unstable();
    assert_eq!(handlers, ["limits", "monitoring", "templates"], "{plan}");
    for scope in handlers {
        assert_eq!(
            verdict(&plan, scope)["verdict"],
            "accepted",
            "{scope}: {plan}"
        );
    }

    // A template file that cannot be read: the templates handler's veto, before anything runs.
    let plan = request(
        &addr,
        "POST",
        "/api/plan",
        Some(TOKEN),
        &candidate("missing.txt"),
    )
    .json();
    assert_eq!(plan["decision"], "reject", "{plan}");
    let templates = verdict(&plan, "templates");
    assert_eq!(templates["verdict"], "vetoed", "{plan}");
    assert!(
        templates["message"]
            .as_str()
            .unwrap()
            .contains("cannot read template file"),
        "{plan}"
    );
    assert_eq!(verdict(&plan, "limits")["verdict"], "accepted", "{plan}");

    // Neither plan changed the daemon: same generation, limits and file.
    let after = status(&daemon);
    assert_eq!(after["generation"], 1, "{after}");
    assert_eq!(after["max_concurrent"], 2, "{after}");
    assert_eq!(current_text(&daemon), live);
}

/// The entry of `scope` in a plan's `prepare` list.
fn verdict(plan: &Value, scope: &str) -> Value {
    plan["prepare"]
        .as_array()
        .and_then(|verdicts| verdicts.iter().find(|v| v["scope"] == scope))
        .cloned()
        .unwrap_or_else(|| panic!("no {scope} verdict in {plan}"))
}

/// Reads events until one has a generation of at least `generation`, failing on any gap or
/// repeat of ids after `last_id` (the first event read when `last_id` is none).
fn read_until_generation(
    stream: &mut EventStream,
    mut last_id: Option<u64>,
    generation: u64,
) -> (Vec<Value>, u64) {
    let mut seen = Vec::new();
    loop {
        let event = stream
            .next_event()
            .unwrap_or_else(|e| panic!("waiting for generation {generation}: {e}"));
        if let Some(last) = last_id {
            assert_eq!(event.id, last + 1, "an event was lost or repeated");
        }
        last_id = Some(event.id);
        let reached = event.data["generation"].as_u64() >= Some(generation);
        seen.push(event.data);
        if reached {
            return (seen, event.id);
        }
    }
}

fn applied_generations(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .filter(|e| e["result"] == "applied")
        .map(|e| e["generation"].as_u64().unwrap())
        .collect()
}

/// Edits `queue_capacity` from `from` to each next value through `to`, reloading after each.
fn reload_capacities(daemon: &Daemon, from: u64, to: u64) {
    for capacity in from + 1..=to {
        daemon.edit(|t| {
            t.replace(
                &format!("queue_capacity = {}", capacity - 1),
                &format!("queue_capacity = {capacity}"),
            )
        });
        let answer = request(&http(daemon), "POST", "/api/reload", Some(TOKEN), "");
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
}

#[test]
fn the_event_stream_delivers_a_burst_in_order_and_resumes_after_last_event_id() {
    const BURST: u64 = 30;
    let daemon = start("");
    let mut stream = EventStream::open(&http(&daemon), TOKEN, None);
    // Each manual reload after an edit is one event; the watcher may add more, which must
    // arrive in order too.
    reload_capacities(&daemon, 10, 10 + BURST);
    let last_generation = 1 + BURST;
    let (events, last_id) = read_until_generation(&mut stream, None, last_generation);
    let generations: Vec<u64> = events
        .iter()
        .map(|e| e["generation"].as_u64().unwrap())
        .collect();
    assert!(
        generations.windows(2).all(|w| w[0] <= w[1]),
        "{generations:?}"
    );
    assert_eq!(
        applied_generations(&events),
        (2..=last_generation).collect::<Vec<_>>()
    );

    // Drop the stream, reload more, come back with the last id seen: exactly the rest.
    drop(stream);
    reload_capacities(&daemon, 10 + BURST, 15 + BURST);
    let mut resumed = EventStream::open(&http(&daemon), TOKEN, Some(last_id));
    let (after, _) = read_until_generation(&mut resumed, Some(last_id), last_generation + 5);
    assert_eq!(
        applied_generations(&after),
        (last_generation + 1..=last_generation + 5).collect::<Vec<_>>()
    );
}

/// Samples of a Prometheus text exposition by `name{labels}`; panics on a malformed line.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let kind = comment.split_whitespace().next();
            assert!(
                matches!(kind, Some("HELP" | "TYPE")),
                "bad comment `{line}`"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad sample `{line}`"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in `{line}`"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in `{line}`");
        }
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in `{line}`"));
        samples.insert(series.to_string(), value);
    }
    samples
}

#[test]
fn metrics_parse_as_prometheus_text_and_match_the_events() {
    let daemon = start("");
    let addr = http(&daemon);
    let addr = addr.as_str();
    for _ in 0..3 {
        assert_eq!(submit(addr, "build").0, 202);
    }
    assert_eq!(submit(addr, "nope").0, 400);
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 3"));
    daemon.audit_record(2);
    daemon.edit(|t| t.replace("data_dir = \"data\"", "data_dir = \"other\""));
    daemon.audit_record(3);
    request(addr, "POST", "/api/reload", None, "");
    // The engine counts an event just after writing its audit record.
    let mut answer = request(addr, "GET", "/metrics", Some(TOKEN), "");
    // The server counts a closed connection until it has seen the close: wait for that too.
    wait_until(
        "the rejected reload in /metrics, with only its own connection open",
        LIMIT,
        || {
            answer = request(addr, "GET", "/metrics", Some(TOKEN), "");
            let text = answer.text();
            text.contains("hotcfg_reloads_total{result=\"rejected\"} 1")
                && text.contains("taskdaemon_open_connections 1\n")
        },
    );
    assert_eq!(answer.status, 200);
    assert!(answer
        .header("content-type")
        .unwrap()
        .starts_with("text/plain"));
    let samples = parse_prometheus(&answer.text());
    let history = get_json(addr, "/api/history", TOKEN);
    let count = |result: &str| {
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["result"] == result)
            .count() as f64
    };
    let sample = |series: &str| *samples.get(series).unwrap_or(&0.0);
    assert_eq!(
        sample("hotcfg_reloads_total{result=\"applied\"}"),
        count("applied"),
        "{samples:?}"
    );
    assert_eq!(
        sample("hotcfg_reloads_total{result=\"rejected\"}"),
        count("rejected"),
        "{samples:?}"
    );
    assert_eq!(sample("hotcfg_config_generation"), 2.0);
    assert_eq!(sample("taskdaemon_submits_total{result=\"queued\"}"), 3.0);
    assert_eq!(sample("taskdaemon_submits_total{result=\"refused\"}"), 1.0);
    assert_eq!(sample("taskdaemon_auth_failures_total"), 1.0);
    assert_eq!(sample("taskdaemon_open_connections"), 1.0, "{samples:?}");
    assert!(
        samples.contains_key("taskdaemon_queue_length"),
        "{samples:?}"
    );
    assert!(
        samples.contains_key("taskdaemon_running_loops"),
        "{samples:?}"
    );
}

/// `POST /api/revert` (issue 17): behind the token, a dry run, the revert itself with the file
/// written back and the audit record naming the target, and clear errors.
#[test]
fn the_daemon_reverts_to_a_chosen_generation_over_http() {
    let daemon = start("");
    let addr = &http(&daemon);
    daemon.edit(|t| t.replace("max_concurrent = 2", "max_concurrent = 5"));
    let reload = request(addr, "POST", "/api/reload", Some(TOKEN), "");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_eq!(status(&daemon)["generation"], 2);

    let body = r#"{"generation": 1}"#;
    let anonymous = request(addr, "POST", "/api/revert", None, body);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());

    let dry = r#"{"generation": 1, "dry_run": true}"#;
    let plan = request(addr, "POST", "/api/revert", Some(TOKEN), dry);
    assert_eq!(plan.status, 200, "{}", plan.text());
    let plan = plan.json();
    assert_eq!(plan["plan"]["decision"], "apply", "{plan}");
    assert_eq!(plan["plan"]["changes"][0]["path"], "limits.max_concurrent");
    assert_eq!(
        status(&daemon)["generation"],
        2,
        "a dry run changes nothing"
    );

    let history = get_json(addr, "/api/history", TOKEN);
    assert_eq!(
        history["restorable"],
        serde_json::json!([1, 2]),
        "{history}"
    );

    let reply = request(addr, "POST", "/api/revert", Some(TOKEN), body);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = reply.json();
    assert_eq!(reply["result"], "applied", "{reply}");
    assert_eq!(reply["generation"], 3);
    assert_eq!(reply["trigger"]["kind"], "revert");
    assert_eq!(reply["trigger"]["generation"], 1);
    let now = status(&daemon);
    assert_eq!(
        (now["generation"].clone(), now["max_concurrent"].clone()),
        (3.into(), 2.into())
    );
    assert!(current_text(&daemon).contains("max_concurrent = 2\n"));
    let record = daemon.audit_record(3);
    assert_eq!(record["trigger"]["kind"], "revert", "{record}");
    assert_eq!(record["trigger"]["generation"], 1);

    let missing = request(
        addr,
        "POST",
        "/api/revert",
        Some(TOKEN),
        r#"{"generation": 9}"#,
    );
    assert_eq!(missing.status, 404, "{}", missing.text());
    assert!(
        missing.json()["error"]
            .as_str()
            .unwrap()
            .contains("applied generation 9"),
        "{}",
        missing.text()
    );
    let bad = request(addr, "POST", "/api/revert", Some(TOKEN), r#"{"gen": 1}"#);
    assert_eq!(bad.status, 400, "{}", bad.text());
    let said = bad.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(
        said.starts_with(r#"expected {"generation": N, "dry_run": false}: unknown field `gen`"#),
        "{said}"
    );
    assert_eq!(status(&daemon)["generation"], 3);
}
