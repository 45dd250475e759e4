//! The audit log: one JSON object per reload attempt, appended and flushed, hash-chained so that
//! editing or removing a line is detected by [`verify_audit_log`].
//!
//! The file is always a whole number of records. An append that fails (a full disk) is cut back
//! to the previous length; a torn or unparsable last line left by a crash is cut off when the log
//! is opened, and a `recovered` record naming the dropped bytes continues the chain.

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
    /// On a `recovered` record: what [`AuditLog::open`] cut off the end of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered: Option<AuditRecovery>,
}

/// The torn tail an [`AuditLog::open`] cut off, as its `recovered` record names it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecovery {
    /// How many bytes were dropped.
    pub dropped_bytes: u64,
    /// SHA-256 of the dropped bytes, so a copy kept elsewhere can be matched.
    pub dropped_sha256: String,
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
            recovered: None,
        }
    }

    /// The record [`AuditLog::open`] appends after cutting off a torn tail: the generation of the
    /// last whole record, result `recovered`.
    fn recovery(generation: u64, recovered: AuditRecovery, prev: String) -> Self {
        AuditRecord {
            generation,
            time: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            trigger: "open".to_string(),
            source: None,
            result: "recovered".to_string(),
            changes: Vec::new(),
            pending_restart: Vec::new(),
            rollback: false,
            error: Some(format!(
                "torn tail repaired: {} byte(s) dropped (sha256 {})",
                recovered.dropped_bytes, recovered.dropped_sha256
            )),
            duration_ms: 0.0,
            prev,
            recovered: Some(recovered),
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
    /// Length of the file after the last whole record: a failed append is cut back to it.
    len: u64,
    /// A failed append could not be cut back: retried before the next one.
    cut_pending: bool,
    recovered: Option<AuditRecovery>,
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
    ///
    /// A last line that is torn (no newline: a crash or a full disk during a write) or not an
    /// audit record is cut off, and a `recovered` record naming how many bytes were dropped and
    /// their SHA-256 is appended ([`recovered`](AuditLog::recovered) tells the caller).
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("audit.jsonl");
    /// std::fs::write(&path, "{\"generation\":1,\"ti")?; // a crash in the middle of a record
    /// let log = hotcfg::AuditLog::open(&path)?;
    /// assert_eq!(log.recovered().unwrap().dropped_bytes, 19);
    /// let records = hotcfg::verify_audit_log(&path)?;
    /// assert_eq!(records[0].result, "recovered");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
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
        let tail = read_tail(&mut file)?;
        let mut log = AuditLog {
            path,
            file,
            prev: tail
                .last_whole
                .as_deref()
                .map_or_else(|| GENESIS.to_string(), sha256_hex),
            sync: AuditSync::default(),
            len: tail.whole_len,
            cut_pending: false,
            recovered: None,
        };
        if !tail.torn.is_empty() {
            log.repair(&tail)?;
        }
        Ok(log)
    }

    /// Cuts the torn tail off and appends the `recovered` record.
    fn repair(&mut self, tail: &Tail) -> std::io::Result<()> {
        let recovered = AuditRecovery {
            dropped_bytes: tail.torn.len() as u64,
            dropped_sha256: sha256_hex(&tail.torn),
        };
        tracing::warn!(
            path = %self.path.display(),
            dropped_bytes = recovered.dropped_bytes,
            dropped_sha256 = %recovered.dropped_sha256,
            "audit log ended in a torn record; cut back to the last whole record"
        );
        self.file.set_len(tail.whole_len)?;
        let generation = tail
            .last_whole
            .as_deref()
            .and_then(|line| serde_json::from_slice::<AuditRecord>(line).ok())
            .map_or(0, |record| record.generation);
        let record = AuditRecord::recovery(generation, recovered.clone(), self.prev.clone());
        self.write_record(&record)?;
        self.recovered = Some(recovered);
        Ok(())
    }

    /// What [`open`](AuditLog::open) cut off a torn end of the file, if anything.
    pub fn recovered(&self) -> Option<&AuditRecovery> {
        self.recovered.as_ref()
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
    ///
    /// A whole line or nothing: if the write or the sync fails, the file is cut back to its
    /// previous length and the chain continues from the previous record.
    pub fn append(&mut self, event: &ReloadEvent) -> std::io::Result<()> {
        let record = AuditRecord::from_event(event, self.prev.clone());
        self.write_record(&record)
    }

    fn write_record(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        let line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        let mut bytes = line.clone().into_bytes();
        bytes.push(b'\n');
        // A cut-back that failed last time is retried first, so that no record is ever glued
        // onto a fragment.
        if self.cut_pending {
            self.file.set_len(self.len)?;
            self.cut_pending = false;
        }
        let written = self.file.write_all(&bytes).and_then(|()| self.file.flush());
        let synced = written.and_then(|()| match self.sync {
            AuditSync::Data => self.file.sync_data(),
            AuditSync::Os => Ok(()),
        });
        if let Err(err) = synced {
            if let Err(cut) = self.file.set_len(self.len) {
                self.cut_pending = true;
                tracing::error!(path = %self.path.display(), %cut, "cannot cut a failed audit record back; retried at the next append");
            }
            return Err(err);
        }
        self.len += bytes.len() as u64;
        self.prev = sha256_hex(line.as_bytes());
        Ok(())
    }
}

/// The end of a log: its last whole record and whatever torn bytes follow it.
struct Tail {
    /// Length of the file up to and including the last whole record's newline.
    whole_len: u64,
    /// The last whole record's line (without its newline).
    last_whole: Option<Vec<u8>>,
    /// Bytes after it: a line without a newline, or a last line that is not a record.
    torn: Vec<u8>,
}

/// Reads the file's end, growing the window until it holds the last two lines.
fn read_tail(file: &mut File) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        if let Some(split) = split_tail(&tail, start == 0) {
            return Ok(Tail {
                whole_len: start + split.whole_len as u64,
                last_whole: split.last_whole.map(<[u8]>::to_vec),
                torn: tail[split.whole_len..].to_vec(),
            });
        }
        window *= 4;
    }
}

struct Split<'a> {
    whole_len: usize,
    last_whole: Option<&'a [u8]>,
}

/// Splits the end of a log (`at_start`: `tail` is the whole file) into whole records and a torn
/// tail; `None` when `tail` does not reach back far enough to tell.
fn split_tail(tail: &[u8], at_start: bool) -> Option<Split<'_>> {
    if tail.is_empty() {
        return at_start.then_some(Split {
            whole_len: 0,
            last_whole: None,
        });
    }
    let complete = tail.ends_with(b"\n");
    let body = if complete {
        &tail[..tail.len() - 1]
    } else {
        tail
    };
    // The last line starts after `last_start`; the line before it ends there.
    let last_start = match body.iter().rposition(|&b| b == b'\n') {
        Some(at) => at + 1,
        None if at_start => 0,
        None => return None,
    };
    let last = &body[last_start..];
    if complete && serde_json::from_slice::<AuditRecord>(last).is_ok() {
        return Some(Split {
            whole_len: tail.len(),
            last_whole: Some(last),
        });
    }
    if last_start == 0 {
        return Some(Split {
            whole_len: 0,
            last_whole: None,
        });
    }
    let before = &body[..last_start - 1];
    let previous = match before.iter().rposition(|&b| b == b'\n') {
        Some(at) => &before[at + 1..],
        None if at_start => before,
        None => return None,
    };
    Some(Split {
        whole_len: last_start,
        last_whole: Some(previous),
    })
}

/// What a failed audit write means for the reload whose record it was (see
/// [`ReloaderBuilder::audit_failure`](crate::ReloaderBuilder::audit_failure)).
///
/// ```
/// assert_eq!(hotcfg::AuditFailure::default(), hotcfg::AuditFailure::FailClosed);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditFailure {
    /// The reload is rolled back and reported as failed ("the audit log is not writable: ...");
    /// nothing is applied without its record. At startup, the engine does not start.
    #[default]
    FailClosed,
    /// The reload is applied, with a warning in its event, and
    /// `hotcfg_audit_write_failures_total` counts the lost record.
    Continue,
}

/// The engine's audit log with its failure choice: the record of an attempt that changes the
/// live state is written before the change ([`before_commit`](AuditTrail::before_commit)); the
/// record of any other attempt after it ([`after`](AuditTrail::after)). Every failed write is
/// logged and counted.
#[derive(Debug)]
pub(crate) struct AuditTrail {
    log: Option<AuditLog>,
    on_failure: AuditFailure,
}

/// Why a record that had to precede a commit was not written.
pub(crate) enum Unwritten {
    /// Under [`AuditFailure::Continue`]: commit, with this warning.
    Warn(String),
    /// Under [`AuditFailure::FailClosed`]: do not commit; this is the error.
    Refuse(std::io::Error),
}

impl AuditTrail {
    pub(crate) fn new(log: Option<AuditLog>, on_failure: AuditFailure) -> Self {
        AuditTrail { log, on_failure }
    }

    /// Writes the record of an attempt about to change the live state.
    pub(crate) fn before_commit(&mut self, event: &ReloadEvent) -> Result<(), Unwritten> {
        let Err(err) = self.write(event) else {
            return Ok(());
        };
        Err(match self.on_failure {
            AuditFailure::FailClosed => Unwritten::Refuse(err),
            AuditFailure::Continue => Unwritten::Warn(format!(
                "the audit record of this reload was not written: {err}"
            )),
        })
    }

    /// Writes the record of an attempt that changed nothing (its failure changes nothing either).
    pub(crate) fn after(&mut self, event: &ReloadEvent) {
        let _ = self.write(event);
    }

    fn write(&mut self, event: &ReloadEvent) -> std::io::Result<()> {
        let Some(log) = self.log.as_mut() else {
            return Ok(());
        };
        log.append(event).inspect_err(|err| {
            tracing::error!(path = %log.path().display(), %err, "cannot write the audit log");
            crate::metrics::audit_write_failed();
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Diff, Trigger};

    fn event(generation: u64) -> ReloadEvent {
        ReloadEvent {
            generation,
            timestamp: std::time::SystemTime::now(),
            trigger: Trigger::Manual,
            source: None,
            changes: Diff::empty(),
            result: ReloadResult::Applied {
                applied: Vec::new(),
                warnings: Vec::new(),
                pending_restart: Vec::new(),
            },
            duration: std::time::Duration::ZERO,
        }
    }

    /// A log of `records` whole records; returns its path and text.
    fn log_of(dir: &Path, records: u64) -> (PathBuf, String) {
        let path = dir.join("audit.jsonl");
        let mut log = AuditLog::open(&path).unwrap().sync(AuditSync::Os);
        for generation in 1..=records {
            log.append(&event(generation)).unwrap();
        }
        (path.clone(), std::fs::read_to_string(&path).unwrap())
    }

    fn reopen_and_append(path: &Path) -> Option<AuditRecovery> {
        let mut log = AuditLog::open(path).unwrap();
        let recovered = log.recovered().cloned();
        log.append(&event(9)).unwrap();
        recovered
    }

    #[test]
    fn a_record_cut_short_is_dropped_recorded_and_the_chain_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text) = log_of(dir.path(), 3);
        let cut = text.len() - 40;
        std::fs::write(&path, &text[..cut]).unwrap();
        let dropped = &text[text[..cut].rfind('\n').unwrap() + 1..cut];

        let recovered = reopen_and_append(&path).expect("the torn tail is reported");
        assert_eq!(recovered.dropped_bytes, dropped.len() as u64);
        assert_eq!(recovered.dropped_sha256, sha256_hex(dropped.as_bytes()));
        let records = verify_audit_log(&path).unwrap();
        let results: Vec<(u64, &str)> = records
            .iter()
            .map(|r| (r.generation, r.result.as_str()))
            .collect();
        assert_eq!(
            results,
            [
                (1, "applied"),
                (2, "applied"),
                (2, "recovered"),
                (9, "applied")
            ]
        );
        assert_eq!(records[2].recovered.as_ref(), Some(&recovered));
    }

    #[test]
    fn a_last_line_that_is_not_a_record_is_dropped_even_with_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text) = log_of(dir.path(), 2);
        std::fs::write(&path, format!("{text}{{\"garbage\": true}}\n")).unwrap();
        let recovered = reopen_and_append(&path).unwrap();
        assert_eq!(recovered.dropped_bytes, 18);
        assert_eq!(verify_audit_log(&path).unwrap().len(), 4);
    }

    #[test]
    fn a_log_that_is_only_a_fragment_restarts_the_chain_from_genesis() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(&path, "{\"generation\":1,\"ti").unwrap();
        assert_eq!(reopen_and_append(&path).unwrap().dropped_bytes, 19);
        let records = verify_audit_log(&path).unwrap();
        assert_eq!(records[0].prev, GENESIS);
        assert_eq!(records[0].generation, 0);
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn whole_logs_and_long_last_records_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = log_of(dir.path(), 2);
        assert_eq!(reopen_and_append(&path), None);
        // A last record longer than the first read window (4 KiB).
        let mut long = event(3);
        long.result = ReloadResult::Rejected {
            reason: "x".repeat(20_000),
            refused: Vec::new(),
        };
        AuditLog::open(&path).unwrap().append(&long).unwrap();
        assert_eq!(reopen_and_append(&path), None);
        assert_eq!(verify_audit_log(&path).unwrap().len(), 5);
    }

    #[test]
    fn a_failed_append_that_could_not_be_cut_back_is_cut_before_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = log_of(dir.path(), 1);
        let mut log = AuditLog::open(&path).unwrap();
        // What a write that failed half-way and could not be cut back leaves behind.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"generation\":2,\"ti")
            .unwrap();
        log.cut_pending = true;
        log.append(&event(3)).unwrap();
        assert_eq!(verify_audit_log(&path).unwrap().len(), 2);
    }
}
