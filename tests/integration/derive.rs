//! `#[derive(HotReload)]` on a configuration shaped like the task daemon's: exact paths,
//! classes, rendered values, redaction, schema, merge and watched files.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use hotcfg::{Change, ChangeKind, Class, FieldInfo, HotReload, WatchedFile, REDACTED};
use serde::{Deserialize, Serialize};

/// Restart-only, and a plain struct: it does not derive `HotReload`, so it is one leaf whose
/// changes are reported at its keys (`daemon.listen`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Daemon {
    listen: String,
    workers: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Limits {
    /// Loops allowed to run at once.
    #[reload(scope = "limits")]
    max_concurrent: usize,
    /// Seconds a loop may run
    /// before it is stopped.
    #[reload(scope = "limits")]
    timeout_secs: u64,
}

/// A loop type: hot as a whole (added and removed entries apply live), except its runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "loops")]
struct LoopType {
    /// Iterations before the loop stops.
    max_iterations: u32,
    template: String,
    /// The executable that runs the loop.
    #[reload(restart)]
    runner: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "tls")]
struct Tls {
    #[reload(watch)]
    cert: PathBuf,
    #[reload(watch)]
    key: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "notify")]
struct Webhook {
    url: String,
    #[reload(secret)]
    token: String,
}

/// Worker pools: restart-only as a whole (no container attribute).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Pool {
    size: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    /// Where the daemon listens.
    daemon: Daemon,
    #[reload(nested)]
    limits: Limits,
    /// Loop types by name.
    #[reload(nested)]
    loops: BTreeMap<String, LoopType>,
    /// Prompt templates by name.
    #[reload(scope = "templates")]
    templates: BTreeMap<String, String>,
    #[reload(nested)]
    tls: Option<Tls>,
    /// Token for the control API.
    #[reload(scope = "auth", secret)]
    api_token: String,
    /// Directory of extra prompt files.
    #[reload(scope = "templates", watch)]
    prompt_dir: PathBuf,
    #[reload(nested)]
    webhooks: HashMap<String, Webhook>,
    #[reload(nested)]
    pools: BTreeMap<String, Pool>,
    /// Not in the file: left out of diff and schema; merge keeps the current value.
    #[serde(skip)]
    generation: u64,
}

const TOKEN: &str = "s3cr3t-token-value";
const WEBHOOK_TOKEN: &str = "hook-token-value";

fn lp(max_iterations: u32) -> LoopType {
    LoopType {
        max_iterations,
        template: "default".into(),
        runner: "/usr/bin/claude".into(),
    }
}

fn base() -> Config {
    Config {
        daemon: Daemon {
            listen: "127.0.0.1:7000".into(),
            workers: 4,
        },
        limits: Limits {
            max_concurrent: 4,
            timeout_secs: 600,
        },
        loops: BTreeMap::from([("fast".to_string(), lp(10)), ("slow".to_string(), lp(100))]),
        templates: BTreeMap::from([("plan".to_string(), "Plan {task}".to_string())]),
        tls: None,
        api_token: TOKEN.into(),
        prompt_dir: PathBuf::from("prompts"),
        webhooks: HashMap::from([(
            "ops".to_string(),
            Webhook {
                url: "https://ops.example/hook".into(),
                token: WEBHOOK_TOKEN.into(),
            },
        )]),
        pools: BTreeMap::from([("io".to_string(), Pool { size: 2 })]),
        generation: 1,
    }
}

fn tls() -> Tls {
    Tls {
        cert: PathBuf::from("tls/cert.pem"),
        key: PathBuf::from("tls/key.pem"),
    }
}

fn modified(path: &str, class: Class, old: &str, new: &str) -> Change {
    Change {
        path: path.into(),
        class,
        kind: ChangeKind::Modified,
        old: Some(old.into()),
        new: Some(new.into()),
        secret: false,
    }
}

fn redacted(path: &str, class: Class) -> Change {
    Change {
        path: path.into(),
        class,
        kind: ChangeKind::Modified,
        old: Some(REDACTED.into()),
        new: Some(REDACTED.into()),
        secret: true,
    }
}

fn added(path: &str, class: Class, new: &str) -> Change {
    Change {
        path: path.into(),
        class,
        kind: ChangeKind::Added,
        old: None,
        new: Some(new.into()),
        secret: false,
    }
}

fn removed(path: &str, class: Class, old: &str) -> Change {
    Change {
        path: path.into(),
        class,
        kind: ChangeKind::Removed,
        old: Some(old.into()),
        new: None,
        secret: false,
    }
}

#[test]
fn equal_values_have_no_changes() {
    let diff = base().diff(&base());
    assert!(diff.is_empty());
    assert_eq!(diff.to_string(), "no changes");
}

#[test]
fn class_constants_follow_the_container_attribute() {
    assert_eq!(Config::CLASS, Class::Restart);
    assert_eq!(Limits::CLASS, Class::Restart);
    assert_eq!(Pool::CLASS, Class::Restart);
    assert_eq!(LoopType::CLASS, Class::Scope("loops"));
    assert_eq!(Tls::CLASS, Class::Scope("tls"));
}

#[test]
fn hot_field_change_is_rendered_as_compact_json() {
    let mut new = base();
    new.limits.max_concurrent = 8;
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [modified(
            "limits.max_concurrent",
            Class::Scope("limits"),
            "4",
            "8"
        )]
    );
    assert_eq!(diff.to_string(), "limits.max_concurrent [limits]: 4 -> 8");
    assert!(!diff.needs_restart());
    assert_eq!(diff.scopes().collect::<Vec<_>>(), ["limits"]);
}

#[test]
fn unannotated_plain_struct_is_restart_only_and_walked_to_its_keys() {
    let mut new = base();
    new.daemon.listen = "127.0.0.1:7001".into();
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [modified(
            "daemon.listen",
            Class::Restart,
            "\"127.0.0.1:7000\"",
            "\"127.0.0.1:7001\""
        )]
    );
    assert!(diff.needs_restart());
    assert_eq!(
        diff.to_string(),
        "daemon.listen [restart]: \"127.0.0.1:7000\" -> \"127.0.0.1:7001\""
    );
}

#[test]
fn several_edits_are_listed_in_field_order() {
    let mut new = base();
    // Edited in an order unlike the declaration order.
    new.pools.get_mut("io").unwrap().size = 3;
    new.api_token = "rotated".into();
    new.templates
        .insert("review".into(), "Review {diff}".into());
    new.limits.timeout_secs = 900;
    new.daemon.workers = 8;
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [
            modified("daemon.workers", Class::Restart, "4", "8"),
            modified("limits.timeout_secs", Class::Scope("limits"), "600", "900"),
            added(
                "templates.review",
                Class::Scope("templates"),
                "\"Review {diff}\""
            ),
            redacted("api_token", Class::Scope("auth")),
            modified("pools.io.size", Class::Restart, "2", "3"),
        ]
    );
    assert!(diff.needs_restart());
    assert_eq!(
        diff.scopes().collect::<Vec<_>>(),
        ["auth", "limits", "templates"]
    );
    assert_eq!(diff.hot_changes().count(), 3);
    assert_eq!(diff.restart_changes().count(), 2);
}

#[test]
fn map_entry_modified_added_and_removed() {
    let mut new = base();
    new.loops.get_mut("fast").unwrap().max_iterations = 20;
    new.loops.remove("slow");
    new.loops.insert("careful".into(), lp(5));
    let diff = base().diff(&new);
    let entry = r#"{"max_iterations":5,"template":"default","runner":"/usr/bin/claude"}"#;
    let slow = r#"{"max_iterations":100,"template":"default","runner":"/usr/bin/claude"}"#;
    // Keys in sorted order: careful, fast, slow.
    assert_eq!(
        diff.changes(),
        [
            added("loops.careful", Class::Scope("loops"), entry),
            modified(
                "loops.fast.max_iterations",
                Class::Scope("loops"),
                "10",
                "20"
            ),
            removed("loops.slow", Class::Scope("loops"), slow),
        ]
    );
    assert!(!diff.needs_restart());
}

#[test]
fn restart_field_inside_a_hot_map_entry_is_restart() {
    let mut new = base();
    new.loops.get_mut("fast").unwrap().runner = "/opt/claude".into();
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [modified(
            "loops.fast.runner",
            Class::Restart,
            "\"/usr/bin/claude\"",
            "\"/opt/claude\""
        )]
    );
}

#[test]
fn restart_class_map_entries_are_restart() {
    let mut new = base();
    new.pools.insert("cpu".into(), Pool { size: 8 });
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [added("pools.cpu", Class::Restart, r#"{"size":8}"#)]
    );
    assert!(diff.needs_restart());
}

#[test]
fn leaf_map_entries_are_walked() {
    let mut new = base();
    new.templates.insert("plan".into(), "Plan: {task}".into());
    assert_eq!(
        base().diff(&new).changes(),
        [modified(
            "templates.plan",
            Class::Scope("templates"),
            "\"Plan {task}\"",
            "\"Plan: {task}\""
        )]
    );
    new.templates.clear();
    assert_eq!(
        base().diff(&new).changes(),
        [removed(
            "templates.plan",
            Class::Scope("templates"),
            "\"Plan {task}\""
        )]
    );
}

#[test]
fn optional_section_added_modified_removed() {
    let none = base();
    let mut some = base();
    some.tls = Some(tls());
    let rendered = r#"{"cert":"tls/cert.pem","key":"tls/key.pem"}"#;

    assert_eq!(
        none.diff(&some).changes(),
        [added("tls", Class::Scope("tls"), rendered)]
    );
    assert_eq!(
        some.diff(&none).changes(),
        [removed("tls", Class::Scope("tls"), rendered)]
    );

    let mut rotated = some.clone();
    rotated.tls.as_mut().unwrap().cert = PathBuf::from("tls/cert2.pem");
    assert_eq!(
        some.diff(&rotated).changes(),
        [modified(
            "tls.cert",
            Class::Scope("tls"),
            "\"tls/cert.pem\"",
            "\"tls/cert2.pem\""
        )]
    );
    assert_eq!(
        some.diff(&rotated).to_string(),
        "tls.cert [tls]: \"tls/cert.pem\" -> \"tls/cert2.pem\""
    );
}

#[test]
fn secret_values_are_redacted_everywhere() {
    let mut new = base();
    new.api_token = "n3w-t0ken".into();
    new.webhooks.get_mut("ops").unwrap().token = "new-hook-token".into();
    let diff = base().diff(&new);
    assert_eq!(
        diff.changes(),
        [
            redacted("api_token", Class::Scope("auth")),
            redacted("webhooks.ops.token", Class::Scope("notify")),
        ]
    );
    assert_eq!(
        diff.to_string(),
        "api_token [auth]: <redacted> -> <redacted>\n\
         webhooks.ops.token [notify]: <redacted> -> <redacted>"
    );
    let shown = format!("{diff} {diff:?} {}", serde_json::to_string(&diff).unwrap());
    for secret in [TOKEN, "n3w-t0ken", WEBHOOK_TOKEN, "new-hook-token"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
}

#[test]
fn secret_inside_an_added_or_removed_entry_is_redacted() {
    let mut new = base();
    new.webhooks.insert(
        "dev".into(),
        Webhook {
            url: "https://dev.example/hook".into(),
            token: "dev-hook-token".into(),
        },
    );
    new.webhooks.remove("ops");
    let diff = base().diff(&new);
    let shown = format!("{diff} {diff:?}");
    for secret in [WEBHOOK_TOKEN, "dev-hook-token"] {
        assert!(!shown.contains(secret), "{secret} leaked: {shown}");
    }
    let kinds: Vec<_> = diff
        .iter()
        .map(|c| (c.path.as_str(), c.kind, c.secret))
        .collect();
    assert_eq!(
        kinds,
        [
            ("webhooks.dev", ChangeKind::Added, true),
            ("webhooks.ops", ChangeKind::Removed, true),
        ]
    );
    assert_eq!(diff.changes()[0].new.as_deref(), Some(REDACTED));
    assert_eq!(diff.changes()[1].old.as_deref(), Some(REDACTED));
}

#[test]
fn secret_inside_an_optional_section_is_redacted() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    #[reload(scope = "auth")]
    struct Auth {
        user: String,
        #[reload(secret)]
        password: String,
    }
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Outer {
        #[reload(nested)]
        auth: Option<Auth>,
        #[reload(nested)]
        tls: Option<Tls>,
    }
    let none = Outer {
        auth: None,
        tls: None,
    };
    let some = Outer {
        auth: Some(Auth {
            user: "td".into(),
            password: "hunter2".into(),
        }),
        tls: Some(tls()),
    };
    let appeared = none.diff(&some);
    let gone = some.diff(&none);
    let auth_added = Change {
        path: "auth".into(),
        class: Class::Scope("auth"),
        kind: ChangeKind::Added,
        old: None,
        new: Some(REDACTED.into()),
        secret: true,
    };
    let tls_rendered = r#"{"cert":"tls/cert.pem","key":"tls/key.pem"}"#;
    // A section without secrets is still shown.
    assert_eq!(
        appeared.changes(),
        [auth_added, added("tls", Class::Scope("tls"), tls_rendered)]
    );
    assert_eq!(gone.changes()[0].old.as_deref(), Some(REDACTED));
    for diff in [appeared, gone] {
        assert!(!format!("{diff} {diff:?}").contains("hunter2"));
    }
}

#[test]
fn skipped_fields_are_not_diffed() {
    let mut new = base();
    new.generation = 2;
    assert!(base().diff(&new).is_empty());
}

fn info(path: &str, class: Class, doc: &'static str, type_name: &'static str) -> FieldInfo {
    FieldInfo {
        path: path.into(),
        class,
        doc,
        secret: false,
        watch: false,
        type_name,
    }
}

#[test]
fn schema_lists_every_field() {
    let loops = Class::Scope("loops");
    let expected = vec![
        info(
            "daemon",
            Class::Restart,
            "Where the daemon listens.",
            "Daemon",
        ),
        info(
            "limits.max_concurrent",
            Class::Scope("limits"),
            "Loops allowed to run at once.",
            "usize",
        ),
        info(
            "limits.timeout_secs",
            Class::Scope("limits"),
            "Seconds a loop may run before it is stopped.",
            "u64",
        ),
        info(
            "loops.*",
            loops,
            "Loop types by name.",
            std::any::type_name::<LoopType>(),
        ),
        info(
            "loops.*.max_iterations",
            loops,
            "Iterations before the loop stops.",
            "u32",
        ),
        info("loops.*.template", loops, "", "String"),
        info(
            "loops.*.runner",
            Class::Restart,
            "The executable that runs the loop.",
            "String",
        ),
        info(
            "templates",
            Class::Scope("templates"),
            "Prompt templates by name.",
            "BTreeMap<String, String>",
        ),
        info("tls", Class::Scope("tls"), "", std::any::type_name::<Tls>()),
        FieldInfo {
            watch: true,
            ..info("tls.cert", Class::Scope("tls"), "", "PathBuf")
        },
        FieldInfo {
            watch: true,
            ..info("tls.key", Class::Scope("tls"), "", "PathBuf")
        },
        FieldInfo {
            secret: true,
            ..info(
                "api_token",
                Class::Scope("auth"),
                "Token for the control API.",
                "String",
            )
        },
        FieldInfo {
            watch: true,
            ..info(
                "prompt_dir",
                Class::Scope("templates"),
                "Directory of extra prompt files.",
                "PathBuf",
            )
        },
        info(
            "webhooks.*",
            Class::Scope("notify"),
            "",
            std::any::type_name::<Webhook>(),
        ),
        info("webhooks.*.url", Class::Scope("notify"), "", "String"),
        FieldInfo {
            secret: true,
            ..info("webhooks.*.token", Class::Scope("notify"), "", "String")
        },
        info("pools.*", Class::Restart, "", std::any::type_name::<Pool>()),
        info("pools.*.size", Class::Restart, "", "u32"),
    ];
    assert_eq!(Config::schema(), expected.as_slice());
    // Cached: the same slice every time.
    assert!(std::ptr::eq(Config::schema(), Config::schema()));
}

#[test]
fn merge_hot_takes_hot_fields_and_keeps_restart_fields() {
    let current = base();
    let mut new = base();
    new.daemon.listen = "0.0.0.0:7000".into(); // restart
    new.limits.max_concurrent = 16; // hot
    new.api_token = "rotated".into(); // hot, secret
    new.prompt_dir = PathBuf::from("other-prompts"); // hot
    let fast = new.loops.get_mut("fast").unwrap();
    fast.max_iterations = 11; // hot field of a hot entry
    fast.runner = "/opt/claude".into(); // restart field of a hot entry
    new.loops.remove("slow"); // hot entry removed
    new.loops.insert("careful".into(), lp(5)); // hot entry added
    new.pools.insert("cpu".into(), Pool { size: 8 }); // restart entry added
    new.pools.get_mut("io").unwrap().size = 9; // restart field
    new.tls = Some(tls()); // hot section appears
    new.generation = 7; // not in the file

    let merged = current.merge_hot(&new);
    let mut expected = new.clone();
    expected.daemon = current.daemon.clone();
    expected.loops.get_mut("fast").unwrap().runner = "/usr/bin/claude".into();
    expected.pools = current.pools.clone();
    expected.generation = current.generation;
    assert_eq!(merged, expected);

    // What is left to apply needs the restart.
    let left = merged.diff(&new);
    assert!(left.iter().all(|c| c.class.is_restart()), "{left}");
    assert_eq!(
        left.iter().map(|c| c.path.as_str()).collect::<Vec<_>>(),
        [
            "daemon.listen",
            "loops.fast.runner",
            "pools.cpu",
            "pools.io.size"
        ]
    );
}

#[test]
fn merge_hot_of_restart_class_option_keeps_presence() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Section {
        #[reload(scope = "s")]
        level: u8,
    }
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Outer {
        #[reload(nested)]
        section: Option<Section>,
    }
    let none = Outer { section: None };
    let some = Outer {
        section: Some(Section { level: 1 }),
    };
    assert_eq!(none.merge_hot(&some), none);
    assert_eq!(some.merge_hot(&none), some);
    let two = Outer {
        section: Some(Section { level: 2 }),
    };
    assert_eq!(some.merge_hot(&two), two);
    assert_eq!(
        none.diff(&some).changes(),
        [added("section", Class::Restart, r#"{"level":1}"#)]
    );
}

#[test]
fn watched_files_follow_field_order_and_nesting() {
    let mut config = base();
    config.tls = Some(tls());
    let watched = config.watched_files();
    let file = |field: &str, class: Class, file: &str| WatchedFile {
        field: field.into(),
        class,
        file: PathBuf::from(file),
    };
    assert_eq!(
        watched,
        [
            file("tls.cert", Class::Scope("tls"), "tls/cert.pem"),
            file("tls.key", Class::Scope("tls"), "tls/key.pem"),
            file("prompt_dir", Class::Scope("templates"), "prompts"),
        ]
    );
    assert_eq!(base().watched_files().len(), 1);
}

#[test]
fn watch_accepts_every_path_shape() {
    use std::collections::BTreeSet;

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Files {
        #[reload(watch)]
        one: PathBuf,
        #[reload(scope = "extra", watch)]
        maybe: Option<PathBuf>,
        #[reload(scope = "extra", watch, secret)]
        many: Vec<PathBuf>,
        #[reload(watch)]
        set: BTreeSet<PathBuf>,
    }
    let files = Files {
        one: "a".into(),
        maybe: None,
        many: vec!["b".into(), "c".into()],
        set: BTreeSet::from(["e".into(), "d".into()]),
    };
    let got: Vec<_> = files
        .watched_files()
        .into_iter()
        .map(|w| (w.field, w.class, w.file.display().to_string()))
        .collect();
    let want = [
        ("one", Class::Restart, "a"),
        ("many", Class::Scope("extra"), "b"),
        ("many", Class::Scope("extra"), "c"),
        ("set", Class::Restart, "d"),
        ("set", Class::Restart, "e"),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(f, c, p)| (f.to_string(), *c, p.to_string()))
        .collect();
    assert_eq!(got, want);
}

/// serde's names are the file's keys, so they are the paths.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "kebab-case")]
#[reload(scope = "server")]
struct Server {
    max_connections: u32,
    #[serde(rename = "bind")]
    #[reload(restart)]
    listen_addr: String,
    r#type: String,
    #[reload(nested)]
    #[serde(flatten)]
    logging: Logging,
    #[reload(nested)]
    rate_limits: BTreeMap<String, RateLimit>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "camelCase")]
#[reload(scope = "logging")]
struct Logging {
    log_level: String,
    log_format: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[reload(scope = "limits")]
struct RateLimit {
    per_second: u32,
    #[serde(rename(serialize = "BURST_OUT", deserialize = "BURST"))]
    burst_size: u32,
}

const SERVER: &str = r#"{
    "max-connections": 100,
    "bind": "0.0.0.0:80",
    "type": "http",
    "logLevel": "info",
    "logFormat": "json",
    "rate-limits": { "api": { "PER_SECOND": 10, "BURST": 20 } }
}"#;

#[test]
fn serde_renames_are_the_paths() {
    let old: Server = serde_json::from_str(SERVER).unwrap();
    let edited = SERVER
        .replace("100", "200")
        .replace("0.0.0.0:80", "0.0.0.0:81")
        .replace("http\"", "https\"")
        .replace("\"info\"", "\"debug\"")
        .replace("10,", "11,")
        .replace("20 }", "25 }");
    let new: Server = serde_json::from_str(&edited).unwrap();
    let paths: Vec<_> = old
        .diff(&new)
        .iter()
        .map(|c| (c.path.clone(), c.class))
        .collect();
    let expected = [
        ("max-connections", Class::Scope("server")),
        ("bind", Class::Restart),
        ("type", Class::Scope("server")),
        ("logLevel", Class::Scope("logging")),
        ("rate-limits.api.PER_SECOND", Class::Scope("limits")),
        ("rate-limits.api.BURST", Class::Scope("limits")),
    ];
    let expected: Vec<_> = expected.iter().map(|(p, c)| (p.to_string(), *c)).collect();
    assert_eq!(paths, expected);

    let schema: Vec<_> = Server::schema().iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        schema,
        [
            "max-connections",
            "bind",
            "type",
            "logLevel",
            "logFormat",
            "rate-limits.*",
            "rate-limits.*.PER_SECOND",
            "rate-limits.*.BURST",
        ]
    );
}

// The examples of the derive's documentation (`hotcfg-derive/src/lib.rs`), run.

#[test]
fn doc_example_scope_restart_and_default() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Config {
        /// Applied live by the handlers of the `limits` scope.
        #[reload(scope = "limits")]
        max_concurrent: usize,
        /// Needs a restart.
        #[reload(restart)]
        listen: String,
        /// No class given: restart-only, the safe default.
        data_dir: String,
    }
    let old = Config {
        max_concurrent: 4,
        listen: "127.0.0.1:7000".into(),
        data_dir: "/var/lib/td".into(),
    };
    let mut new = old.clone();
    new.max_concurrent = 8;
    new.data_dir = "/srv/td".into();
    let diff = old.diff(&new);
    assert_eq!(
        diff.to_string(),
        "max_concurrent [limits]: 4 -> 8\ndata_dir [restart]: \"/var/lib/td\" -> \"/srv/td\""
    );
    // Hot changes now, restart-only ones later.
    let live = old.merge_hot(&new);
    assert_eq!(live.max_concurrent, 8);
    assert_eq!(live.data_dir, "/var/lib/td");
}

#[test]
fn doc_example_container_default_and_nested() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    #[reload(scope = "loops")]
    struct LoopConfig {
        max_iterations: u32,
        #[reload(restart)]
        runner: String,
    }
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Config {
        #[reload(nested)]
        loops: BTreeMap<String, LoopConfig>,
    }
    assert_eq!(LoopConfig::CLASS, Class::Scope("loops"));
    let paths: Vec<_> = Config::schema()
        .iter()
        .map(|f| format!("{} [{}]", f.path, f.class))
        .collect();
    assert_eq!(
        paths,
        [
            "loops.* [loops]",
            "loops.*.max_iterations [loops]",
            "loops.*.runner [restart]"
        ]
    );
}

#[test]
fn doc_example_secret_and_watch() {
    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
    struct Config {
        #[reload(scope = "auth", secret)]
        api_token: String,
        #[reload(scope = "tls", watch)]
        cert: PathBuf,
    }
    let old = Config {
        api_token: "old".into(),
        cert: "cert.pem".into(),
    };
    let new = Config {
        api_token: "new".into(),
        cert: "cert.pem".into(),
    };
    assert_eq!(
        old.diff(&new).to_string(),
        "api_token [auth]: <redacted> -> <redacted>"
    );
    assert_eq!(old.watched_files()[0].field, "cert");
    assert_eq!(old.watched_files()[0].class, Class::Scope("tls"));
}
