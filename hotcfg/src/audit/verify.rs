//! [`verify_audit_log`]: reads a log back and checks its hash chain.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::record::AuditRecord;
use super::GENESIS;
use crate::source::sha256_hex;

/// Why an audit log does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {problem}")]
pub struct AuditVerifyError {
    /// The log.
    pub path: String,
    /// 1-based line of the first bad record.
    pub line: usize,
    /// What is wrong.
    pub problem: String,
}

/// Reads an audit log and checks its hash chain; returns its records.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("audit.jsonl");
/// hotcfg::AuditLog::open(&path)?; // an empty log verifies
/// assert!(hotcfg::verify_audit_log(&path)?.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_audit_log(path: impl AsRef<Path>) -> Result<Vec<AuditRecord>, AuditVerifyError> {
    let path = path.as_ref();
    let fail = |line: usize, problem: String| AuditVerifyError {
        path: path.display().to_string(),
        line,
        problem,
    };
    let file = File::open(path).map_err(|e| fail(0, e.to_string()))?;
    let mut prev = GENESIS.to_string();
    let mut records = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let line = line.map_err(|e| fail(number, e.to_string()))?;
        let record: AuditRecord = serde_json::from_str(&line)
            .map_err(|e| fail(number, format!("not an audit record: {e}")))?;
        if record.prev != prev {
            return Err(fail(
                number,
                "hash chain broken: `prev` does not match the previous line (a line was edited, removed or inserted)".to_string(),
            ));
        }
        prev = sha256_hex(line.as_bytes());
        records.push(record);
    }
    Ok(records)
}
