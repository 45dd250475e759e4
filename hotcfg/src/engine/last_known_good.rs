//! Last-known-good start: when the source cannot be reached at start, the engine starts from the
//! last version an earlier run applied (kept beside the audit log), marked stale until a read of
//! the source answers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;

use super::builder::{BuildError, ReloaderBuilder};
use super::Reloader;
use crate::audit::{last_known_good, LastKnownGoodError, Snapshots};
use crate::hot_reload::{HotConfig, HotReload};
use crate::load::ConfigError;
use crate::source::{SourceContent, SourceError};

/// Where a stale engine's version came from, and why: what
/// [`Trigger::LastKnownGood`](crate::Trigger::LastKnownGood) carries and
/// [`Reloader::stale`] returns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct LastKnownGoodStart {
    /// The generation that applied this content in an earlier run (its audit record's).
    pub generation: u64,
    /// When that record was written (RFC 3339, UTC).
    pub applied_at: String,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Why the source could not be read at start.
    pub unreachable: String,
}

/// `generation 3 of an earlier run (applied at 2026-..., sha256 9f86d081884c): <why>`.
impl fmt::Display for LastKnownGoodStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sha = &self.sha256[..12.min(self.sha256.len())];
        write!(
            f,
            "generation {} of an earlier run (applied at {}, sha256 {sha}): {}",
            self.generation, self.applied_at, self.unreachable
        )
    }
}

impl<C: HotConfig> ReloaderBuilder<C> {
    /// Starts from the last-known-good version when the source cannot be reached at start (a
    /// read that fails as [`Unavailable`](crate::SourceErrorKind::Unavailable): etcd down, not
    /// a key that does not exist or a refused login, which still fail). That version is the
    /// newest one the [`audit_log`](ReloaderBuilder::audit_log) says was applied for this
    /// source, that probation never reverted, whose snapshot verifies (see
    /// [`audit::last_known_good`](crate::audit::last_known_good)). It goes through today's
    /// validation and handlers like any first version; the startup event's trigger is
    /// [`Trigger::LastKnownGood`](crate::Trigger::LastKnownGood), and the engine is *stale*
    /// ([`Reloader::stale`], the gauge [`CONFIG_STALE`](crate::metrics::CONFIG_STALE), an etcd
    /// node's status) until a read of the source answers: the next reload (the etcd follower
    /// makes one as soon as etcd answers) applies the source's value, or finds it unchanged.
    ///
    /// Without a usable version, `build` fails with [`BuildError::NoLastKnownGood`], naming
    /// the read's error and why no version could replace it. Needs an audit log and snapshots
    /// (not [`snapshots_kept(0)`](ReloaderBuilder::snapshots_kept)); else `build` fails with
    /// [`BuildError::Setup`].
    ///
    /// ```
    /// use hotcfg::{Format, HotReload, MemorySource, Reloader, SourceErrorKind, Trigger};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// struct Config {
    ///     #[reload(scope = "pool")]
    ///     workers: usize,
    /// }
    ///
    /// let dir = tempfile::tempdir()?;
    /// let audit = dir.path().join("audit.jsonl");
    /// let source = MemorySource::new("app.toml", Format::Toml, "workers = 4");
    /// drop(Reloader::<Config>::builder(source.clone()).audit_log(&audit).build()?);
    ///
    /// // The next start cannot reach the source.
    /// source.fail_reads(SourceErrorKind::Unavailable, "the store is down");
    /// let reloader = Reloader::<Config>::builder(source.clone())
    ///     .audit_log(&audit)
    ///     .last_known_good()
    ///     .build()?;
    /// assert_eq!(reloader.handle().load().workers, 4);
    /// assert!(matches!(reloader.last_event().trigger, Trigger::LastKnownGood(_)));
    /// assert!(reloader.stale().is_some());
    ///
    /// // The source answers again: the next reload reads it, and the engine is no longer stale.
    /// source.set("workers = 6");
    /// reloader.reload_now();
    /// assert_eq!(reloader.handle().load().workers, 6);
    /// assert!(reloader.stale().is_none());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_known_good(mut self) -> Self {
        self.last_known_good = true;
        self
    }

    /// With [`last_known_good`](ReloaderBuilder::last_known_good): it can work.
    pub(super) fn check_last_known_good(&self) -> Result<(), BuildError> {
        if !self.last_known_good {
            return Ok(());
        }
        if self.audit_path.is_none() {
            return Err(BuildError::Setup(
                "last_known_good() needs an audit_log: the versions to start from are kept \
                 beside it"
                    .into(),
            ));
        }
        if self.snapshots_kept == 0 {
            return Err(BuildError::Setup(
                "last_known_good() needs snapshots: snapshots_kept(0) keeps no version to start \
                 from"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The first content: the source's, or when it cannot be reached (and last-known-good is
    /// on), the last-known-good version, with where it came from and the read's error.
    pub(super) fn first_content(&self) -> Result<(SourceContent, Option<Stale>), BuildError> {
        let read = match self.source.read() {
            Ok(content) => return Ok((content, None)),
            Err(err) if err.is_temporary() && self.last_known_good => err,
            Err(err) => return Err(BuildError::Config(err.into())),
        };
        let log = self.audit_path.as_deref().unwrap_or(Path::new(""));
        let snapshots = Snapshots::beside(log);
        let kept = match last_known_good(log, &snapshots, self.source.as_ref()) {
            Ok(kept) => kept,
            Err(why) => return Err(no_last_known_good(read, why)),
        };
        tracing::warn!(
            %read,
            snapshot = %kept.snapshot.display(),
            generation = kept.record.generation,
            "the source cannot be reached: starting from the last-known-good version, stale \
             until the source answers"
        );
        let start = LastKnownGoodStart {
            generation: kept.record.generation,
            applied_at: kept.record.time.clone(),
            sha256: kept.content.identity.sha256.clone(),
            unreachable: read.to_string(),
        };
        let stale = Stale {
            start,
            read,
            log: log.to_path_buf(),
            name: self.source.name(),
        };
        Ok((kept.content, Some(stale)))
    }
}

/// A start from a last-known-good version: where it came from, and the read that failed.
pub(super) struct Stale {
    pub(super) start: LastKnownGoodStart,
    read: SourceError,
    log: PathBuf,
    name: String,
}

impl Stale {
    /// The error when today's validation refuses the last-known-good version.
    pub(super) fn refused(self, error: ConfigError) -> BuildError {
        let why = LastKnownGoodError::Refused {
            log: self.log,
            source_name: self.name,
            generation: self.start.generation,
            time: self.start.applied_at,
            error: Box::new(error),
        };
        no_last_known_good(self.read, why)
    }
}

/// The error of a start that could neither read the source nor use a last-known-good version.
fn no_last_known_good(read: SourceError, why: LastKnownGoodError) -> BuildError {
    BuildError::NoLastKnownGood {
        read,
        why: Box::new(why),
    }
}

impl<C: HotReload> Reloader<C> {
    /// `Some` while the engine runs a version it started from because the source could not be
    /// reached ([`ReloaderBuilder::last_known_good`]), and no read of the source has answered
    /// since; `None` otherwise.
    pub fn stale(&self) -> Option<LastKnownGoodStart> {
        self.inner
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A read of the source answered: the engine is no longer stale. Returns whether it was.
    pub(super) fn source_answered(&self) -> bool {
        let mut stale = self
            .inner
            .stale
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let was = stale.take().is_some();
        if was {
            tracing::info!("the source answered: no longer running a stale version");
            crate::metrics::stale(false);
        }
        was
    }
}
