//! The audit log: one JSON object per reload attempt, appended and flushed, hash-chained so that
//! editing or removing a line is detected by [`verify_audit_log`].
//!
//! The file is always a whole number of records. An append that fails (a full disk) is cut back
//! to the previous length; a torn or unparsable last line left by a crash is cut off when the log
//! is opened, and a `recovered` record naming the dropped bytes continues the chain.

mod log;
mod record;
mod tail;
mod trail;
mod verify;

pub use log::{AuditLog, AuditSync};
pub use record::{AuditChange, AuditRecord, AuditRecovery, AuditTrigger};
pub use trail::AuditFailure;
pub(crate) use trail::{AuditTrail, Unwritten};
pub use verify::{verify_audit_log, AuditVerifyError};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
