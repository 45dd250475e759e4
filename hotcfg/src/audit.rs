//! The audit log: one JSON object per reload attempt, appended and flushed, hash-chained so that
//! editing or removing a line is detected by [`verify_audit_log`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::event::Rollback;
use crate::source::sha256_hex;
use crate::{ReloadEvent, ReloadResult, SourceIdentity};

/// `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One line of the audit log.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// Live generation after the attempt.
    pub generation: u64,
    /// RFC 3339 UTC time of the attempt.
    pub time: String,
    /// `startup`, `file`, `signal`, `manual` or `remote`.
    pub trigger: String,
    /// The version read, if it could be read.
    pub source: Option<SourceIdentity>,
    /// `applied`, `rejected`, `failed` or `unchanged`.
    pub result: String,
    /// Every difference between the live configuration and the candidate (secrets redacted).
    pub changes: Vec<AuditChange>,
    /// Paths of restart-only changes deferred.
    pub pending_restart: Vec<String>,
    /// Whether handlers had applied and were rolled back (an incomplete rollback also says so in
    /// `error`).
    pub rollback: bool,
    /// The error or rejection reason.
    pub error: Option<String>,
    /// Duration of the attempt in milliseconds.
    pub duration_ms: f64,
    /// SHA-256 of the previous line ([`GENESIS`] for the first).
    pub prev: String,
}

/// A change as written to the audit log.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditChange {
    /// Dotted path.
    pub path: String,
    /// Scope name or `restart`.
    pub class: String,
    /// `added`, `removed` or `modified`.
    pub kind: String,
    /// Old value rendered (`<redacted>` for secrets).
    pub old: Option<String>,
    /// New value rendered (`<redacted>` for secrets).
    pub new: Option<String>,
}

impl AuditRecord {
    /// The record of `event`, chained to the line whose hash is `prev`.
    pub fn from_event(event: &ReloadEvent, prev: String) -> Self {
        let (rollback, error) = match &event.result {
            ReloadResult::Failed { error, rollback } => {
                let error = match rollback {
                    Rollback::Incomplete { .. } => format!("{error}; {rollback}"),
                    _ => error.to_string(),
                };
                (rollback.was_attempted(), Some(error))
            }
            ReloadResult::Rejected { reason, .. } => (false, Some(reason.clone())),
            _ => (false, None),
        };
        AuditRecord {
            generation: event.generation,
            time: humantime::format_rfc3339_millis(event.timestamp).to_string(),
            trigger: event.trigger.kind().to_string(),
            source: event.source.clone(),
            result: event.result.kind().to_string(),
            changes: event
                .changes
                .iter()
                .map(|c| AuditChange {
                    path: c.path.clone(),
                    class: c.class.to_string(),
                    kind: c.kind.to_string(),
                    old: c.old.clone(),
                    new: c.new.clone(),
                })
                .collect(),
            pending_restart: event
                .result
                .pending_restart()
                .iter()
                .map(|c| c.path.clone())
                .collect(),
            rollback,
            error,
            duration_ms: event.duration.as_secs_f64() * 1000.0,
            prev,
        }
    }
}

/// An append-only, hash-chained JSON Lines audit log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: File,
    prev: String,
    sync: AuditSync,
}

/// How far each audit record is pushed before the reload that wrote it returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AuditSync {
    /// `fdatasync` after every record: an acknowledged reload's record survives a machine crash.
    /// Costs one disk flush per reload (0.15 to 3 ms on the virtual disk of `BENCHMARKS.md`).
    #[default]
    Data,
    /// Written to the operating system only: survives a crash of the process, not of the machine.
    Os,
}

impl AuditLog {
    /// Opens (or creates, with mode 0600 on Unix) the log at `path` for appending, continuing the
    /// chain from its last line.
    pub fn open(path: impl Into<PathBuf>) -> std::io::Result<AuditLog> {
        let path = path.into();
        let mut options = OpenOptions::new();
        options.append(true).create(true).read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path)?;
        let prev = match last_line(&mut file)? {
            Some(line) => sha256_hex(line.as_bytes()),
            None => GENESIS.to_string(),
        };
        Ok(AuditLog {
            path,
            file,
            prev,
            sync: AuditSync::default(),
        })
    }

    /// Chooses how far each record is pushed (default [`AuditSync::Data`]).
    ///
    /// ```
    /// use hotcfg::{AuditLog, AuditSync};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let log = AuditLog::open(dir.path().join("audit.jsonl"))?.sync(AuditSync::Os);
    /// assert_eq!(log.sync_mode(), AuditSync::Os);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn sync(mut self, sync: AuditSync) -> Self {
        self.sync = sync;
        self
    }

    /// How far each record is pushed.
    pub fn sync_mode(&self) -> AuditSync {
        self.sync
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends the record of `event`, written in one call, then synced as [`AuditSync`] says.
    pub fn append(&mut self, event: &ReloadEvent) -> std::io::Result<()> {
        let record = AuditRecord::from_event(event, self.prev.clone());
        let line = serde_json::to_string(&record).map_err(std::io::Error::other)?;
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        self.file.write_all(&bytes)?;
        self.file.flush()?;
        if self.sync == AuditSync::Data {
            self.file.sync_data()?;
        }
        self.prev = sha256_hex(line.as_bytes());
        Ok(())
    }
}

/// The last non-empty line of a file, read from its end.
fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        let text = String::from_utf8_lossy(&tail);
        let trimmed = text.trim_end_matches('\n');
        match trimmed.rfind('\n') {
            Some(at) => return Ok(Some(trimmed[at + 1..].to_string())),
            None if start == 0 => {
                return Ok((!trimmed.is_empty()).then(|| trimmed.to_string()));
            }
            None => window *= 4,
        }
    }
}

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
