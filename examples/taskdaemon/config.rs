//! `TaskDaemonConfig`: every field classified for hot reload.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use hotcfg::{HotReload, Secret, Validate, Violations};
use serde::{Deserialize, Serialize};

/// The configuration written on first run.
pub const DEFAULT_CONFIG: &str = include_str!("default.toml");

/// The task daemon's configuration. Every section refuses keys it does not know, so a misspelled
/// or misplaced key (an `api_token` that TOML puts under the last table) is an error with its
/// line, never a silently ignored setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TaskDaemonConfig {
    /// Listen address and pid file.
    #[reload(restart)]
    pub daemon: DaemonSection,
    /// The HTTP API's address and the limits that protect it.
    #[reload(restart)]
    #[serde(default)]
    pub server: ServerSection,
    /// Where finished work and checkpoints go.
    #[reload(restart)]
    pub storage: StorageSection,
    /// Concurrency, queue and rate limits.
    #[reload(nested)]
    pub limits: Limits,
    /// Output templates.
    #[reload(nested)]
    pub templates: Templates,
    /// Logging and status reporting.
    #[reload(nested)]
    pub monitoring: Monitoring,
    /// Loop types by name.
    #[reload(nested)]
    pub loops: BTreeMap<String, LoopType>,
    /// Token clients must send (`Authorization: Bearer TOKEN`) with every API request; none
    /// means open. Empty or with surrounding whitespace is refused.
    /// `secret` keeps it out of diffs, plans, events and the audit log; `Secret` out of `{:?}`.
    #[reload(scope = "auth", secret)]
    #[serde(default)]
    pub api_token: Option<Secret<String>>,
}

/// Restart-only daemon settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct DaemonSection {
    /// Address the HTTP API and the status page listen on.
    pub listen: String,
    /// File the daemon writes its process id to (relative to the config file).
    #[serde(default)]
    pub pid_file: Option<PathBuf>,
}

/// Restart-only settings of the HTTP API: the limits that hold under
/// floods, slow clients and token guessing. Every field has a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers, counted from when the server waits
    /// for it: this also closes idle keep-alive connections.
    pub header_timeout_secs: u64,
    /// Seconds a request (its body and the answer) may take; the event stream is exempt.
    pub request_timeout_secs: u64,
    /// Largest request body, in bytes.
    pub body_limit_bytes: usize,
    /// Failed authentications from one address answered at once; later ones are delayed.
    pub auth_failures_before_delay: u32,
    /// Failed authentications from one address before it is answered 429 for a while.
    pub auth_failures_before_lockout: u32,
    /// Seconds an address stays locked out (and how long its failures are remembered).
    pub auth_lockout_secs: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            max_connections: 256,
            header_timeout_secs: 10,
            request_timeout_secs: 30,
            body_limit_bytes: 64 * 1024,
            auth_failures_before_delay: 3,
            auth_failures_before_lockout: 10,
            auth_lockout_secs: 60,
        }
    }
}

/// Restart-only storage settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// Directory for finished work and checkpoints (relative to the config file).
    pub data_dir: PathBuf,
}

/// Limits, applied live by the `limits` handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[reload(scope = "limits")]
pub struct Limits {
    /// Loops running at once.
    pub max_concurrent: usize,
    /// Items the queue accepts; lowering it never drops queued items.
    pub queue_capacity: usize,
    /// Submits accepted per second across all clients.
    pub submits_per_second: u32,
}

/// Templates, applied live by the `templates` handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[reload(scope = "templates")]
pub struct Templates {
    /// Template shown for each iteration.
    pub progress: String,
    /// Template shown when a loop finishes.
    pub done: String,
    /// Files whose contents are templates named after the file stem; watched for edits.
    #[reload(scope = "templates", watch)]
    #[serde(default)]
    pub template_files: Vec<PathBuf>,
}

/// Monitoring, applied live by the `monitoring` handler.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[reload(scope = "monitoring")]
pub struct Monitoring {
    /// Log filter: `error`, `warn`, `info`, `debug` or `trace`.
    pub log_level: String,
    /// Seconds between status log lines.
    pub status_interval_secs: u64,
    /// A file the daemon rewrites with its status every interval (its directory must exist).
    #[serde(default)]
    pub status_file: Option<PathBuf>,
}

/// A kind of loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[cfg_attr(feature = "schemars", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[reload(scope = "loops")]
pub struct LoopType {
    /// Iterations before the loop finishes.
    pub max_iterations: u64,
    /// Pause between iterations, in milliseconds.
    pub delay_ms: u64,
    /// Name of the template rendered each iteration (`progress`, `done` or a template file stem).
    pub template: String,
}

/// Log levels `monitoring.log_level` accepts.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

impl TaskDaemonConfig {
    /// Whether `name` names a template: a built-in one or a template file's stem.
    pub fn has_template(&self, name: &str) -> bool {
        name == "progress"
            || name == "done"
            || self
                .templates
                .template_files
                .iter()
                .any(|f| f.file_stem().and_then(|s| s.to_str()) == Some(name))
    }
}

impl Validate for TaskDaemonConfig {
    fn validate(&self, v: &mut Violations) {
        v.check(
            self.daemon.listen.parse::<SocketAddr>().is_ok(),
            "daemon.listen",
            format!(
                "`{}` is not an address like 127.0.0.1:7878",
                self.daemon.listen
            ),
        );
        self.validate_server(v);
        self.validate_token(v);
        v.check(
            self.limits.max_concurrent >= 1,
            "limits.max_concurrent",
            "must be at least 1",
        );
        v.check(
            self.limits.queue_capacity >= 1,
            "limits.queue_capacity",
            "must be at least 1",
        );
        v.check(
            self.limits.submits_per_second >= 1,
            "limits.submits_per_second",
            "must be at least 1",
        );
        v.check(
            LOG_LEVELS.contains(&self.monitoring.log_level.as_str()),
            "monitoring.log_level",
            format!("must be one of {}", LOG_LEVELS.join(", ")),
        );
        v.check(
            self.monitoring.status_interval_secs >= 1,
            "monitoring.status_interval_secs",
            "must be at least 1",
        );
        for (name, loop_type) in &self.loops {
            v.check(
                loop_type.max_iterations >= 1,
                format!("loops.{name}.max_iterations"),
                "must be at least 1",
            );
            v.check(
                self.has_template(&loop_type.template),
                format!("loops.{name}.template"),
                format!("no template named `{}`", loop_type.template),
            );
        }
    }
}

impl TaskDaemonConfig {
    fn validate_server(&self, v: &mut Violations) {
        let server = &self.server;
        let at_least_one = [
            ("server.max_connections", server.max_connections as u64),
            ("server.header_timeout_secs", server.header_timeout_secs),
            ("server.request_timeout_secs", server.request_timeout_secs),
            ("server.body_limit_bytes", server.body_limit_bytes as u64),
            (
                "server.auth_failures_before_lockout",
                u64::from(server.auth_failures_before_lockout),
            ),
            ("server.auth_lockout_secs", server.auth_lockout_secs),
        ];
        for (path, value) in at_least_one {
            v.check(value >= 1, path, "must be at least 1");
        }
        v.check(
            server.auth_failures_before_delay <= server.auth_failures_before_lockout,
            "server.auth_failures_before_delay",
            "must not exceed server.auth_failures_before_lockout",
        );
    }

    /// A token no client can send would leave the daemon either open (empty) or closed to all.
    fn validate_token(&self, v: &mut Violations) {
        let Some(token) = &self.api_token else {
            return;
        };
        let token = token.expose_secret();
        v.check(
            !token.is_empty(),
            "api_token",
            "is empty: set a token, or remove the line to run without one",
        );
        v.check(
            token.trim() == token.as_str(),
            "api_token",
            "has leading or trailing whitespace, which clients cannot send",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_parses_and_validates() {
        let config: TaskDaemonConfig = toml::from_str(DEFAULT_CONFIG).unwrap();
        let mut v = Violations::default();
        config.validate(&mut v);
        assert!(v.is_empty(), "{v}");
    }

    #[test]
    fn every_scope_has_its_fields() {
        let schema = TaskDaemonConfig::schema();
        let class = |path: &str| {
            schema
                .iter()
                .find(|f| f.path == path)
                .map(|f| f.class.to_string())
                .unwrap_or_else(|| panic!("no field {path}"))
        };
        assert_eq!(class("daemon"), "restart");
        assert_eq!(class("storage"), "restart");
        assert_eq!(class("limits.max_concurrent"), "limits");
        assert_eq!(class("loops.*.max_iterations"), "loops");
        assert_eq!(class("templates.template_files"), "templates");
        assert_eq!(class("monitoring.log_level"), "monitoring");
        assert_eq!(class("api_token"), "auth");
        assert_eq!(class("server"), "restart");
    }

    fn violations(text: &str) -> String {
        let config: TaskDaemonConfig = toml::from_str(text).unwrap();
        let mut v = Violations::default();
        config.validate(&mut v);
        v.to_string()
    }

    #[test]
    fn an_empty_or_padded_token_is_refused() {
        let empty = format!("api_token = \"\"\n{DEFAULT_CONFIG}");
        assert!(
            violations(&empty).contains("api_token"),
            "{}",
            violations(&empty)
        );
        let padded = format!("api_token = \" t0k \"\n{DEFAULT_CONFIG}");
        assert!(
            violations(&padded).contains("whitespace"),
            "{}",
            violations(&padded)
        );
    }

    #[test]
    fn unknown_keys_are_refused_in_every_section() {
        for text in [
            format!("api-token = \"x\"\n{DEFAULT_CONFIG}"),
            format!("{DEFAULT_CONFIG}\napi_token = \"x\"\n"),
            DEFAULT_CONFIG.replace("[limits]", "[limits]\nmax_concurent = 3"),
            DEFAULT_CONFIG.replace("[server]", "[server]\nlisten_on = \"x\""),
        ] {
            let err = toml::from_str::<TaskDaemonConfig>(&text).unwrap_err();
            assert!(err.to_string().contains("unknown field"), "{err}");
        }
    }
}
