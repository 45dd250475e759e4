//! [`AuditLog`]: appends whole records, synced as [`AuditSync`] says, and repairs a torn end on
//! open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{AuditRecord, AuditRecovery};
use super::tail::{read_tail, Tail};
use super::GENESIS;
use crate::source::sha256_hex;
use crate::ReloadEvent;

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
        self.append_naming(event, None)
    }

    /// [`append`](AuditLog::append), the record naming the snapshot of the content applied.
    pub(crate) fn append_naming(
        &mut self,
        event: &ReloadEvent,
        snapshot: Option<String>,
    ) -> std::io::Result<()> {
        let mut record = AuditRecord::from_event(event, self.prev.clone());
        record.snapshot = snapshot;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::verify_audit_log;
    use crate::{Diff, ReloadResult, Trigger};

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

    /// Kills the `None if at_start` guard of `split_tail` replaced by `false` (audit/tail.rs):
    /// with one whole record before the torn one, the whole file is in the window and that
    /// record is the last whole one (the mutant grows the window until it overflows).
    #[test]
    fn one_whole_record_then_a_torn_one_continues_the_chain_from_the_whole_one() {
        let dir = tempfile::tempdir().unwrap();
        let (path, text) = log_of(dir.path(), 1);
        std::fs::write(&path, format!("{text}{{\"generation\":2,\"ti")).unwrap();
        assert_eq!(reopen_and_append(&path).unwrap().dropped_bytes, 19);
        let generations: Vec<u64> = verify_audit_log(&path)
            .unwrap()
            .iter()
            .map(|record| record.generation)
            .collect();
        assert_eq!(generations, [1, 1, 9]);
    }

    /// Kills the same guard replaced by `true`: when the record before a torn line is longer
    /// than the first read window (4 KiB), the window must grow to hold all of it; a partial
    /// line taken for the last whole record breaks the chain at the next append.
    #[test]
    fn a_torn_line_after_a_record_longer_than_the_read_window_keeps_the_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = log_of(dir.path(), 1);
        let mut long = event(2);
        long.result = ReloadResult::Rejected {
            reason: "x".repeat(20_000),
            refused: Vec::new(),
        };
        AuditLog::open(&path).unwrap().append(&long).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{{\"generation\":3,\"ti")).unwrap();
        assert_eq!(reopen_and_append(&path).unwrap().dropped_bytes, 19);
        let generations: Vec<u64> = verify_audit_log(&path)
            .expect("the chain continues from the long record")
            .iter()
            .map(|record| record.generation)
            .collect();
        assert_eq!(generations, [1, 2, 2, 9]);
    }

    /// Kills `len +=` into `*=` (or `-=`) in `write_record` (issue 22): the length a failed
    /// append is cut back to must count every record appended since the log was opened, not
    /// only what `open` found.
    #[test]
    fn a_failed_append_after_several_appends_is_cut_back_to_the_last_whole_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut log = AuditLog::open(&path).unwrap().sync(AuditSync::Os);
        // Kills `sync_mode` returning the default (only a doc test read it).
        assert_eq!(log.sync_mode(), AuditSync::Os);
        for generation in 1..=3 {
            log.append(&event(generation)).unwrap();
        }
        let whole = std::fs::read(&path).unwrap();
        // What a write that failed half-way and could not be cut back leaves behind.
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{\"generation\":4,\"ti")
            .unwrap();
        log.cut_pending = true;
        log.append(&event(5)).unwrap();

        let text = std::fs::read(&path).unwrap();
        assert_eq!(
            &text[..whole.len()],
            whole,
            "the three whole records are kept"
        );
        let generations: Vec<u64> = verify_audit_log(&path)
            .unwrap()
            .iter()
            .map(|record| record.generation)
            .collect();
        assert_eq!(generations, [1, 2, 3, 5]);
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
