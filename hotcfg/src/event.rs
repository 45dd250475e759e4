//! What each reload attempt did: the event recorded, sent to subscribers and written to the audit
//! log.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use crate::engine::{LastKnownGoodStart, ProbationRevert};
use crate::{Change, ConfigError, Diff, SourceError, SourceIdentity};

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
    /// A remote store announced a new version (etcd): which key, at which revision, and why.
    Remote(RemoteChange),
    /// A revert to the content an earlier generation applied
    /// ([`Reloader::revert_to`](crate::Reloader::revert_to)).
    Revert(RevertTarget),
    /// Probation reverted a change automatically: which generation, back to which, and why
    /// (see [`ReloaderBuilder::probation`](crate::ReloaderBuilder::probation)).
    Probation(ProbationRevert),
    /// The source could not be reached at start, and the engine started from the last version
    /// an earlier run applied, kept beside its audit log: stale until a read of the source
    /// answers (see [`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)).
    LastKnownGood(LastKnownGoodStart),
}

impl Trigger {
    /// The name used in the audit log: `startup`, `file`, `signal`, `manual`, `remote`,
    /// `revert`, `probation`, `last-known-good`.
    pub fn kind(&self) -> &'static str {
        match self {
            Trigger::Startup => "startup",
            Trigger::File(_) => "file",
            Trigger::Signal => "signal",
            Trigger::Manual => "manual",
            Trigger::Remote(_) => "remote",
            Trigger::Revert(_) => "revert",
            Trigger::Probation(_) => "probation",
            Trigger::LastKnownGood(_) => "last-known-good",
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trigger::File(path) => write!(f, "file {}", path.display()),
            Trigger::Remote(change) => write!(f, "remote {change}"),
            Trigger::Revert(target) => write!(f, "revert {target}"),
            Trigger::Probation(revert) => write!(f, "probation {revert}"),
            Trigger::LastKnownGood(start) => write!(f, "last-known-good {start}"),
            other => f.write_str(other.kind()),
        }
    }
}

/// What a remote store announced, carried by [`Trigger::Remote`]: the store, the key (or
/// prefix) followed, the revision, and whether a watched change or a fresh read brought it. The
/// etcd follower makes these; the audit log and a node's status report show the fields.
///
/// ```
/// use hotcfg::{RemoteCause, RemoteChange, Trigger};
///
/// let change = RemoteChange::new("etcd", "apps/billing/config.toml", 42, RemoteCause::Watched);
/// assert_eq!(change.revision, 42);
/// assert_eq!(
///     Trigger::Remote(change).to_string(),
///     "remote etcd apps/billing/config.toml revision 42"
/// );
/// ```
///
/// etcd keeps no author of a write, so there is no author field; the struct is
/// `#[non_exhaustive]` so that a store that does keep one can add it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RemoteChange {
    /// The store: `etcd`.
    pub store: String,
    /// The key, or the prefix, followed.
    pub key: String,
    /// The store revision: the change's for [`RemoteCause::Watched`], the store's at the read
    /// for [`RemoteCause::Read`].
    pub revision: i64,
    /// How the change was learnt.
    pub cause: RemoteCause,
}

/// How a [`RemoteChange`] was learnt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemoteCause {
    /// The store's watch delivered a change at the revision.
    Watched,
    /// The key was read afresh (at start, or when the history to resume a watch from was
    /// gone), at the revision.
    Read,
}

impl RemoteCause {
    /// The name used in the audit log: `watched` or `read`.
    pub fn as_str(self) -> &'static str {
        match self {
            RemoteCause::Watched => "watched",
            RemoteCause::Read => "read",
        }
    }
}

impl RemoteChange {
    /// `revision` of `key` in `store`, learnt as `cause` says.
    pub fn new(
        store: impl Into<String>,
        key: impl Into<String>,
        revision: i64,
        cause: RemoteCause,
    ) -> Self {
        RemoteChange {
            store: store.into(),
            key: key.into(),
            revision,
            cause,
        }
    }
}

impl fmt::Display for RemoteChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let RemoteChange {
            store,
            key,
            revision,
            cause,
        } = self;
        match cause {
            RemoteCause::Watched => write!(f, "{store} {key} revision {revision}"),
            RemoteCause::Read => write!(f, "{store} {key} read at revision {revision}"),
        }
    }
}

/// The earlier version a [`Trigger::Revert`] restores: the generation that applied it and the
/// SHA-256 of its source content (as its audit record's `source.sha256` says).
///
/// ```
/// use hotcfg::{RevertTarget, Trigger};
///
/// let target = RevertTarget::new(3, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
/// assert_eq!(Trigger::Revert(target).to_string(), "revert to generation 3 (sha256 9f86d081884c)");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct RevertTarget {
    /// The generation whose content is restored.
    pub generation: u64,
    /// SHA-256 of that content, as the source identified it.
    pub sha256: String,
}

impl RevertTarget {
    /// The content generation `generation` applied, hashed `sha256`.
    pub fn new(generation: u64, sha256: impl Into<String>) -> Self {
        RevertTarget {
            generation,
            sha256: sha256.into(),
        }
    }
}

impl fmt::Display for RevertTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = &self.sha256[..12.min(self.sha256.len())];
        write!(f, "to generation {} (sha256 {short})", self.generation)
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

    /// The source's error, when the attempt failed because the configuration could not be read:
    /// its [`kind`](crate::SourceError::kind) tells a store that cannot be reached from a key
    /// that does not exist.
    pub fn read_error(&self) -> Option<&SourceError> {
        match self {
            ReloadResult::Failed {
                error: ReloadError::Config(error),
                ..
            } => error.read_error(),
            _ => None,
        }
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
