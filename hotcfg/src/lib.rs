//! # hotcfg
//!
//! Change a running program's typed configuration safely: no restart, no dropped work, no
//! half-applied state, and a clear answer for every setting that cannot change live.
#![deny(missing_docs)]

// Generated code names `::hotcfg::__private`; this makes that path work inside this crate too.
extern crate self as hotcfg;

mod class;
mod diff;
mod hot_reload;
mod schema;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use class::{validate_scope_name, Class};
pub use diff::{Change, ChangeKind, Diff, FieldPath, REDACTED};
pub use hot_reload::{HotReload, WatchedFile};
pub use schema::FieldInfo;

/// Derives [`HotReload`] for a struct with named fields. See the crate docs for the attributes.
#[cfg(feature = "derive")]
pub use hotcfg_derive::HotReload;
