//! The audit log: one JSON object per reload attempt, appended and flushed, hash-chained so that
//! editing or removing a line is detected by [`verify_audit_log`].
//!
//! The file is always a whole number of records. An append that fails (a full disk) is cut back
//! to the previous length; a torn or unparsable last line left by a crash is cut off when the log
//! is opened, and a `recovered` record naming the dropped bytes continues the chain.
//!
//! Each line is an [`AuditRecord`] in JSON: the generation, the time, what started the attempt
//! ([`AuditTrigger`]: its kind, and the file or the remote change), the version read, the result
//! and changes (secrets redacted), and `prev`, the hex SHA-256 of the previous line's bytes
//! ([`GENESIS`] for the first line). [`AuditLog`], [`AuditSync`], [`AuditFailure`] and the record
//! types are also at the crate root.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("audit.jsonl");
//! drop(hotcfg::AuditLog::open(&path)?);
//! std::fs::write(&path, "{\"garbage\": true}\n")?; // not a record: cut off on the next open
//! hotcfg::AuditLog::open(&path)?;
//! let records = hotcfg::audit::verify_audit_log(&path)?;
//! assert_eq!(records[0].prev, hotcfg::audit::GENESIS);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod last_known_good;
mod log;
mod record;
mod snapshots;
mod tail;
mod trail;
mod verify;

pub use last_known_good::{last_known_good, KeptVersion, LastKnownGoodError};
pub use log::{AuditLog, AuditSync};
pub use record::{AuditChange, AuditRecord, AuditRecovery, AuditTrigger};
pub use snapshots::{
    read_records, snapshot_dir, Restorable, SnapshotError, Snapshots, DEFAULT_SNAPSHOTS_KEPT,
};
pub use trail::AuditFailure;
pub(crate) use trail::{AuditTrail, Unwritten};
pub use verify::{verify_audit_log, AuditVerifyError};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
