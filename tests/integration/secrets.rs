//! Secrets never leak: every output surface, with secret values live, changed, added, removed,
//! refused, mistyped and planned, searched for those values.
//!
//! Engine surfaces: `Debug` of the configuration, snapshot, handle, engine and handler context,
//! `Debug` and `Display` of diffs, changes, events and errors, the history and the event
//! channel, plans (text, JSON, `Debug`), `redacted_json`, the audit log, tracing output at TRACE
//! and metric names, labels and values. Daemon surfaces: the `config`, `status` and `reload`
//! replies, `fields`, `check`, `plan` (text and JSON), `history`, its log at `trace` and its
//! audit log.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use hotcfg::{
    ApplyContext, BoxError, FileSource, HotReload, ReloadResult, Reloader, ScopeHandler, Secret,
    Violations,
};
use hotcfg_tests::daemon::{Client, Daemon, LIMIT};
use hotcfg_tests::wait_until;
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

mod plain;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(restart)]
    listen: String,
    #[reload(scope = "auth", secret)]
    token: Secret<String>,
    #[reload(scope = "auth", secret)]
    #[serde(default)]
    pin: Option<Secret<u64>>,
    #[reload(nested)]
    #[serde(default)]
    backends: BTreeMap<String, Backend>,
    #[reload(scope = "limits")]
    max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "backends")]
struct Backend {
    url: String,
    #[reload(secret)]
    password: Secret<String>,
}

const TOKEN_1: &str = "tok-ALPHA-9f3k2";
const TOKEN_2: &str = "tok-BRAVO-7x1q8";
const PIN: &str = "8675309123";
const PASSWORD_1: &str = "pw-CHARLIE-4m2n";
const PASSWORD_2: &str = "pw-DELTA-6p0z";
/// Written where the pin (a number) goes: the type error must not quote it.
const MISTYPED: &str = "bad-ECHO-3j5h";
/// Written where the token (a string) goes.
const MISTYPED_NUMBER: &str = "5551234567";
const PLANNED: &str = "tok-FOXTROT-1b6c";

const SECRETS: [&str; 8] = [
    TOKEN_1,
    TOKEN_2,
    PIN,
    PASSWORD_1,
    PASSWORD_2,
    MISTYPED,
    MISTYPED_NUMBER,
    PLANNED,
];

fn text(listen: &str, token: &str, max: u32, backends: &[(&str, &str)]) -> String {
    let mut text =
        format!("listen = \"{listen}\"\ntoken = \"{token}\"\npin = {PIN}\nmax = {max}\n");
    for (name, password) in backends {
        text.push_str(&format!(
            "\n[backends.{name}]\nurl = \"http://{name}.invalid\"\npassword = \"{password}\"\n"
        ));
    }
    text
}

/// Vetoes `max = 99`, fails `max = 98`, and writes down how its context prints.
struct Limits {
    seen: Arc<Mutex<Vec<String>>>,
}

impl ScopeHandler<Config> for Limits {
    fn prepare(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.seen.lock().unwrap().push(format!("{cx:?}"));
        if cx.new.max == 99 {
            return Err("99 is too many".into());
        }
        Ok(())
    }
    fn apply(&self, cx: &ApplyContext<'_, Config>) -> Result<(), BoxError> {
        self.seen.lock().unwrap().push(format!("{cx:?}"));
        if cx.new.max == 98 {
            return Err("98 cannot be applied".into());
        }
        Ok(())
    }
}

/// An `io::Write` into a shared buffer, for the tracing subscriber.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// Where tracing output of this thread goes, while a capture is active.
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
}

/// Writes to the capture of the current thread, if any.
struct ThreadCapture;

impl std::io::Write for ThreadCapture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        CAPTURE.with(|capture| {
            if let Some(captured) = capture.borrow_mut().as_mut() {
                captured.write_all(bytes)?;
            }
            Ok(bytes.len())
        })
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's tracing output (at TRACE) into `log` until dropped.
///
/// A global subscriber, installed once, rather than a thread-local default: with only scoped
/// subscribers, a callsite first hit by another test thread can be cached as uninteresting, and
/// its events would then be missed here (seen as a flaky empty capture).
struct CaptureGuard;

impl CaptureGuard {
    fn start(log: &Captured) -> CaptureGuard {
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing_subscriber::filter::LevelFilter::TRACE)
                .with_ansi(false)
                .with_writer(|| ThreadCapture)
                .finish();
            use tracing_subscriber::util::SubscriberInitExt;
            subscriber
                .try_init()
                .expect("no other test installs a global tracing subscriber");
        });
        CAPTURE.with(|capture| *capture.borrow_mut() = Some(log.clone()));
        CaptureGuard
    }
}

impl Drop for CaptureGuard {
    fn drop(&mut self) {
        CAPTURE.with(|capture| *capture.borrow_mut() = None);
    }
}

fn assert_nowhere(surfaces: &[(String, String)]) {
    for (name, shown) in surfaces {
        for secret in SECRETS {
            assert!(
                !shown.contains(secret),
                "secret `{secret}` leaked into {name}:\n{shown}"
            );
        }
    }
}

#[test]
fn no_engine_surface_shows_a_secret() {
    use metrics_util::debugging::DebuggingRecorder;
    let sandbox = Sandbox::new();
    let path = sandbox.write(
        "app.toml",
        &text("127.0.0.1:1", TOKEN_1, 4, &[("a", PASSWORD_1)]),
    );
    let audit = sandbox.path("audit.jsonl");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Captured::default();
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let mut surfaces: Vec<(String, String)> = Vec::new();

    metrics::with_local_recorder(&recorder, || {
        let _traced = CaptureGuard::start(&log);
        {
            let reloader = Reloader::<Config>::builder(FileSource::new(&path))
                .validator(|c: &Config, v: &mut Violations| {
                    v.check(c.max >= 1, "max", "must be at least 1")
                })
                .handler("limits", Limits { seen: seen.clone() })
                .on_apply("auth", |_| Ok(()))
                .on_apply("backends", |_| Ok(()))
                .audit_log(&audit)
                .build()
                .unwrap();
            let mut events = reloader.events();
            let live = reloader.handle().snapshot();
            assert_eq!(live.token.expose_secret(), TOKEN_1, "the secret is live");

            let steps: Vec<(&str, String)> = vec![
                // A secret changes, with a hot change.
                (
                    "applied",
                    text("127.0.0.1:1", TOKEN_2, 5, &[("a", PASSWORD_1)]),
                ),
                // An entry holding a secret appears, another disappears.
                (
                    "applied",
                    text("127.0.0.1:1", TOKEN_2, 5, &[("b", PASSWORD_2)]),
                ),
                // A mistyped secret: the parse error must not quote it.
                (
                    "failed",
                    text("127.0.0.1:1", TOKEN_2, 5, &[("b", PASSWORD_2)])
                        .replace(&format!("pin = {PIN}"), &format!("pin = \"{MISTYPED}\"")),
                ),
                (
                    "failed",
                    text("127.0.0.1:1", TOKEN_2, 5, &[("b", PASSWORD_2)]).replace(
                        &format!("token = \"{TOKEN_2}\""),
                        &format!("token = {MISTYPED_NUMBER}"),
                    ),
                ),
                // Refused with a secret change: restart-only, invalid, vetoed, failed in apply.
                (
                    "rejected",
                    text("0.0.0.0:2", TOKEN_1, 5, &[("b", PASSWORD_1)]),
                ),
                (
                    "failed",
                    text("127.0.0.1:1", TOKEN_1, 0, &[("b", PASSWORD_1)]),
                ),
                (
                    "rejected",
                    text("127.0.0.1:1", TOKEN_1, 99, &[("b", PASSWORD_1)]),
                ),
                (
                    "failed",
                    text("127.0.0.1:1", TOKEN_1, 98, &[("b", PASSWORD_1)]),
                ),
            ];
            for (expected, content) in &steps {
                std::fs::write(&path, content).unwrap();
                let event = reloader.reload_now();
                assert_eq!(event.result.kind(), *expected, "{event}");
                surfaces.push(("event Display".into(), event.to_string()));
                surfaces.push(("event Debug".into(), format!("{event:?}")));
                surfaces.push(("diff Display".into(), event.changes.to_string()));
                surfaces.push(("diff Debug".into(), format!("{:?}", event.changes)));
                for change in event.changes.iter() {
                    surfaces.push(("change".into(), format!("{change} {change:?}")));
                }
                if let ReloadResult::Failed { error, .. } = &event.result {
                    surfaces.push(("error".into(), format!("{error} {error:?}")));
                }
            }
            let live = reloader.handle().snapshot();
            assert_eq!(live.token.expose_secret(), TOKEN_2);
            assert_eq!(live.backends["b"].password.expose_secret(), PASSWORD_2);

            // A dry run of yet another secret.
            std::fs::write(&path, text("127.0.0.1:1", PLANNED, 6, &[("b", PASSWORD_2)])).unwrap();
            let plan = reloader.plan();
            assert_eq!(plan.changes.len(), 2, "{plan}");
            surfaces.push(("plan text".into(), plan.to_string()));
            surfaces.push(("plan JSON".into(), serde_json::to_string(&plan).unwrap()));
            surfaces.push(("plan Debug".into(), format!("{plan:?}")));
            // A diff computed directly.
            let old = Config::clone(&live);
            let mut new = old.clone();
            new.token = Secret::new(PLANNED.to_string());
            new.backends.clear();
            let diff = old.diff(&new);
            surfaces.push(("direct diff".into(), format!("{diff} {diff:?}")));

            surfaces.push(("config Debug".into(), format!("{:?}", live.config())));
            surfaces.push(("snapshot Debug".into(), format!("{live:?}")));
            surfaces.push(("handle Debug".into(), format!("{:?}", reloader.handle())));
            surfaces.push(("engine Debug".into(), format!("{reloader:?}")));
            surfaces.push((
                "redacted_json".into(),
                hotcfg::redacted_json(live.config()).to_string(),
            ));
            for event in reloader.history() {
                surfaces.push(("history".into(), format!("{event} {event:?}")));
            }
            while let Ok(event) = events.try_recv() {
                surfaces.push(("event channel".into(), format!("{event} {event:?}")));
            }
            surfaces.push((
                "pending".into(),
                format!("{:?}", reloader.pending_restart()),
            ));
        }
    });

    for context in seen.lock().unwrap().iter() {
        surfaces.push(("handler context Debug".into(), context.clone()));
    }
    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audit_text.lines().count(), 9, "{audit_text}");
    surfaces.push(("audit log".into(), audit_text));
    let records = hotcfg::verify_audit_log(&audit).unwrap();
    surfaces.push(("audit records".into(), format!("{records:?}")));
    let traced = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        traced.contains("configuration applied") && traced.contains("reload rejected"),
        "the tracing capture is empty or partial:\n{traced}"
    );
    surfaces.push(("tracing output".into(), traced));
    let metrics: Vec<String> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, description, value)| {
            format!("{key:?} {unit:?} {description:?} {value:?}")
        })
        .collect();
    assert!(metrics.len() >= 5, "{metrics:?}");
    surfaces.push(("metrics".into(), metrics.join("\n")));

    // The surfaces are real: the mistyped values were refused with their type named.
    let all: String = surfaces.iter().map(|(_, s)| s.as_str()).collect();
    assert!(
        all.contains("`pin`: invalid value, expected u64 (not shown: the value is secret)"),
        "{all}"
    );
    assert!(
        all.contains("`token`: invalid value, expected String (not shown: the value is secret)"),
        "{all}"
    );
    assert_nowhere(&surfaces);
}

const DAEMON_TOKEN_1: &str = "dmn-GOLF-2w8e";
const DAEMON_TOKEN_2: &str = "dmn-HOTEL-5r4t";
const DAEMON_MISTYPED: &str = "4815162342";
const DAEMON_CHECKED: &str = "dmn-INDIA-0q9w";

fn daemon_text(token: &str, max_concurrent: u32) -> String {
    format!(
        r#"api_token = "{token}"

[daemon]
listen = "127.0.0.1:0"

[storage]
data_dir = "data"

[limits]
max_concurrent = {max_concurrent}
queue_capacity = 10
submits_per_second = 100

[templates]
progress = "P {{id}} {{iteration}}"
done = "D {{id}}"

[monitoring]
log_level = "trace"
status_interval_secs = 1

[loops.build]
max_iterations = 3
delay_ms = 1
template = "progress"
"#
    )
}

#[test]
fn no_daemon_surface_shows_a_secret() {
    let binary = crate::daemon::binary();
    let daemon = Daemon::start(binary, "reject", &daemon_text(DAEMON_TOKEN_1, 2));
    let mut surfaces: Vec<(String, String)> = Vec::new();
    let mut client = daemon.client(DAEMON_TOKEN_1);
    surfaces.push(("config reply".into(), client.call("config").to_string()));
    assert_eq!(client.call("config")["api_token"], "<redacted>");
    surfaces.push((
        "submit reply".into(),
        client.call("submit build").to_string(),
    ));
    surfaces.push(("status reply".into(), client.call("status").to_string()));

    // Rotate the token (with a hot change). The daemon's watcher applies a completed save at
    // once, so the old token stops working as the file is written: wait for the new one, then
    // reload the same bytes through the `reload` endpoint.
    std::fs::write(
        daemon.sandbox.path("taskdaemon.toml"),
        daemon_text(DAEMON_TOKEN_2, 3),
    )
    .unwrap();
    // Its audit record is written after the new token is live; polling with the new token
    // instead would count as failed authentications until then.
    let rotated = daemon.audit_record(2);
    assert_eq!(rotated["result"], "applied", "{rotated}");
    // The record can come a moment before the new token is published: a few tries at most,
    // far below the lockout.
    wait_until("the rotated token to be live", LIMIT, || {
        Client::with_token(&daemon.addr, DAEMON_TOKEN_2)
            .try_call("status")
            .is_ok_and(|status| status["generation"].is_u64())
    });
    let mut client = daemon.client(DAEMON_TOKEN_2);
    let reply = client.call("reload");
    surfaces.push(("reload reply".into(), reply.to_string()));
    assert_eq!(reply["result"], "unchanged", "{reply}");
    // A mistyped token: refused, and the reply does not quote it.
    std::fs::write(
        daemon.sandbox.path("taskdaemon.toml"),
        daemon_text(DAEMON_TOKEN_2, 3).replace(&format!("\"{DAEMON_TOKEN_2}\""), DAEMON_MISTYPED),
    )
    .unwrap();
    let reply = client.call("reload");
    assert_eq!(reply["result"], "failed", "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("`api_token`: invalid value, expected String (not shown"),
        "{reply}"
    );
    surfaces.push(("failed reload reply".into(), reply.to_string()));
    std::fs::write(
        daemon.sandbox.path("taskdaemon.toml"),
        daemon_text(DAEMON_TOKEN_2, 3),
    )
    .unwrap();
    surfaces.push(("reload reply".into(), client.call("reload").to_string()));
    surfaces.push(("status reply".into(), client.call("status").to_string()));
    surfaces.push(("config reply".into(), client.call("config").to_string()));

    // The operator commands.
    let dir = daemon.sandbox.dir();
    let current = daemon
        .sandbox
        .write("current.toml", &daemon_text(DAEMON_TOKEN_1, 2));
    let candidate = daemon
        .sandbox
        .write("candidate.toml", &daemon_text(DAEMON_CHECKED, 4));
    let invalid = daemon
        .sandbox
        .write("invalid.toml", &daemon_text(DAEMON_CHECKED, 0));
    let mistyped = daemon.sandbox.write(
        "mistyped.toml",
        &daemon_text(DAEMON_TOKEN_1, 2).replace(&format!("\"{DAEMON_TOKEN_1}\""), DAEMON_MISTYPED),
    );
    let audit = daemon.sandbox.path("audit.jsonl");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let commands: Vec<Vec<String>> = vec![
        vec!["fields".into()],
        vec!["check".into(), path(&candidate)],
        vec!["check".into(), path(&invalid)],
        vec!["check".into(), path(&mistyped)],
        vec![
            "plan".into(),
            "--config".into(),
            path(&current),
            path(&candidate),
        ],
        vec![
            "plan".into(),
            "--config".into(),
            path(&current),
            path(&candidate),
            "--json".into(),
        ],
        vec![
            "plan".into(),
            "--config".into(),
            path(&current),
            path(&mistyped),
        ],
        vec![
            "history".into(),
            "--audit-log".into(),
            path(&audit),
            "--verify".into(),
        ],
    ];
    for args in commands {
        let output = std::process::Command::new(binary)
            .args(&args)
            .current_dir(dir)
            .output()
            .unwrap();
        let shown = String::from_utf8_lossy(&output.stdout).to_string()
            + &String::from_utf8_lossy(&output.stderr);
        assert!(
            !shown.trim().is_empty(),
            "`{}` printed nothing",
            args.join(" ")
        );
        surfaces.push((format!("`taskdaemon {}`", args.join(" ")), shown));
    }
    let fields = &surfaces
        .iter()
        .find(|(n, _)| n == "`taskdaemon fields`")
        .unwrap()
        .1;
    assert!(fields
        .lines()
        .any(|l| l.starts_with("api_token") && l.contains("yes")));

    let audit_text = std::fs::read_to_string(&audit).unwrap();
    assert!(audit_text.lines().count() >= 4, "{audit_text}");
    surfaces.push(("audit log".into(), audit_text));
    let log = daemon.stderr();
    assert!(
        log.contains("TRACE") || log.contains("DEBUG"),
        "the daemon logged nothing at trace level:\n{log}"
    );
    surfaces.push(("daemon log".into(), log));

    for (name, shown) in &surfaces {
        for secret in [
            DAEMON_TOKEN_1,
            DAEMON_TOKEN_2,
            DAEMON_MISTYPED,
            DAEMON_CHECKED,
        ] {
            assert!(
                !shown.contains(secret),
                "secret `{secret}` leaked into {name}:\n{shown}"
            );
        }
    }
}

#[test]
fn a_file_holding_only_a_secret_is_refused_without_quoting_it() {
    // Someone writes the token itself into the configuration file. Before the fix serde_json and
    // serde_yaml answered "invalid type: string \"...\", expected a map", quoting the file.
    const LONE: &str = "lone-JULIET-8u7y";
    for (name, text) in [
        ("c.json", format!("\"{LONE}\"")),
        ("c.yaml", LONE.to_string()),
        ("c.toml", LONE.to_string()),
    ] {
        let sandbox = Sandbox::new();
        let path = sandbox.write(name, &text);
        let err = Reloader::<Config>::builder(FileSource::new(&path))
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cannot parse configuration"), "{err}");
        assert!(!err.contains(LONE), "{name}: {err}");
    }
}

/// A plain struct (it does not derive `HotReload`) holding a secret: a scoped leaf as a whole.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct HealthCheck {
    path: String,
    auth_token: Option<Secret<String>>,
}

/// Secrets marked by their type only, never by `#[reload(secret)]`: in a leaf struct, a `Vec`,
/// an `Option` and a map (issue 14).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Gateway {
    health: HealthCheck,
    #[serde(default)]
    keys: Vec<Secret<String>>,
    #[serde(default)]
    spare: Option<Secret<u64>>,
    #[serde(default)]
    peers: BTreeMap<String, Secret<String>>,
    weight: u32,
}

const TYPED: [&str; 9] = [
    "hc-KILO-1a2b",
    "hc-LIMA-3c4d",
    "key-MIKE-5e6f",
    "key-NOVEMBER-7g8h",
    "9081726354",
    "peer-OSCAR-9i0j",
    "peer-PAPA-1k2l",
    "peer-QUEBEC-3m4n",
    "5550001112",
];

fn gateway_text(token: &str, keys: &[&str], spare: &str, peers: &[(&str, &str)]) -> String {
    let keys: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    let mut text = format!(
        "keys = [{}]\nspare = {spare}\nweight = 1\n\n[health]\npath = \"/up\"\nauth_token = \
         {token}\n\n[peers]\n",
        keys.join(", ")
    );
    for (name, value) in peers {
        text.push_str(&format!("{name} = \"{value}\"\n"));
    }
    text
}

#[test]
fn secrets_by_type_reach_no_surface() {
    let [hc1, hc2, key1, key2, spare, peer1, peer2, peer3, mistyped] = TYPED;
    let sandbox = Sandbox::new();
    let quoted = |s: &str| format!("\"{s}\"");
    let path = sandbox.write(
        "gw.toml",
        &gateway_text(&quoted(hc1), &[key1], spare, &[("a", peer1)]),
    );
    let audit = sandbox.path("audit.jsonl");
    let log = Captured::default();
    let mut surfaces: Vec<(String, String)> = Vec::new();
    let _traced = CaptureGuard::start(&log);
    let reloader = Reloader::<Gateway>::builder(FileSource::new(&path))
        .on_apply("routing", |_| Ok(()))
        .audit_log(&audit)
        .build()
        .unwrap();
    let steps = [
        // Each secret changes, one at a time; a map entry holding one appears.
        gateway_text(&quoted(hc2), &[key1], spare, &[("a", peer1)]),
        gateway_text(&quoted(hc2), &[key1, key2], spare, &[("a", peer1)]),
        gateway_text(&quoted(hc2), &[key1, key2], spare, &[("a", peer2)]),
        gateway_text(
            &quoted(hc2),
            &[key1, key2],
            spare,
            &[("a", peer2), ("b", peer3)],
        ),
        // Mistyped: the parse error must not quote the value.
        gateway_text(mistyped, &[key1, key2], spare, &[("a", peer2)]),
        gateway_text(
            &quoted(hc2),
            &[key1, key2],
            &quoted(mistyped),
            &[("a", peer2)],
        ),
    ];
    let expected = [
        "health.auth_token [routing]: <redacted> -> <redacted>",
        "keys [routing]: [\"<redacted>\"] -> [\"<redacted>\",\"<redacted>\"]",
        "peers.a [routing]: <redacted> -> <redacted>",
        "peers.b [routing]: added <redacted>",
    ];
    for (i, content) in steps.iter().enumerate() {
        std::fs::write(&path, content).unwrap();
        let event = reloader.reload_now();
        if let Some(expected) = expected.get(i) {
            assert_eq!(event.result.kind(), "applied", "{event}");
            assert_eq!(event.changes.to_string(), *expected, "step {i}");
            assert!(
                event.changes.iter().all(|c| c.secret),
                "{:?}",
                event.changes
            );
        } else {
            assert_eq!(event.result.kind(), "failed", "{event}");
            let ReloadResult::Failed { error, .. } = &event.result else {
                unreachable!()
            };
            surfaces.push(("error".into(), format!("{error} {error:?}")));
            assert!(
                error
                    .to_string()
                    .contains("(not shown: the value is secret)"),
                "{error}"
            );
        }
        surfaces.push(("event".into(), format!("{event} {event:?}")));
    }
    let live = reloader.handle().snapshot();
    assert_eq!(
        live.peers["b"].expose_secret(),
        peer3,
        "the secrets are live"
    );
    std::fs::write(&path, gateway_text(&quoted(hc1), &[], spare, &[])).unwrap();
    let plan = reloader.plan();
    assert_eq!(plan.changes.len(), 4, "{plan}");
    surfaces.push(("plan".into(), format!("{plan} {plan:?}")));
    surfaces.push(("plan JSON".into(), serde_json::to_string(&plan).unwrap()));
    let json = hotcfg::redacted_json(live.config());
    assert_eq!(json["health"]["auth_token"], "<redacted>");
    surfaces.push(("redacted_json".into(), json.to_string()));
    surfaces.push((
        "serialized".into(),
        serde_json::to_string(live.config()).unwrap(),
    ));
    surfaces.push(("snapshot Debug".into(), format!("{live:?}")));
    for event in reloader.history() {
        surfaces.push(("history".into(), format!("{event} {event:?}")));
    }
    drop(reloader);
    surfaces.push(("audit log".into(), std::fs::read_to_string(&audit).unwrap()));
    surfaces.push((
        "tracing output".into(),
        String::from_utf8(log.0.lock().unwrap().clone()).unwrap(),
    ));
    for (name, shown) in &surfaces {
        for secret in TYPED {
            assert!(
                !shown.contains(secret),
                "secret `{secret}` leaked into {name}:\n{shown}"
            );
        }
    }
}
