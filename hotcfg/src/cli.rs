//! Operator commands every application with a [`HotReload`] configuration gets: `check`, `plan`,
//! `fields` and `history` (feature `cli`).
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
//! With the `etcd` feature there are two fleet commands (see the `etcd` module):
//!
//! - `push FILE --etcd ENDPOINTS --key KEY [--expect-revision REV] [--dry-run]` checks FILE,
//!   plans it against the value now in etcd (printing the revision planned against), then writes
//!   it with a compare-and-swap on that revision: if another operator wrote the key in between,
//!   nothing is written and the command says so. A push whose plan would be rejected by the
//!   nodes (restart-only changes under the reject policy) is still written, since the key is the
//!   fleet's desired state, and the command warns that running nodes will refuse it until they
//!   restart. See [`PreparedPush`](crate::etcd::PreparedPush) for the same in two steps.
//! - `fleet-status --etcd ENDPOINTS --key KEY [--status-prefix P] [--expect NODES | --expect-count N]
//!   [--json]` prints a table of the live nodes: revision, result, watch state, pending restart,
//!   error; with `--expect`, expected nodes without a report are listed as missing.
//!
//! Exit codes:
//!
//! | code | meaning |
//! |---|---|
//! | 0 ([`EXIT_OK`]) | success: valid; a plan that would apply or change nothing; pushed; the fleet converged |
//! | 1 ([`EXIT_INVALID`]) | the input is invalid or unreadable (or an audit log does not verify); nothing pushed |
//! | 3 ([`EXIT_REJECTED`]) | the plan would be rejected (`push`: written, but running nodes will refuse it) |
//! | 4 ([`EXIT_CONFLICT`]) | `push` refused: the key changed since the revision planned against; nothing written |
//! | 5 ([`EXIT_ETCD`]) | etcd cannot be reached or refused the request; nothing written |
//! | 6 ([`EXIT_NOT_CONVERGED`]) | `fleet-status`: some node has not applied the key's current revision or is not watching it, an expected node is missing (or no node reports) |

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use crate::audit::{verify_audit_log, AuditRecord};
use crate::engine::Pipeline;
use crate::hot_reload::{HotConfig, HotReload};
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

/// The operator commands.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Validate a configuration file; errors name the file, line and key.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Dry run: what reloading FILE over the running configuration CURRENT would do.
    Plan {
        /// The configuration running now.
        #[arg(long = "config", value_name = "CURRENT")]
        current: PathBuf,
        /// The candidate.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every configuration field: path, class (scope or restart), secret, docs.
    Fields,
    /// Show the reload history recorded in an audit log.
    History {
        /// The JSON Lines audit log.
        #[arg(long = "audit-log", value_name = "PATH")]
        audit_log: PathBuf,
        /// Check the hash chain and report the first broken line.
        #[arg(long)]
        verify: bool,
    },
    /// Push FILE to an etcd key: check it, plan it against the value there, then write it only if
    /// the key is still at the revision planned against.
    #[cfg(feature = "etcd")]
    Push {
        /// The configuration file to push.
        file: PathBuf,
        /// etcd endpoints, comma-separated (`127.0.0.1:2379,10.0.0.2:2379`).
        #[arg(long = "etcd", value_name = "ENDPOINTS")]
        etcd: String,
        /// The key the fleet follows.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Write only if the key is still at this revision (the one a dry run showed).
        #[arg(long = "expect-revision", value_name = "REVISION")]
        expect_revision: Option<i64>,
        /// Check and plan against the value in etcd; write nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
    },
    /// Every live node's result for an etcd key: revision, result, pending restart, error.
    #[cfg(feature = "etcd")]
    FleetStatus {
        /// etcd endpoints, comma-separated.
        #[arg(long = "etcd", value_name = "ENDPOINTS")]
        etcd: String,
        /// The key the fleet follows (a prefix when it ends with `/`).
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Where the nodes report (default `<KEY>/status/`; for a prefix `<PREFIX>.status/`).
        #[arg(long = "status-prefix", value_name = "PREFIX")]
        status_prefix: Option<String>,
        /// The node ids that should report, comma-separated: one without a report is missing.
        #[arg(long, value_name = "NODES", value_delimiter = ',')]
        expect: Vec<String>,
        /// At least this many nodes should report.
        #[arg(long = "expect-count", value_name = "N")]
        expect_count: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

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
}

impl<C> fmt::Debug for Cli<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

impl<C: HotConfig> Default for Cli<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: HotConfig> From<Pipeline<C>> for Cli<C> {
    fn from(pipeline: Pipeline<C>) -> Self {
        Cli { pipeline }
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
            #[cfg(feature = "etcd")]
            Command::Push {
                file,
                etcd,
                key,
                expect_revision,
                dry_run,
            } => self.push(file, etcd, key, *expect_revision, *dry_run, out),
            #[cfg(feature = "etcd")]
            Command::FleetStatus {
                etcd,
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
                fleet_status(etcd, key, status_prefix.as_deref(), expected, *json, out)
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

/// Writes the schema of `C` as a table.
pub fn fields<C: HotReload>(out: &mut dyn Write) -> std::io::Result<()> {
    let schema = C::schema();
    let path_width = schema
        .iter()
        .map(|f| f.path.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let class_width = schema
        .iter()
        .map(|f| f.class.as_str().len())
        .max()
        .unwrap_or(5)
        .max(5);
    writeln!(
        out,
        "{:path_width$}  {:class_width$}  SECRET  DOC",
        "PATH", "CLASS"
    )?;
    for field in schema {
        let mut doc = field.doc.to_string();
        if field.watch {
            doc = format!("(watched file) {doc}");
        }
        writeln!(
            out,
            "{:path_width$}  {:class_width$}  {:6}  {}",
            field.path,
            field.class.as_str(),
            if field.secret { "yes" } else { "" },
            doc.trim()
        )?;
    }
    Ok(())
}

fn history(path: &PathBuf, verify: bool, out: &mut dyn Write) -> std::io::Result<u8> {
    let records = if verify {
        match verify_audit_log(path) {
            Ok(records) => records,
            Err(err) => {
                writeln!(out, "audit log does not verify: {err}")?;
                return Ok(EXIT_INVALID);
            }
        }
    } else {
        match read_records(path) {
            Ok(records) => records,
            Err(err) => {
                writeln!(out, "{err}")?;
                return Ok(EXIT_INVALID);
            }
        }
    };
    for record in &records {
        write_record(record, out)?;
    }
    if verify {
        let repairs = records.iter().filter(|r| r.recovered.is_some()).count();
        write!(out, "hash chain verified: {} record(s)", records.len())?;
        if repairs > 0 {
            write!(out, "; {repairs} torn tail(s) repaired on open")?;
        }
        writeln!(out)?;
    }
    Ok(EXIT_OK)
}

fn read_records(path: &PathBuf) -> Result<Vec<AuditRecord>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: not an audit record: {e}", path.display(), i + 1))
        })
        .collect()
}

fn write_record(record: &AuditRecord, out: &mut dyn Write) -> std::io::Result<()> {
    write!(
        out,
        "{}  #{:<4} {:8} {:9}",
        record.time, record.generation, record.trigger, record.result
    )?;
    if let Some(source) = &record.source {
        write!(
            out,
            " sha256 {}",
            &source.sha256[..12.min(source.sha256.len())]
        )?;
    }
    writeln!(out, " ({:.1} ms)", record.duration_ms)?;
    for change in &record.changes {
        let old = change.old.as_deref().unwrap_or("-");
        let new = change.new.as_deref().unwrap_or("-");
        writeln!(
            out,
            "    {} [{}] {}: {old} -> {new}",
            change.path, change.class, change.kind
        )?;
    }
    if !record.pending_restart.is_empty() {
        writeln!(
            out,
            "    pending restart: {}",
            record.pending_restart.join(", ")
        )?;
    }
    if let Some(error) = &record.error {
        writeln!(out, "    {}", error.replace('\n', "\n    "))?;
    }
    Ok(())
}

#[cfg(feature = "etcd")]
mod fleet {
    use std::io::Write;
    use std::path::Path;

    use super::{
        Cli, EXIT_CONFLICT, EXIT_ETCD, EXIT_INVALID, EXIT_NOT_CONVERGED, EXIT_OK, EXIT_REJECTED,
    };
    use crate::etcd::{
        split_endpoints, EtcdClient, EtcdSource, FleetStatus, PreparedPush, PushError,
    };
    use crate::hot_reload::HotConfig;

    impl PushError {
        /// The exit code `push` ends with for this error.
        pub fn exit_code(&self) -> u8 {
            match self {
                PushError::Invalid(_) | PushError::Usage(_) => EXIT_INVALID,
                PushError::Conflict { .. } => EXIT_CONFLICT,
                PushError::Etcd(_) => EXIT_ETCD,
            }
        }
    }

    impl<C: HotConfig> Cli<C> {
        pub(super) fn push(
            &self,
            file: &Path,
            endpoints: &str,
            key: &str,
            expect_revision: Option<i64>,
            dry_run: bool,
            out: &mut dyn Write,
        ) -> std::io::Result<u8> {
            let client = match EtcdClient::new(split_endpoints(endpoints)) {
                Ok(client) => client,
                Err(err) => {
                    writeln!(out, "nothing pushed: {err}")?;
                    return Ok(EXIT_ETCD);
                }
            };
            let prepared = match PreparedPush::prepare(&self.pipeline, file, &client, key) {
                Ok(prepared) => prepared,
                Err(err) => {
                    writeln!(out, "{err}")?;
                    return Ok(err.exit_code());
                }
            };
            if prepared.revision == 0 {
                writeln!(out, "planned against: etcd:{key} (absent)")?;
            } else {
                writeln!(
                    out,
                    "planned against: etcd:{key} at revision {}",
                    prepared.revision
                )?;
            }
            if let Some(note) = &prepared.note {
                writeln!(out, "{note}")?;
                writeln!(out, "candidate: {}", prepared.identity)?;
            }
            if let Some(plan) = &prepared.plan {
                writeln!(out, "{plan}")?;
            }
            if prepared.revision > 0 {
                self.note_nodes_elsewhere(&client, key, prepared.revision, out)?;
            }
            if let Some(expected) = expect_revision {
                if expected != prepared.revision {
                    let err = PushError::Conflict {
                        key: key.to_string(),
                        planned: expected,
                        current: prepared.revision,
                    };
                    writeln!(out, "{err}")?;
                    return Ok(EXIT_CONFLICT);
                }
            }
            let rejected = prepared.rejection().map(str::to_string);
            let code = if rejected.is_some() {
                EXIT_REJECTED
            } else {
                EXIT_OK
            };
            if dry_run {
                writeln!(
                    out,
                    "dry run: nothing written (push with --expect-revision {} to write exactly \
                     over what was planned against)",
                    prepared.revision
                )?;
                return Ok(code);
            }
            match prepared.commit(&client) {
                Ok(revision) => {
                    writeln!(
                        out,
                        "pushed {} to {key}: revision {revision}",
                        file.display()
                    )?;
                    if let Some(reason) = rejected {
                        writeln!(
                            out,
                            "warning: nodes running revision {} with the reject policy will \
                             refuse revision {revision} ({reason}); it takes effect on each node \
                             at its next restart. fleet-status shows what each node did.",
                            prepared.revision
                        )?;
                    }
                    Ok(code)
                }
                Err(err) => {
                    writeln!(out, "{err}")?;
                    Ok(err.exit_code())
                }
            }
        }
    }

    impl<C> Cli<C>
    where
        C: HotConfig,
    {
        /// Says which nodes do not run `revision`: they diff against their own live values, so
        /// the plan (made against the value in etcd) may not be what they do.
        fn note_nodes_elsewhere(
            &self,
            client: &EtcdClient,
            key: &str,
            revision: i64,
            out: &mut dyn Write,
        ) -> std::io::Result<()> {
            let prefix = EtcdSource::for_key(client.clone(), key).default_status_prefix();
            let Ok(fleet) = FleetStatus::read(client, key, &prefix) else {
                return Ok(());
            };
            let elsewhere: Vec<String> = fleet
                .nodes
                .iter()
                .filter(|n| !(n.result.is_ok() && n.revision == Some(revision)))
                .map(|n| match n.revision {
                    Some(r) => format!("{} ({} at revision {r})", n.node, n.result),
                    None => format!("{} ({})", n.node, n.result),
                })
                .collect();
            if !elsewhere.is_empty() {
                writeln!(
                    out,
                    "note: {} of {} node(s) do not run revision {revision}: {}; each node diffs \
                     against its own live configuration, so they may do otherwise than planned",
                    elsewhere.len(),
                    fleet.nodes.len(),
                    elsewhere.join(", ")
                )?;
            }
            Ok(())
        }
    }

    pub(super) fn fleet_status(
        endpoints: &str,
        key: &str,
        status_prefix: Option<&str>,
        expected: crate::etcd::Expected,
        json: bool,
        out: &mut dyn Write,
    ) -> std::io::Result<u8> {
        let client = match EtcdClient::new(split_endpoints(endpoints)) {
            Ok(client) => client,
            Err(err) => {
                writeln!(out, "{err}")?;
                return Ok(EXIT_ETCD);
            }
        };
        let prefix = match status_prefix {
            Some(prefix) => prefix.to_string(),
            None => EtcdSource::for_key(client.clone(), key).default_status_prefix(),
        };
        let fleet = match FleetStatus::read(&client, key, &prefix) {
            Ok(fleet) => fleet.expecting(expected),
            Err(err) => {
                writeln!(out, "{err}")?;
                return Ok(EXIT_ETCD);
            }
        };
        if json {
            let text =
                serde_json::to_string_pretty(&fleet.to_json()).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else {
            writeln!(out, "{fleet}")?;
        }
        Ok(if fleet.converged() {
            EXIT_OK
        } else {
            EXIT_NOT_CONVERGED
        })
    }
}

#[cfg(feature = "etcd")]
use fleet::fleet_status;
