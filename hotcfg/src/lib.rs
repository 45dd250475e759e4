//! # hotcfg
//!
//! Change a running program's typed configuration safely: no restart, no dropped work, no
//! half-applied state, and a clear answer for every setting that cannot change live.
#![deny(missing_docs)]

// Generated code names `::hotcfg::__private`; this makes that path work inside this crate too.
extern crate self as hotcfg;

mod audit;
mod class;
#[cfg(feature = "cli")]
pub mod cli;
mod diff;
mod event;
mod handle;
mod handlers;
mod hot_reload;
mod load;
pub mod metrics;
mod plan;
mod reloader;
mod schema;
mod source;
mod validate;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use audit::{verify_audit_log, AuditChange, AuditLog, AuditRecord, AuditVerifyError, GENESIS};
pub use class::{validate_scope_name, Class};
pub use diff::{Change, ChangeKind, Diff, FieldPath, REDACTED};
pub use event::{ReloadError, ReloadEvent, ReloadResult, ReloadSubscriber, Trigger};
pub use handle::{Handle, Projection, Snapshot};
pub use handlers::{ApplyContext, BoxError, ScopeHandler};
pub use hot_reload::{HotReload, WatchedFile};
pub use load::{locate_key, ConfigError, Format, Loader, Problem, Stage};
pub use plan::{Decision, Plan, RestartPolicy};
pub use reloader::{BuildError, Reloader, ReloaderBuilder, DEFAULT_HISTORY_LEN};
pub use schema::{redacted_json, FieldInfo};
pub use source::{
    sha256_hex, FileSource, Layer, Source, SourceContent, SourceError, SourceIdentity,
    DEFAULT_MAX_BYTES,
};
pub use validate::{Validate, Violation, Violations};

/// Derives [`HotReload`] for a struct with named fields. See the crate docs for the attributes.
#[cfg(feature = "derive")]
pub use hotcfg_derive::HotReload;
