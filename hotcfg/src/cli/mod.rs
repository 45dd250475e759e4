//! Operator commands every application with a [`HotReload`](crate::HotReload) configuration
//! gets: `check`, `plan`, `fields`, `history` and `rollback` (feature `cli`); with the `schemars`
//! feature, `schema` (see [`Cli::with_json_schema`]).
//!
//! `history --audit-log PATH` marks each version that `rollback` can restore
//! (`restorable: rollback --to GEN`), or why not (its snapshot pruned or corrupt).
//! `rollback --to GEN --config FILE --audit-log PATH [--dry-run] [--json]` takes the content
//! generation GEN applied from its snapshot beside the audit log, checks it with the same
//! [`Pipeline`] and prints its plan against FILE's current content; unless it would be refused
//! (or `--dry-run`), it writes FILE back atomically (its mode kept). It never talks to a running
//! process: that process's watcher applies the file as any edit, so its audit record says trigger
//! `file` with the restored sha256. For a `revert` record naming the generation, call
//! [`Reloader::revert_to`](crate::Reloader::revert_to) in the process (the task daemon's
//! `POST /api/revert`).
//!
//! Flatten [`Command`] into the application's own clap parser and call [`Cli::run`]:
//!
//! ```
//! use hotcfg::cli::{Cli, Command};
//! use hotcfg::HotReload;
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
//! struct Config {
//!     /// Loops allowed at once.
//!     #[reload(scope = "limits")]
//!     workers: usize,
//! }
//!
//! let mut out = Vec::new();
//! let code = Cli::<Config>::new().run(&Command::Fields, &mut out);
//! assert_eq!(code, 0);
//! let table = String::from_utf8(out).unwrap();
//! assert!(table.contains("workers"));
//! assert!(table.contains("limits"));
//! ```
//!
//! With the `etcd` feature there are two fleet commands (see the `etcd` module). Both reach a
//! secured etcd with the flags of [`EtcdAccess`]: `--etcd-ca FILE` (TLS), `--etcd-cert FILE
//! --etcd-key FILE` (a client certificate), `--etcd-user NAME` with `--etcd-password-file FILE`
//! or the `HOTCFG_ETCD_PASSWORD` environment variable.
//!
//! - `push FILE --etcd ENDPOINTS --key KEY [--expect-revision REV] [--dry-run] [--reason TEXT]
//!   [--author NAME] [--node ID]` checks FILE,
//!   plans it against the value now in etcd (printing the revision planned against), then writes
//!   it with a compare-and-swap on that revision: if another operator wrote the key in between,
//!   nothing is written and the command says so. A push whose plan would be rejected by the
//!   nodes (restart-only changes under the reject policy) is still written, since the key is the
//!   fleet's desired state, and the command warns that running nodes will refuse it until they
//!   restart. The author (default `USER@HOST`) and the reason are written with the value in the
//!   same transaction and reach every node's audit record and `fleet-status`. With `--node ID`,
//!   FILE is that node's override (`KEY/nodes/ID`), checked merged over the shared value. See
//!   [`PreparedPush`](crate::etcd::PreparedPush) for the same in two steps.
//! - `push FILE --etcd ENDPOINTS --key KEY --waves 1,25%,100% [--wave-timeout 60s]` rolls FILE
//!   out in waves over the nodes reporting now ([`WaveArgs`], [`Rollout`](crate::etcd::Rollout));
//!   it prints each wave, then a table (node, wave, result, reason) and exits 0 when the last
//!   wave passed, [`EXIT_HALTED`] when a node refused the candidate, reverted it in probation or
//!   did not report it in time (every node then returns to the stable value); with `--dry-run` it
//!   prints the waves it would make and writes nothing. `push --resume`
//!   and `push --abort` (no FILE) continue or stop a rollout whose pusher went away; while one
//!   runs, a plain push is refused. The nodes must name themselves
//!   ([`EtcdSource::for_node`](crate::etcd::EtcdSource::for_node), the daemon's `--node-id`).
//! - `fleet-status --etcd ENDPOINTS --key KEY [--status-prefix P] [--expect NODES | --expect-count N]
//!   [--json]` prints a table of the live nodes: revision, result, watch state, pending restart,
//!   error; with `--expect`, expected nodes without a report are listed as missing.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 ([`EXIT_OK`]) | success: valid; a plan that would apply or change nothing; pushed; the fleet converged |
//! | 1 ([`EXIT_INVALID`]) | the input is invalid or unreadable (or an audit log does not verify; or `rollback`'s generation cannot be restored); nothing pushed or restored |
//! | 3 ([`EXIT_REJECTED`]) | the plan would be rejected (`push`: written, but running nodes will refuse it; `rollback`: nothing written) |
//! | 4 ([`EXIT_CONFLICT`]) | `push` refused: the key changed since the revision planned against; nothing written |
//! | 5 ([`EXIT_ETCD`]) | etcd cannot be reached or refused the request; nothing written |
//! | 6 ([`EXIT_NOT_CONVERGED`]) | `fleet-status`: some node has not applied the key's current revision or is not watching it, an expected node is missing (or no node reports) |
//! | 7 ([`EXIT_HALTED`]) | `push --waves`/`--resume`/`--abort`: the staged rollout was halted or aborted; every node returns to the stable value |

mod command;
#[cfg(feature = "etcd")]
mod etcd_access;
mod fields;
#[cfg(feature = "etcd")]
mod fleet_status;
mod history;
#[cfg(feature = "etcd")]
mod push;
mod rollback;
#[cfg(feature = "schemars")]
mod schema;
#[cfg(feature = "etcd")]
mod waves;

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

pub use command::Command;
#[cfg(feature = "etcd")]
pub use etcd_access::{EtcdAccess, ETCD_PASSWORD_ENV};
pub use fields::fields;
#[cfg(feature = "etcd")]
use fleet_status::fleet_status;
use history::history;
#[cfg(feature = "etcd")]
pub use waves::WaveArgs;

use crate::engine::Pipeline;
use crate::hot_reload::HotConfig;
use crate::load::ConfigError;
use crate::plan::Decision;
use crate::source::{FileSource, Source, SourceContent};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the input is invalid or unreadable.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: the plan would be rejected.
pub const EXIT_REJECTED: u8 = 3;
/// Exit code: `push` refused because the key changed since the revision planned against.
pub const EXIT_CONFLICT: u8 = 4;
/// Exit code: etcd cannot be reached, or refused the request.
pub const EXIT_ETCD: u8 = 5;
/// Exit code: `fleet-status` found a node that has not applied the key's current revision.
pub const EXIT_NOT_CONVERGED: u8 = 6;
/// Exit code: `push --waves` (or `--resume`, `--abort`) ended with the rollout halted or aborted:
/// every node runs the stable value again.
pub const EXIT_HALTED: u8 = 7;

/// Runs [`Command`]s for configuration type `C`, with the same [`Pipeline`] (loading,
/// validation, policy and scope dependencies) as the application's engine.
///
/// ```
/// use hotcfg::cli::Cli;
/// use hotcfg::{HotReload, Pipeline, RestartPolicy};
/// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// # struct Config { #[reload(scope = "limits")] workers: usize }
///
/// let pipeline = Pipeline::<Config>::new().policy(RestartPolicy::Defer);
/// let cli = Cli::from(pipeline.clone()); // and `Reloader::builder(..).pipeline(pipeline)`
/// assert_eq!(cli.pipeline().restart_policy(), RestartPolicy::Defer);
/// ```
pub struct Cli<C> {
    pipeline: Pipeline<C>,
    /// What the `schema` command prints, when the configuration type derives `JsonSchema`.
    #[cfg(feature = "schemars")]
    json_schema: Option<fn() -> serde_json::Value>,
}

impl<C> fmt::Debug for Cli<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("Cli");
        out.field("pipeline", &self.pipeline);
        #[cfg(feature = "schemars")]
        out.field("json_schema", &self.json_schema.is_some());
        out.finish()
    }
}

impl<C: HotConfig> Default for Cli<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: HotConfig> From<Pipeline<C>> for Cli<C> {
    fn from(pipeline: Pipeline<C>) -> Self {
        Cli {
            pipeline,
            #[cfg(feature = "schemars")]
            json_schema: None,
        }
    }
}

impl<C: HotConfig> Cli<C> {
    /// Commands with the default [`Pipeline`]: a plain loader, no validation, the reject policy.
    pub fn new() -> Self {
        Self::from(Pipeline::default())
    }

    /// The stages every command puts a file through.
    pub fn pipeline(&self) -> &Pipeline<C> {
        &self.pipeline
    }

    /// Enables the `schema` command (feature `schemars`), for a configuration type that also
    /// derives `schemars::JsonSchema`: it prints [`json_schema`](crate::json_schema).
    ///
    /// ```
    /// use hotcfg::cli::{Cli, Command};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// #[derive(hotcfg::HotReload, schemars::JsonSchema)]
    /// struct Config {
    ///     #[reload(scope = "limits")]
    ///     workers: usize,
    /// }
    ///
    /// let mut out = Vec::new();
    /// assert_eq!(Cli::<Config>::new().with_json_schema().run(&Command::Schema, &mut out), 0);
    /// let schema: serde_json::Value = serde_json::from_slice(&out).unwrap();
    /// assert_eq!(schema["properties"]["workers"]["x-hotcfg-class"], "scope:limits");
    ///
    /// // Without it, the command says what is missing.
    /// let mut out = Vec::new();
    /// assert_eq!(Cli::<Config>::new().run(&Command::Schema, &mut out), 1);
    /// assert!(String::from_utf8(out).unwrap().contains("with_json_schema"));
    /// ```
    #[cfg(feature = "schemars")]
    #[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
    pub fn with_json_schema(mut self) -> Self
    where
        C: schemars::JsonSchema,
    {
        self.json_schema = Some(crate::json_schema::<C>);
        self
    }

    /// Runs `command`, writing its report to `out`; returns the exit code.
    pub fn run(&self, command: &Command, out: &mut dyn Write) -> u8 {
        let result = match command {
            Command::Check { file } => self.check(file, out),
            Command::Plan {
                current,
                file,
                json,
            } => self.plan(current, file, *json, out),
            Command::Fields => fields::<C>(out).map(|()| EXIT_OK),
            Command::History { audit_log, verify } => history(audit_log, *verify, out),
            Command::Rollback {
                to,
                config,
                audit_log,
                dry_run,
                json,
            } => {
                let request = rollback::RollbackRequest {
                    to: *to,
                    file: config,
                    audit_log,
                    dry_run: *dry_run,
                    json: *json,
                };
                self.rollback(&request, out)
            }
            #[cfg(feature = "schemars")]
            Command::Schema => schema::schema(self.json_schema, out),
            #[cfg(feature = "etcd")]
            Command::Push {
                file,
                etcd,
                access,
                key,
                expect_revision,
                dry_run,
                reason,
                author,
                node,
                waves,
            } => {
                let mut change = match author {
                    Some(author) => crate::source::ChangeNote::new(author.clone()),
                    None => crate::source::ChangeNote::by_current_user(),
                };
                change.reason = reason.clone();
                let request = push::PushRequest {
                    file,
                    endpoints: etcd,
                    access,
                    key,
                    expect_revision: *expect_revision,
                    dry_run: *dry_run,
                    change,
                    node: node.as_deref(),
                    waves,
                };
                self.push(&request, out)
            }
            #[cfg(feature = "etcd")]
            Command::FleetStatus {
                etcd,
                access,
                key,
                status_prefix,
                expect,
                expect_count,
                json,
            } => {
                let expected = crate::etcd::Expected {
                    nodes: expect.clone(),
                    count: *expect_count,
                };
                let client = access.client(etcd, crate::etcd::EtcdOptions::default());
                fleet_status(client, key, status_prefix.as_deref(), expected, *json, out)
            }
        };
        result.unwrap_or_else(|err| {
            let _ = writeln!(out, "error: cannot write the report: {err}");
            EXIT_INVALID
        })
    }

    fn load(&self, file: &PathBuf) -> Result<(C, SourceContent), ConfigError> {
        let content = FileSource::new(file).read()?;
        let config = self.pipeline.load(&content)?;
        Ok((config, content))
    }

    fn check(&self, file: &PathBuf, out: &mut dyn Write) -> std::io::Result<u8> {
        match self.load(file) {
            Ok((_, content)) => {
                writeln!(out, "ok: {} is valid", content.identity)?;
                Ok(EXIT_OK)
            }
            Err(err) => {
                writeln!(out, "{err}")?;
                Ok(EXIT_INVALID)
            }
        }
    }

    fn plan(
        &self,
        current: &PathBuf,
        file: &PathBuf,
        json: bool,
        out: &mut dyn Write,
    ) -> std::io::Result<u8> {
        let live = match self.load(current) {
            Ok((live, _)) => live,
            Err(err) => {
                writeln!(out, "the current configuration cannot be used: {err}")?;
                return Ok(EXIT_INVALID);
            }
        };
        // No handlers here: the plan lists every scope that would run.
        let content = FileSource::new(file).read();
        let plan = self
            .pipeline
            .plan(&live, content, |_| Vec::new(), |order| order);
        if json {
            let text = serde_json::to_string_pretty(&plan).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else {
            writeln!(out, "{plan}")?;
        }
        Ok(match plan.decision {
            Decision::Invalid { .. } => EXIT_INVALID,
            Decision::Reject { .. } => EXIT_REJECTED,
            _ => EXIT_OK,
        })
    }
}
