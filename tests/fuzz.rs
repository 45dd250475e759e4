//! What the fuzz target (`fuzz/fuzz_targets/config_bytes.rs`) and its proptest twin in the test
//! suite both run: arbitrary bytes as a configuration file, through loading, validation, diff and
//! plan.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use hotcfg::{
    Decision, Format, HotReload, MemorySource, Plan, Reloader, Secret, SourceContent, Violations,
};
use serde::{Deserialize, Serialize};

/// The live configuration's secret. No input may make it appear in what a plan renders.
pub const LIVE_SECRET: &str = "live-secret-Zq8vK2";

/// The live configuration every input is planned against.
pub const LIVE: &str = r#"listen = "127.0.0.1:7000"
token = "live-secret-Zq8vK2"
tags = ["a", "b"]

[limits]
max = 4
queue = 10

[templates]
progress = "{id} {iteration}"

[loops.build]
iterations = 10
template = "progress"

[loops.report]
iterations = 3
template = "progress"
"#;

/// A configuration with every kind of field: restart, scopes, nested, maps of nested values, an
/// optional section, a secret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
pub struct FuzzConfig {
    /// Restart-only.
    #[reload(restart)]
    pub listen: String,
    /// A secret.
    #[reload(scope = "auth", secret)]
    #[serde(default)]
    pub token: Option<Secret<String>>,
    /// A list.
    #[reload(scope = "limits")]
    #[serde(default)]
    pub tags: Vec<String>,
    /// A nested section.
    #[reload(nested)]
    pub limits: FuzzLimits,
    /// A leaf map.
    #[reload(scope = "templates")]
    #[serde(default)]
    pub templates: BTreeMap<String, String>,
    /// A map of nested values.
    #[reload(nested)]
    #[serde(default)]
    pub loops: BTreeMap<String, FuzzLoop>,
    /// An optional nested section, restart-only as a whole.
    #[reload(nested)]
    #[serde(default)]
    pub tls: Option<FuzzTls>,
}

/// Limits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "limits")]
pub struct FuzzLimits {
    /// At least 1.
    pub max: u32,
    /// At least `max`.
    pub queue: u32,
}

/// A loop type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "loops")]
pub struct FuzzLoop {
    /// Iterations.
    pub iterations: u64,
    /// Must name a template.
    pub template: String,
}

/// TLS settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
pub struct FuzzTls {
    /// Hot.
    #[reload(scope = "tls")]
    pub cert: String,
    /// Secret.
    #[reload(scope = "tls", secret)]
    pub key: Secret<String>,
}

/// The validation rules.
pub fn validate(config: &FuzzConfig, v: &mut Violations) {
    v.check(config.limits.max >= 1, "limits.max", "must be at least 1");
    v.check(
        config.limits.queue >= config.limits.max,
        "limits.queue",
        "must be at least limits.max",
    );
    for (name, entry) in &config.loops {
        v.check(
            config.templates.contains_key(&entry.template),
            format!("loops.{name}.template"),
            format!("no template named `{}`", entry.template),
        );
    }
}

/// The engine, built once per process with [`LIVE`] live.
pub fn reloader() -> &'static Reloader<FuzzConfig> {
    static RELOADER: OnceLock<Reloader<FuzzConfig>> = OnceLock::new();
    RELOADER.get_or_init(|| {
        Reloader::builder(MemorySource::new("live.toml", Format::Toml, LIVE))
            .validator(validate)
            .on_apply("limits", |_| Ok(()))
            .on_apply("loops", |_| Ok(()))
            .on_apply("templates", |_| Ok(()))
            .scope_depends_on("loops", &["limits", "templates"])
            .history_len(0)
            .build()
            .expect("the live fuzz configuration loads")
    })
}

/// What an input came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Not UTF-8: a file source refuses it before parsing.
    NotUtf8,
    /// Unreadable, unparsable or invalid.
    Invalid,
    /// Equal to the live configuration.
    Unchanged,
    /// Would be applied.
    Apply,
    /// Would be refused (restart-only changes).
    Reject,
}

/// Runs `data` through load, validate, diff and plan against [`LIVE`]; panics if an invariant
/// breaks. The first byte picks the format (TOML, JSON, YAML); the rest is the file.
pub fn config_bytes(data: &[u8]) -> Outcome {
    let (format, name, bytes) = match data.split_first() {
        Some((0..=85, rest)) => (Format::Toml, "fuzz.toml", rest),
        Some((86..=170, rest)) => (Format::Json, "fuzz.json", rest),
        Some((_, rest)) => (Format::Yaml, "fuzz.yaml", rest),
        None => (Format::Toml, "fuzz.toml", data),
    };
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Outcome::NotUtf8;
    };
    let reloader = reloader();
    let plan = reloader.plan_content(Ok(SourceContent::single(name, format, text)));
    // An input may hold the live secret's text itself (in `listen`, say), and then shows it.
    check_plan(&plan, !text.contains(LIVE_SECRET));
    // A dry run is a pure function of the live configuration and the text.
    let again = reloader.plan_content(Ok(SourceContent::single(name, format, text)));
    assert_eq!(plan, again, "two plans of the same text differ");
    match plan.decision {
        Decision::Invalid { .. } => Outcome::Invalid,
        Decision::Unchanged => Outcome::Unchanged,
        Decision::Apply { .. } => Outcome::Apply,
        Decision::Reject { .. } => Outcome::Reject,
        _ => unreachable!("the reject policy defers nothing: {plan}"),
    }
}

fn check_plan(plan: &Plan, secret_must_not_show: bool) {
    let text = plan.to_string();
    let json = serde_json::to_string(plan).expect("a plan serializes");
    let debug = format!("{plan:?}");
    for (what, shown) in [("text", &text), ("JSON", &json), ("Debug", &debug)] {
        assert!(
            !secret_must_not_show || !shown.contains(LIVE_SECRET),
            "the live secret leaked into the plan's {what}: {shown}"
        );
    }
    match &plan.decision {
        Decision::Invalid { error } => {
            assert!(!error.problems.is_empty(), "an error with no problem");
            assert!(plan.changes.is_empty());
        }
        Decision::Unchanged => {
            assert!(plan.changes.is_empty(), "unchanged, yet changes: {text}");
        }
        Decision::Apply {
            applied,
            pending_restart,
        } => {
            assert!(
                !applied.is_empty(),
                "an apply with nothing to apply: {text}"
            );
            assert!(
                pending_restart.is_empty(),
                "the reject policy defers nothing"
            );
            assert!(applied.iter().all(|c| !c.class.is_restart()));
            assert_eq!(applied.len(), plan.changes.len());
        }
        Decision::Reject { refused, .. } => {
            assert!(!refused.is_empty());
            assert!(refused.iter().all(|c| c.class.is_restart()));
        }
        other => panic!("the reject policy defers nothing: {other:?}"),
    }
    for change in plan.changes.iter() {
        if change.secret {
            assert_eq!(
                change.old.as_deref().unwrap_or(hotcfg::REDACTED),
                hotcfg::REDACTED
            );
            assert_eq!(
                change.new.as_deref().unwrap_or(hotcfg::REDACTED),
                hotcfg::REDACTED
            );
        }
    }
}
