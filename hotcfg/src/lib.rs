//! # hotcfg
//!
//! Change a running program's typed configuration safely: no restart, no dropped work, no
//! half-applied state, and a clear answer for every setting that cannot change live.
//!
//! ## Quick start
//!
//! ```
//! use hotcfg::{FileSource, HotReload, ReloadResult, Reloader};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
//! struct Config {
//!     /// Where clients connect.
//!     #[reload(restart)]
//!     listen: String,
//!     /// Worker pool size.
//!     #[reload(scope = "workers")]
//!     workers: usize,
//! }
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("app.toml");
//! std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nworkers = 2\n")?;
//!
//! let reloader = Reloader::<Config>::builder(FileSource::new(&path))
//!     .on_apply("workers", |cx| {
//!         // Resize the pool here; an error rolls the reload back.
//!         assert_eq!((cx.old.workers, cx.new.workers), (2, 8));
//!         Ok(())
//!     })
//!     .build()?;
//! let handle = reloader.handle();
//!
//! // A hot change is applied and becomes visible to readers.
//! std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nworkers = 8\n")?;
//! let event = reloader.reload_now();
//! assert!(matches!(event.result, ReloadResult::Applied { .. }));
//! assert_eq!(handle.load().workers, 8);
//!
//! // A restart-only change is refused (the default policy); nothing changes.
//! std::fs::write(&path, "listen = \"0.0.0.0:80\"\nworkers = 8\n")?;
//! let event = reloader.reload_now();
//! assert!(matches!(event.result, ReloadResult::Rejected { .. }));
//! assert_eq!(handle.load().listen, "127.0.0.1:7000");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Concepts
//!
//! - **Classes.** `#[derive(HotReload)]` classifies every field at compile time: a *scope*
//!   (`#[reload(scope = "limits")]`: hot, applied by that scope's handlers) or *restart*
//!   (`#[reload(restart)]`, and every unannotated field). `#[reload(nested)]` recurses into a
//!   struct (or a `Box`, `Option`, `Vec` or map of one) that derives it too, list elements by
//!   position or, with `key = "name"`, by a key field; `#[reload(secret)]` values, and
//!   [`Secret`] values wherever they sit, are never shown; `#[reload(watch)]` path fields name files that are watched with the
//!   configuration. [`HotReload::schema`] lists every field with its class and docs.
//! - **Diff.** [`HotReload::diff`] compares field by field: dotted paths (`limits.max`,
//!   `loops.fast.max_iterations`), each change with its class and its old and new values rendered
//!   as JSON (secrets as [`REDACTED`]). Equal values allocate nothing.
//! - **Pipeline.** [`Reloader`] reads a [`Source`], parses with figment (TOML, YAML, JSON,
//!   environment overlays; see [`Loader`]), validates ([`Validate`]), diffs against the live
//!   version, applies the [`RestartPolicy`], runs [`ScopeHandler::prepare`] on every affected
//!   handler (any may veto), then [`ScopeHandler::apply`] in scope-dependency order, and only then
//!   stores the new version with one atomic swap. A failed or panicking apply rolls back the
//!   handlers already applied, in reverse order; readers never see a rolled-back version.
//!   The stages before the commit (loader, validator, policy, scope dependencies) are one
//!   [`Pipeline`] value, shared by the engine and the operator commands (`cli::Cli::from`).
//!   A failed reload says what became of the handlers that had applied ([`Rollback`]).
//! - **Reading.** [`Handle::load`] is wait-free; hold a [`Handle::snapshot`] for a unit of work
//!   and that unit sees one version throughout (running work is never changed under its feet).
//!   [`Handle::project`] gives a component its own part; [`Handle::subscribe`] a change receiver;
//!   [`Handle::cached`] a per-thread reader for hot loops ([`CachedReader`]).
//! - **Triggers.** [`watcher::ConfigWatcher`] follows files through every way editors, deploy tools
//!   and Kubernetes replace them; [`reload_on_sighup`] reloads on SIGHUP; [`Reloader::reload_now`]
//!   reloads on demand. All go through one queue: one reload at a time, and triggers that arrive
//!   during a reload cause exactly one more.
//! - **Records.** Every attempt is a [`ReloadEvent`]: kept in a bounded history, broadcast
//!   ([`Reloader::events`]), passed to [`ReloadSubscriber`]s, appended to a hash-chained audit log
//!   ([`AuditLog`], [`verify_audit_log`]) and counted in [`metrics`].
//! - **Dry run.** [`Reloader::plan`] returns a [`Plan`]: the diff, validation, the handlers that
//!   would run and the decision, applying nothing.
//!
//! ## Feature flags
//!
//! - `derive` (default): re-exports `#[derive(HotReload)]`.
//! - `cli`: the [`cli`] module, operator commands (`check`, `plan`, `fields`, `history`) for any
//!   configuration type, on clap.
//! - `etcd`: the [`etcd`] module, fleets: configuration from an etcd key, followed with its watch, each
//!   node's result reported back under a lease; with `cli` also the `push` and `fleet-status`
//!   commands. Building it needs `protoc` (Debian: `protobuf-compiler`).
//!
//! ## Caveats
//!
//! - Generic configuration structs cannot derive `HotReload` (the schema is cached in a static).
//! - Map keys and values of non-nested fields are diffed through their JSON form, so a map with
//!   non-string keys renders its keys as JSON strings.
//! - A handler's `apply` that fails must leave its own subsystem as it was: only handlers that
//!   applied successfully are rolled back.
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// Generated code names `::hotcfg::__private`; this makes that path work inside this crate too.
extern crate self as hotcfg;

mod async_handlers;
mod async_subscribers;
pub mod audit;
mod cached;
mod class;
#[cfg(feature = "cli")]
#[cfg_attr(docsrs, doc(cfg(feature = "cli")))]
pub mod cli;
mod diff;
mod engine;
#[cfg(feature = "etcd")]
#[cfg_attr(docsrs, doc(cfg(feature = "etcd")))]
pub mod etcd;
mod event;
mod handle;
mod handlers;
mod hot_reload;
#[cfg(feature = "schemars")]
mod json_schema;
mod load;
mod memory;
pub mod metrics;
mod nested_list;
mod nonfinite;
mod plan;
mod schema;
pub mod secret;
#[cfg(unix)]
mod signal;
mod source;
#[cfg(test)]
mod test_support;
mod validate;
pub mod watcher;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use async_handlers::{AsyncScopeHandler, BoxFuture, StepFuture};
pub use async_subscribers::AsyncReloadSubscriber;
pub use audit::{
    verify_audit_log, AuditChange, AuditFailure, AuditLog, AuditRecord, AuditRecovery, AuditSync,
    AuditTrigger, AuditVerifyError,
};
pub use cached::CachedReader;
pub use class::Class;
pub use diff::{Change, ChangeKind, Diff, FieldPath, REDACTED};
pub use engine::{
    AsyncHealthCheck, ConfirmError, Health, HealthCheck, ProbationRevert, ProbationStatus, Probe,
    Quarantined, RevertReason, DEFAULT_HEALTH_TIMEOUT,
};
pub use engine::{
    BuildError, Pipeline, Reloader, ReloaderBuilder, RevertError, DEFAULT_HISTORY_LEN,
};
pub use event::{
    ReloadError, ReloadEvent, ReloadResult, ReloadSubscriber, RemoteCause, RemoteChange,
    RevertTarget, Rollback, Trigger,
};
pub use handle::{Handle, Projection, ProjectionGuard, Snapshot};
pub use handlers::{ApplyContext, BoxError, ScopeHandler};
pub use hot_reload::{HotConfig, HotReload, WatchedFile};
#[cfg(feature = "schemars")]
#[cfg_attr(docsrs, doc(cfg(feature = "schemars")))]
pub use json_schema::json_schema;
pub use load::{
    ConfigError, Format, Loader, Problem, Stage, DEFAULT_MAX_DEPTH, DEFAULT_MAX_VALUES,
};
pub use memory::MemorySource;
pub use plan::{Decision, Plan, PlanOptions, PrepareVerdict, RestartPolicy, Verdict};
pub use schema::{redacted_json, AsConfig, FieldInfo};
pub use secret::Secret;
#[cfg(unix)]
pub use signal::{reload_on_sighup, reload_on_sighup_task, SignalGuard, SignalTask};
pub use source::{
    ChangeNote, FileSource, Layer, Source, SourceContent, SourceError, SourceErrorKind,
    SourceIdentity, DEFAULT_MAX_BYTES,
};
pub use validate::{Validate, Violation, Violations};
pub use watcher::{ConfigWatcher, WatchError, WatchMode, WatchOptions};

/// Derives [`HotReload`] for a struct with named fields. See the crate docs for the attributes.
#[cfg(feature = "derive")]
pub use hotcfg_derive::HotReload;
