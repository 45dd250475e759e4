//! What an audit record says started its attempt: the kind, and which file changed (the
//! configuration or a file it refers to) or which remote change arrived. The record used to say
//! `"file"` without saying which file (issue 14), and a remote trigger was a formatted string
//! (issue 13).

use std::path::{Path, PathBuf};
use std::time::Duration;

use hotcfg::{
    ConfigWatcher, FileSource, HotReload, Reloader, RemoteCause, RemoteChange, Trigger,
    WatchOptions,
};
use hotcfg_tests::{wait_until, Sandbox};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    /// A certificate the configuration refers to: its edits reload too.
    #[reload(scope = "tls", watch)]
    cert: PathBuf,
    #[reload(scope = "limits")]
    workers: u32,
}

/// A sandbox with `app.toml` (referring to `cert.pem`) and an engine auditing to `audit.jsonl`.
fn engine() -> (Sandbox, Reloader<Config>) {
    let sandbox = Sandbox::new();
    let cert = sandbox.write("cert.pem", "first certificate\n");
    let config = sandbox.write(
        "app.toml",
        &format!("cert = {:?}\nworkers = 1\n", cert.display().to_string()),
    );
    let reloader = Reloader::<Config>::builder(FileSource::new(&config))
        .audit_log(sandbox.path("audit.jsonl"))
        .build()
        .unwrap();
    (sandbox, reloader)
}

/// The `trigger` of every record in the log, as written.
fn triggers(sandbox: &Sandbox) -> Vec<Value> {
    let text = std::fs::read_to_string(sandbox.path("audit.jsonl")).unwrap();
    text.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap()["trigger"].clone())
        .collect()
}

fn file_trigger(path: &Path) -> Value {
    json!({ "kind": "file", "path": path.display().to_string() })
}

#[test]
fn a_file_trigger_records_which_file_changed() {
    let (sandbox, reloader) = engine();
    let config = sandbox.path("app.toml");
    let cert = sandbox.path("cert.pem");
    sandbox.write("cert.pem", "second certificate\n");
    reloader.trigger(Trigger::File(cert.clone()));
    let text = std::fs::read_to_string(&config).unwrap();
    sandbox.write("app.toml", &text.replace("workers = 1", "workers = 2"));
    reloader.trigger(Trigger::File(config.clone()));
    // Each attempt changes something: a reload that finds the bytes already live is not recorded.
    sandbox.write("app.toml", &text.replace("workers = 1", "workers = 3"));
    reloader.reload_now();

    assert_eq!(
        triggers(&sandbox),
        [
            json!({ "kind": "startup" }),
            file_trigger(&cert),
            file_trigger(&config),
            json!({ "kind": "manual" }),
        ]
    );
    // Read back through the library, the record names the file too.
    let records = hotcfg::verify_audit_log(sandbox.path("audit.jsonl")).unwrap();
    assert_eq!(records[1].trigger.kind, "file");
    assert_eq!(
        records[1].trigger.path.as_deref(),
        Some(cert.display().to_string().as_str())
    );
}

#[test]
fn an_edit_of_a_referenced_file_seen_by_the_watcher_is_recorded_with_its_path() {
    let (sandbox, reloader) = engine();
    let watcher = ConfigWatcher::start(reloader.clone(), WatchOptions::default()).unwrap();
    sandbox.write("cert.pem", "renewed certificate\n");
    let cert = file_trigger(&sandbox.path("cert.pem"));
    wait_until("the audit record of the certificate edit", LIMIT, || {
        triggers(&sandbox).contains(&cert)
    });
    drop(watcher);
}

#[test]
fn a_remote_trigger_is_recorded_field_by_field() {
    let (sandbox, reloader) = engine();
    let text = std::fs::read_to_string(sandbox.path("app.toml")).unwrap();
    let edit = |workers: &str| {
        sandbox.write("app.toml", &text.replace("workers = 1", workers));
    };
    edit("workers = 2");
    let change = RemoteChange::new("etcd", "apps/billing/config.toml", 42, RemoteCause::Watched);
    let event = reloader.trigger(Trigger::Remote(change.clone()));
    assert_eq!(event.trigger, Trigger::Remote(change));
    edit("workers = 3");
    let fresh = RemoteChange::new("etcd", "apps/billing/", 43, RemoteCause::Read);
    reloader.trigger(Trigger::Remote(fresh));

    let triggers = triggers(&sandbox);
    assert_eq!(
        triggers[1..],
        [
            json!({
                "kind": "remote", "store": "etcd", "key": "apps/billing/config.toml",
                "revision": 42, "cause": "watched",
            }),
            json!({
                "kind": "remote", "store": "etcd", "key": "apps/billing/",
                "revision": 43, "cause": "read",
            }),
        ]
    );
    let records = hotcfg::verify_audit_log(sandbox.path("audit.jsonl")).unwrap();
    assert_eq!(
        records[1].trigger.to_string(),
        "remote etcd apps/billing/config.toml revision 42 (watched)"
    );
}
