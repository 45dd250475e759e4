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
//! Exit codes: 0 success (valid, or a plan that would apply or change nothing); 1 the input is
//! invalid or unreadable (or an audit log does not verify); 3 a plan that would be rejected.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::handlers::Handlers;
use crate::plan::{decide, Decision, RestartPolicy};
use crate::reloader::{load_candidate, plan_of};
use crate::validate::Validator;
use crate::{
    verify_audit_log, AuditRecord, ConfigError, FileSource, HotReload, Loader, Source, Violations,
};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the input is invalid or unreadable.
pub const EXIT_INVALID: u8 = 1;
/// Exit code: the plan would be rejected.
pub const EXIT_REJECTED: u8 = 3;

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
}

/// Runs [`Command`]s for configuration type `C`, with the same loading, validation, policy and
/// scope dependencies as the application's engine.
pub struct Cli<C> {
    loader: Loader<C>,
    validator: Option<Validator<C>>,
    policy: RestartPolicy,
    scopes: Handlers<C>,
}

impl<C> fmt::Debug for Cli<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cli")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<C> Default for Cli<C>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<C> Cli<C>
where
    C: HotReload + DeserializeOwned + Send + Sync,
{
    /// Commands with a plain loader, no validation and the reject policy.
    pub fn new() -> Self {
        Cli {
            loader: Loader::default(),
            validator: None,
            policy: RestartPolicy::default(),
            scopes: Handlers::default(),
        }
    }

    /// Parses like the application does (defaults, environment overlay).
    pub fn loader(mut self, loader: Loader<C>) -> Self {
        self.loader = loader;
        self
    }

    /// Validates like the application does.
    pub fn validator(
        mut self,
        validate: impl Fn(&C, &mut Violations) + Send + Sync + 'static,
    ) -> Self {
        self.validator = Some(Box::new(validate));
        self
    }

    /// Plans under this restart policy.
    pub fn policy(mut self, policy: RestartPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Declares the same scope dependencies as the engine, so plans list the same handler order.
    pub fn scope_depends_on(mut self, scope: &str, dependencies: &[&str]) -> Self {
        for dep in dependencies {
            self.scopes
                .add_dependency(scope.to_string(), dep.to_string());
        }
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
        };
        result.unwrap_or_else(|err| {
            let _ = writeln!(out, "error: cannot write the report: {err}");
            EXIT_INVALID
        })
    }

    fn load(&self, file: &PathBuf) -> Result<(C, crate::SourceContent), ConfigError> {
        let content = FileSource::new(file).read()?;
        let config = load_candidate(&self.loader, self.validator.as_ref(), &content)?;
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
        let plan = match self.load(file) {
            Ok((candidate, content)) => {
                let decided = decide(&live, candidate, self.policy, Vec::new());
                plan_of(Some(content.identity), decided, |scopes| {
                    self.scopes.plan(scopes)
                })
            }
            Err(error) => crate::Plan {
                source: FileSource::new(file).read().ok().map(|c| c.identity),
                changes: crate::Diff::empty(),
                error: Some(error),
                handlers: Vec::new(),
                decision: Decision::Invalid,
            },
        };
        if json {
            let text = serde_json::to_string_pretty(&plan).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else {
            writeln!(out, "{plan}")?;
        }
        Ok(match plan.decision {
            Decision::Invalid => EXIT_INVALID,
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
        writeln!(out, "hash chain verified: {} record(s)", records.len())?;
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
