//! The public calls of probation: setting it up on the builder, and status, confirmation and
//! quarantine on the reloader.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::probation::{
    AsyncHealthCheck, Checker, ConfirmError, HealthCheck, ProbationStatus, Quarantined,
};
use super::{Reloader, ReloaderBuilder};
use crate::hot_reload::HotConfig;

impl<C: HotConfig> ReloaderBuilder<C> {
    /// Puts every committed change on probation for `window`: `health` judges it every interval
    /// (default a tenth of the window, see
    /// [`probation_interval`](ReloaderBuilder::probation_interval)) and once more at the end of
    /// the window, from a thread of its own. An unhealthy verdict, a check that panics, or one
    /// that does not answer within the [health timeout](ReloaderBuilder::health_timeout)
    /// reverts the change automatically: the last version that finished its probation (or the
    /// startup version) is committed again as a new generation, through the same handler
    /// protocol (prepare, apply, rollback if that fails), recorded with a
    /// [`Trigger::Probation`](crate::Trigger::Probation) naming the reason, and counted in
    /// [`REVERTS_TOTAL`](crate::metrics::REVERTS_TOTAL). The reverted content is quarantined:
    /// while the source holds those bytes, a reload refuses them (see
    /// [`Reloader::quarantined`]).
    ///
    /// A newer change committed during the window supersedes the one on probation: the newer
    /// one gets a full window, and a revert restores the last trusted version, never the
    /// superseded one. Probation lives in memory: after a restart, the source's content is
    /// loaded as at any start and is not on probation.
    ///
    /// ```
    /// use hotcfg::{Format, Health, HotReload, MemorySource, ProbationStatus, Reloader};
    /// use std::time::Duration;
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 4");
    /// let reloader = Reloader::<Config>::builder(source.clone())
    ///     .probation(Duration::from_secs(30), |probe: &hotcfg::Probe<Config>| {
    ///         if probe.new.workers == 0 { Health::unhealthy("no workers") } else { Health::Healthy }
    ///     })
    ///     .probation_interval(Duration::from_millis(10))
    ///     .build()?;
    ///
    /// source.set("workers = 0"); // valid, but unhealthy
    /// reloader.reload_now();
    /// let status = reloader.wait_probation(Duration::from_secs(10));
    /// assert!(matches!(status, ProbationStatus::Reverted { live: 3, .. }), "{status:?}");
    /// assert_eq!(reloader.handle().load().workers, 4);
    /// assert_eq!(reloader.quarantined().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn probation(mut self, window: Duration, health: impl HealthCheck<C>) -> Self {
        self.probation.window = window;
        self.probation.check = Some(Checker::Sync(Arc::new(health)));
        self
    }

    /// [`probation`](ReloaderBuilder::probation) with an async health check, run on the tokio
    /// runtime given with [`runtime`](ReloaderBuilder::runtime) or current at `build()`.
    pub fn probation_async(mut self, window: Duration, health: impl AsyncHealthCheck<C>) -> Self {
        self.probation.window = window;
        self.probation.check = Some(Checker::Async(Arc::new(health)));
        self
    }

    /// Time between two health checks (default: a tenth of the window).
    pub fn probation_interval(mut self, interval: Duration) -> Self {
        self.probation.interval = Some(interval);
        self
    }

    /// How long a health check may take; one that has not answered by then counts as unhealthy
    /// (default [`DEFAULT_HEALTH_TIMEOUT`](crate::DEFAULT_HEALTH_TIMEOUT)).
    pub fn health_timeout(mut self, timeout: Duration) -> Self {
        self.probation.timeout = timeout;
        self
    }

    /// Commit-confirmed: every committed change reverts automatically (as
    /// [`probation`](ReloaderBuilder::probation) describes) unless
    /// [`Reloader::confirm`] is called within `deadline`. With a health check too, a change
    /// passes once confirmed and healthy through its window.
    ///
    /// ```
    /// use hotcfg::{ConfirmError, Format, HotReload, MemorySource, ProbationStatus, Reloader};
    /// use std::time::Duration;
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "net")]
    ///     listen: String,
    /// }
    ///
    /// let source = MemorySource::new("app.toml", Format::Toml, r#"listen = "10.0.0.1""#);
    /// let reloader = Reloader::<Config>::builder(source.clone())
    ///     .confirm_within(Duration::from_secs(60))
    ///     .build()?;
    /// source.set(r#"listen = "10.0.0.2""#);
    /// reloader.reload_now();
    /// assert_eq!(reloader.confirm()?, 2); // the operator still reaches the host: keep it
    /// let status = reloader.wait_probation(Duration::from_secs(10));
    /// assert!(matches!(status, ProbationStatus::Passed { generation: 2, .. }));
    /// assert!(matches!(reloader.confirm(), Err(ConfirmError::NothingPending { live: 2 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn confirm_within(mut self, deadline: Duration) -> Self {
        self.probation.confirm_within = Some(deadline);
        self
    }
}

impl<C: HotConfig> Reloader<C> {
    /// Where probation stands: the change on probation, or how the last one ended
    /// ([`ProbationStatus::Idle`] without probation).
    pub fn probation_status(&self) -> ProbationStatus {
        self.inner
            .probation
            .as_ref()
            .map_or(ProbationStatus::Idle, |cell| cell.status())
    }

    /// Whether this reloader runs probation or commit-confirmed (an etcd node reports it).
    #[cfg(any(feature = "etcd", all(test, feature = "derive")))]
    pub(crate) fn has_probation(&self) -> bool {
        self.inner.probation.is_some()
    }

    /// A receiver told of every change of [`probation_status`](Reloader::probation_status), for
    /// async code (`changed().await`, `wait_for`).
    pub fn probation_updates(&self) -> watch::Receiver<ProbationStatus> {
        match &self.inner.probation {
            Some(cell) => cell.subscribe(),
            None => watch::channel(ProbationStatus::Idle).1,
        }
    }

    /// Waits until no change is on probation (passed, reverted, or the revert failed), at most
    /// `timeout`, and returns the status then.
    pub fn wait_probation(&self, timeout: Duration) -> ProbationStatus {
        match &self.inner.probation {
            Some(cell) => cell.wait_settled(timeout),
            None => ProbationStatus::Idle,
        }
    }

    /// Commit-confirmed: confirms the change awaiting confirmation and returns its generation.
    /// Refused with a clear [`ConfirmError`] when commit-confirmed is not set up, when the change
    /// was already reverted, or when nothing awaits confirmation.
    pub fn confirm(&self) -> Result<u64, ConfirmError> {
        self.confirm_at(None)
    }

    /// [`confirm`](Reloader::confirm), only if `generation` is the one awaiting confirmation
    /// (an operator confirms what they checked, not a newer edit).
    pub fn confirm_generation(&self, generation: u64) -> Result<u64, ConfirmError> {
        self.confirm_at(Some(generation))
    }

    fn confirm_at(&self, generation: Option<u64>) -> Result<u64, ConfirmError> {
        let live = self.inner.handle.generation();
        match &self.inner.probation {
            Some(cell) => cell.confirm(generation, live),
            None => Err(ConfirmError::NotEnabled),
        }
    }

    /// The quarantined contents, oldest first: probation reverted them, and a reload finding
    /// the same bytes is rejected (`content sha256 ... is quarantined`) until the source holds
    /// something else.
    pub fn quarantined(&self) -> Vec<Quarantined> {
        self.inner
            .probation
            .as_ref()
            .map_or_else(Vec::new, |cell| cell.quarantine())
    }

    /// Lets quarantined content `sha256` be applied again (after the cause outside was fixed);
    /// `false` if it was not quarantined.
    pub fn release_quarantine(&self, sha256: &str) -> bool {
        self.inner
            .probation
            .as_ref()
            .is_some_and(|cell| cell.release(Some(sha256)) > 0)
    }
}

#[cfg(all(test, feature = "derive"))]
mod tests;
