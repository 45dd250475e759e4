//! What each reload attempt did: the event recorded, sent to subscribers and written to the audit
//! log.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::{Change, ConfigError, Diff, SourceIdentity};

/// What started a reload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Trigger {
    /// The initial load.
    Startup,
    /// A watched file changed (the configuration or a file it refers to).
    File(PathBuf),
    /// A signal (SIGHUP).
    Signal,
    /// A call to [`Reloader::reload_now`](crate::Reloader::reload_now) (an admin command, a test).
    Manual,
    /// A remote store announced a new version (etcd).
    Remote(String),
}

impl Trigger {
    /// The name used in the audit log: `startup`, `file`, `signal`, `manual`, `remote`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::File(_) => "file",
            Trigger::Signal => "signal",
            Trigger::Manual => "manual",
            Trigger::Remote(_) => "remote",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::File(path) => write!(f, "file {}", path.display()),
            Trigger::Remote(what) => write!(f, "remote {what}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// Why a reload failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    /// The candidate could not be read, parsed or validated.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A scope handler's `apply` returned an error.
    #[error("handler for scope `{scope}` failed: {message}")]
    Handler {
        /// The scope whose handler failed.
        scope: String,
        /// Its error.
        message: String,
    },
    /// A scope handler panicked; the panic was caught.
    #[error("handler for scope `{scope}` panicked: {message}")]
    HandlerPanicked {
        /// The scope whose handler panicked.
        scope: String,
        /// The panic message.
        message: String,
    },
    /// The reload's audit record could not be written and the engine fails closed
    /// ([`AuditFailure::FailClosed`](crate::AuditFailure::FailClosed)): it was rolled back.
    #[error("the audit log is not writable: {message}")]
    AuditUnwritable {
        /// The write error.
        message: String,
    },
    /// A blocking call ([`Reloader::reload_now`](crate::Reloader::reload_now) or
    /// [`trigger`](crate::Reloader::trigger)) was made on a current-thread tokio runtime while
    /// async handlers need that thread to run: nothing was attempted (nor recorded).
    #[error(
        "a blocking reload on a current-thread tokio runtime would stall the async handlers that \
         need it; nothing was attempted: use `reload().await` (or `trigger_async(..).await`)"
    )]
    WouldBlockRuntime,
}

/// What became of the handlers that had applied when a reload failed. A sum type rather than a
/// flag, so that "nothing needed undoing" and "undoing failed" cannot be confused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rollback {
    /// No handler had applied the candidate (it failed first, or the candidate never reached
    /// the handlers): nothing to undo.
    NotNeeded,
    /// Every handler that had applied was rolled back, in reverse order.
    Complete {
        /// The scopes rolled back, in the order they were rolled back.
        scopes: Vec<String>,
    },
    /// Some rollbacks failed or panicked: those subsystems may still follow the refused
    /// candidate, although readers keep seeing the previous configuration.
    Incomplete {
        /// What failed, one entry per handler (`rollback of `scope`: ...`).
        errors: Vec<String>,
    },
}

impl Rollback {
    /// Whether any handler had applied and was asked to roll back.
    pub fn was_attempted(&self) -> bool {
        !matches!(self, Rollback::NotNeeded)
    }
}

impl fmt::Display for Rollback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rollback::NotNeeded => {
                f.write_str("nothing was applied; the previous configuration stays live")
            }
            Rollback::Complete { scopes } => write!(
                f,
                "rolled back {}; the previous configuration stays live",
                scopes
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Rollback::Incomplete { errors } => write!(
                f,
                "rollback incomplete ({}); readers keep the previous configuration, but those \
                 subsystems may still run the refused one",
                errors.join("; ")
            ),
        }
    }
}

/// The outcome of one reload attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReloadResult {
    /// A new configuration was committed (or restart-only changes were deferred).
    Applied {
        /// The hot changes now live.
        applied: Vec<Change>,
        /// Things worth telling the operator (deferred changes, rollback trouble).
        warnings: Vec<String>,
        /// Restart-only changes in the source that are not live (deferred).
        pending_restart: Vec<Change>,
    },
    /// Nothing changed: the same bytes, or a text whose values are all equal.
    Unchanged,
    /// The candidate was refused before anything was applied.
    Rejected {
        /// Why: restart-only changes under the reject policy, or a handler's veto.
        reason: String,
        /// The changes refused.
        refused: Vec<Change>,
    },
    /// The reload failed; the live configuration is the one from before.
    Failed {
        /// What went wrong.
        error: ReloadError,
        /// What became of the handlers that had applied.
        rollback: Rollback,
    },
}

impl ReloadResult {
    /// The name used in the audit log and metrics: `applied`, `unchanged`, `rejected`, `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            ReloadResult::Applied { .. } => "applied",
            ReloadResult::Unchanged => "unchanged",
            ReloadResult::Rejected { .. } => "rejected",
            ReloadResult::Failed { .. } => "failed",
        }
    }

    /// `true` for [`ReloadResult::Applied`] and [`ReloadResult::Unchanged`].
    pub fn is_ok(&self) -> bool {
        matches!(self, ReloadResult::Applied { .. } | ReloadResult::Unchanged)
    }

    /// The restart-only changes deferred, for a success.
    pub fn pending_restart(&self) -> &[Change] {
        match self {
            ReloadResult::Applied {
                pending_restart, ..
            } => pending_restart,
            _ => &[],
        }
    }
}

/// The record of one reload attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReloadEvent {
    /// The live generation after the attempt.
    pub generation: u64,
    /// When the attempt started.
    pub timestamp: SystemTime,
    /// What started it.
    pub trigger: Trigger,
    /// The version read, when it could be read.
    pub source: Option<SourceIdentity>,
    /// Every difference between the live configuration and the candidate.
    pub changes: Diff,
    /// The outcome.
    pub result: ReloadResult,
    /// How long the attempt took.
    pub duration: Duration,
}

impl fmt::Display for ReloadEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            ReloadResult::Applied { applied, .. } if applied.is_empty() => {
                f.write_str("nothing applied")?
            }
            ReloadResult::Applied { applied, .. } => {
                write!(f, "applied {} change(s)", applied.len())?
            }
            ReloadResult::Unchanged => f.write_str("unchanged")?,
            ReloadResult::Rejected { reason, .. } => write!(f, "rejected: {reason}")?,
            ReloadResult::Failed { error, .. } => write!(f, "failed: {error}")?,
        }
        write!(f, " [{}", self.trigger)?;
        match (&self.source, &self.trigger) {
            // The trigger already names the file: show only the version.
            (Some(source), Trigger::File(path)) if source.path == path.display().to_string() => {
                write!(
                    f,
                    "; sha256 {}",
                    &source.sha256[..12.min(source.sha256.len())]
                )?
            }
            (Some(source), _) => write!(f, "; {source}")?,
            (None, _) => {}
        }
        write!(
            f,
            "; live generation {}; {:.1} ms]",
            self.generation,
            self.duration.as_secs_f64() * 1000.0
        )?;
        match &self.result {
            ReloadResult::Applied {
                applied,
                warnings,
                pending_restart,
            } => {
                for change in applied {
                    write!(f, "\n  applied  {change}")?;
                }
                for change in pending_restart {
                    write!(f, "\n  pending restart  {change}")?;
                }
                for warning in warnings {
                    write!(f, "\n  warning: {warning}")?;
                }
            }
            ReloadResult::Unchanged => {}
            ReloadResult::Rejected { refused, .. } => {
                for change in refused {
                    write!(f, "\n  refused  {change}")?;
                }
            }
            ReloadResult::Failed { rollback, .. } => write!(f, "\n  {rollback}")?,
        }
        Ok(())
    }
}

/// Receives every reload event. Called on a dispatcher thread: a slow or panicking subscriber
/// delays no reload.
///
/// ```
/// struct Log;
/// impl hotcfg::ReloadSubscriber for Log {
///     fn on_reload(&self, event: &hotcfg::ReloadEvent) {
///         tracing::info!(%event, "configuration reload");
///     }
/// }
/// ```
pub trait ReloadSubscriber: Send + Sync + 'static {
    /// Called once per reload attempt, in order.
    fn on_reload(&self, event: &ReloadEvent);
}

impl<F: Fn(&ReloadEvent) + Send + Sync + 'static> ReloadSubscriber for F {
    fn on_reload(&self, event: &ReloadEvent) {
        self(event)
    }
}
