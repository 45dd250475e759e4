//! Safety after the commit: a committed change is on probation for a window. A health check
//! (sync or async) judges it every interval; an unhealthy verdict, a check that panics or does
//! not answer in time, or (commit-confirmed) a missing confirmation reverts it automatically to
//! the last version that finished its probation, through the same handler protocol, as a new
//! generation. The reverted source content is quarantined by its content key (sha256).
//!
//! This file holds the public vocabulary; `probation_cell` the state, `probation_thread` the
//! checker, `probation_revert` the revert and the `Reloader` calls.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::async_handlers::BoxFuture;
use crate::handle::Snapshot;

/// Default time between two health checks: the window divided by this.
pub(super) const CHECKS_PER_WINDOW: u32 = 10;
/// Default time a health check may take before it counts as hung.
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

/// A health check's verdict on the change on probation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// Keep the change (so far).
    Healthy,
    /// Revert the change, for this reason.
    Unhealthy(String),
}

impl Health {
    /// [`Health::Unhealthy`] with `reason`.
    pub fn unhealthy(reason: impl Into<String>) -> Self {
        Health::Unhealthy(reason.into())
    }
}

/// What a health check is given: the change on probation and the version a revert would
/// restore.
#[derive(Debug)]
#[non_exhaustive]
pub struct Probe<C> {
    /// The version on probation (the live one).
    pub new: Arc<Snapshot<C>>,
    /// The version a revert would restore: the last one that finished its probation (or the
    /// startup version).
    pub previous: Arc<Snapshot<C>>,
    /// Time since the change was committed.
    pub elapsed: Duration,
    /// Checks already made on this change.
    pub checks: u32,
}

impl<C> Clone for Probe<C> {
    fn clone(&self) -> Self {
        Probe {
            new: Arc::clone(&self.new),
            previous: Arc::clone(&self.previous),
            elapsed: self.elapsed,
            checks: self.checks,
        }
    }
}

/// Judges a change on probation, from a thread of its own (never the reload's). A check that
/// panics counts as unhealthy ([`RevertReason::CheckPanicked`]); one that does not answer within
/// the health timeout counts as unhealthy too ([`RevertReason::CheckTimedOut`]; its thread is
/// left to finish on its own). Closures `Fn(&Probe<C>) -> Health` implement it.
///
/// ```
/// use hotcfg::{Health, HealthCheck, Probe};
/// use std::sync::atomic::{AtomicU64, Ordering};
///
/// struct Config { workers: usize }
/// /// Unhealthy when more than 5 requests failed since the change.
/// struct Failures(AtomicU64);
/// impl HealthCheck<Config> for Failures {
///     fn check(&self, probe: &Probe<Config>) -> Health {
///         match self.0.load(Ordering::SeqCst) {
///             n if n > 5 => Health::unhealthy(format!("{n} failures with {} workers", probe.new.workers)),
///             _ => Health::Healthy,
///         }
///     }
/// }
/// ```
pub trait HealthCheck<C>: Send + Sync + 'static {
    /// The verdict on `probe.new`.
    fn check(&self, probe: &Probe<C>) -> Health;
}

impl<C, F> HealthCheck<C> for F
where
    F: Fn(&Probe<C>) -> Health + Send + Sync + 'static,
{
    fn check(&self, probe: &Probe<C>) -> Health {
        self(probe)
    }
}

/// The async counterpart of [`HealthCheck`] (query a service, read a metric over the network),
/// run on the reloader's tokio runtime (given with
/// [`ReloaderBuilder::runtime`](crate::ReloaderBuilder::runtime) or current at `build()`), under
/// the same rules: a panic or no answer within the health timeout counts as unhealthy.
///
/// ```
/// use hotcfg::{AsyncHealthCheck, BoxFuture, Health, Probe};
///
/// struct Config { upstream: String }
/// struct Reachable;
/// impl AsyncHealthCheck<Config> for Reachable {
///     fn check<'a>(&'a self, probe: &'a Probe<Config>) -> BoxFuture<'a, Health> {
///         Box::pin(async move {
///             tokio::task::yield_now().await; // connect to probe.new.upstream...
///             if probe.new.upstream.is_empty() { Health::unhealthy("no upstream") } else { Health::Healthy }
///         })
///     }
/// }
/// ```
pub trait AsyncHealthCheck<C>: Send + Sync + 'static {
    /// The verdict on `probe.new`.
    fn check<'a>(&'a self, probe: &'a Probe<C>) -> BoxFuture<'a, Health>;
}

/// Why probation reverted (or tried to revert) a change.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RevertReason {
    /// The health check said so.
    Unhealthy(String),
    /// The health check panicked (its message).
    CheckPanicked(String),
    /// The health check did not answer within this time.
    CheckTimedOut(Duration),
    /// Commit-confirmed: no confirmation within this time.
    Unconfirmed(Duration),
}

impl RevertReason {
    /// The `reason` label of [`REVERTS_TOTAL`](crate::metrics::REVERTS_TOTAL): `unhealthy`,
    /// `check_panicked`, `check_timeout` or `unconfirmed`.
    pub fn label(&self) -> &'static str {
        match self {
            RevertReason::Unhealthy(_) => "unhealthy",
            RevertReason::CheckPanicked(_) => "check_panicked",
            RevertReason::CheckTimedOut(_) => "check_timeout",
            RevertReason::Unconfirmed(_) => "unconfirmed",
        }
    }
}

impl fmt::Display for RevertReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevertReason::Unhealthy(reason) => write!(f, "unhealthy: {reason}"),
            RevertReason::CheckPanicked(message) => {
                write!(f, "the health check panicked: {message}")
            }
            RevertReason::CheckTimedOut(after) => {
                write!(f, "the health check did not answer within {after:?}")
            }
            RevertReason::Unconfirmed(after) => write!(f, "not confirmed within {after:?}"),
        }
    }
}

/// What [`Trigger::Probation`](crate::Trigger::Probation) carries: the generation reverted, the
/// generation whose version was restored, and why.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct ProbationRevert {
    /// The generation on probation, reverted.
    pub reverted: u64,
    /// The generation whose configuration is restored (as a new generation).
    pub restored: u64,
    /// Why.
    pub reason: RevertReason,
}

impl fmt::Display for ProbationRevert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "revert of generation {} to generation {}'s version ({})",
            self.reverted, self.restored, self.reason
        )
    }
}

/// Where probation stands: see [`Reloader::probation_status`](crate::Reloader::probation_status).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbationStatus {
    /// No change was on probation yet (or probation is not set up).
    Idle,
    /// A change is on probation.
    OnProbation {
        /// Its generation (the live one).
        generation: u64,
        /// The generation a revert would restore.
        revert_to: u64,
        /// When it was committed.
        since: SystemTime,
        /// When the window ends.
        window_ends: SystemTime,
        /// Commit-confirmed: when it reverts unless confirmed (`None`: no confirmation needed).
        confirm_by: Option<SystemTime>,
        /// Commit-confirmed: it was confirmed.
        confirmed: bool,
        /// Health checks made so far.
        checks: u32,
    },
    /// The last change on probation passed (healthy through the window, and confirmed when that
    /// was required): it is trusted.
    Passed {
        /// Its generation.
        generation: u64,
        /// Health checks made.
        checks: u32,
    },
    /// The last change on probation was reverted: `live` holds `restored`'s version again.
    Reverted {
        /// The change reverted, why, and what was restored.
        revert: ProbationRevert,
        /// The live generation the revert committed.
        live: u64,
    },
    /// Reverting the last change on probation failed: the change stays live (`live`), it is not
    /// on probation any more, and `error` says why (a veto, a handler failure and what its
    /// rollback did).
    RevertFailed {
        /// The revert tried.
        revert: ProbationRevert,
        /// The live generation: the change that could not be reverted.
        live: u64,
        /// What went wrong.
        error: String,
    },
}

impl ProbationStatus {
    /// The name used by the daemon: `idle`, `on_probation`, `passed`, `reverted`,
    /// `revert_failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            ProbationStatus::Idle => "idle",
            ProbationStatus::OnProbation { .. } => "on_probation",
            ProbationStatus::Passed { .. } => "passed",
            ProbationStatus::Reverted { .. } => "reverted",
            ProbationStatus::RevertFailed { .. } => "revert_failed",
        }
    }
}

/// A source content probation reverted: it is not applied again while the source holds these
/// bytes (a reload finding them is rejected, saying so); any other content is applied as usual.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Quarantined {
    /// The content key: the sha256 of the bytes (with the environment overlay's variables when
    /// there is one).
    pub sha256: String,
    /// The generation it was live as, before the revert.
    pub generation: u64,
    /// Why it was reverted.
    pub reason: RevertReason,
}

impl Quarantined {
    /// The rejection a reload finding this content gives.
    pub(super) fn refusal(&self) -> String {
        format!(
            "content sha256 {} is quarantined: generation {} was reverted ({}); it is not applied \
             again until the source changes",
            &self.sha256[..12.min(self.sha256.len())],
            self.generation,
            self.reason
        )
    }
}

/// Why [`Reloader::confirm`](crate::Reloader::confirm) refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfirmError {
    /// The reloader was built without [`confirm_within`](crate::ReloaderBuilder::confirm_within).
    #[error("changes need no confirmation here (commit-confirmed is not set up)")]
    NotEnabled,
    /// The change awaiting confirmation was reverted before the confirmation came.
    #[error("too late: generation {} was already reverted ({}); generation {live} is live", .revert.reverted, .revert.reason)]
    AlreadyReverted {
        /// The revert.
        revert: ProbationRevert,
        /// The live generation.
        live: u64,
    },
    /// No change awaits confirmation (none was committed, or the last one already passed).
    #[error("no change awaits confirmation (live generation {live})")]
    NothingPending {
        /// The live generation.
        live: u64,
    },
    /// Another generation than the one asked for awaits confirmation (a newer edit came).
    #[error("generation {asked} does not await confirmation; generation {pending} does")]
    OtherGeneration {
        /// The generation asked for.
        asked: u64,
        /// The generation awaiting confirmation.
        pending: u64,
    },
}

/// The probation set up on a builder; `None` fields are unset.
pub(super) struct ProbationSetup<C> {
    pub(super) window: Duration,
    pub(super) interval: Option<Duration>,
    pub(super) timeout: Duration,
    pub(super) confirm_within: Option<Duration>,
    pub(super) check: Option<Checker<C>>,
}

impl<C> Default for ProbationSetup<C> {
    fn default() -> Self {
        ProbationSetup {
            window: Duration::ZERO,
            interval: None,
            timeout: DEFAULT_HEALTH_TIMEOUT,
            confirm_within: None,
            check: None,
        }
    }
}

impl<C> ProbationSetup<C> {
    /// Whether any change goes on probation.
    pub(super) fn enabled(&self) -> bool {
        self.check.is_some() || self.confirm_within.is_some()
    }

    /// Whether the check needs the tokio runtime.
    pub(super) fn needs_runtime(&self) -> bool {
        matches!(self.check, Some(Checker::Async(_)))
    }

    /// Time between two checks.
    pub(super) fn interval(&self) -> Duration {
        self.interval
            .unwrap_or(self.window / CHECKS_PER_WINDOW)
            .max(Duration::from_millis(1))
    }
}

/// A health check of either kind.
pub(super) enum Checker<C> {
    Sync(Arc<dyn HealthCheck<C>>),
    Async(Arc<dyn AsyncHealthCheck<C>>),
}

impl<C> Clone for Checker<C> {
    fn clone(&self) -> Self {
        match self {
            Checker::Sync(check) => Checker::Sync(Arc::clone(check)),
            Checker::Async(check) => Checker::Async(Arc::clone(check)),
        }
    }
}

#[cfg(test)]
mod tests;
