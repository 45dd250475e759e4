//! `history`: the records of an audit log, optionally with its hash chain verified.

use std::io::Write;
use std::path::PathBuf;

use super::{EXIT_INVALID, EXIT_OK};
use crate::audit::{verify_audit_log, AuditRecord, SnapshotError, Snapshots};

pub(super) fn history(path: &PathBuf, verify: bool, out: &mut dyn Write) -> std::io::Result<u8> {
    let records = if verify {
        match verify_audit_log(path) {
            Ok(records) => records,
            Err(err) => {
                writeln!(out, "audit log does not verify: {err}")?;
                return Ok(EXIT_INVALID);
            }
        }
    } else {
        match read_records(path) {
            Ok(records) => records,
            Err(err) => {
                writeln!(out, "{err}")?;
                return Ok(EXIT_INVALID);
            }
        }
    };
    let marks = Snapshots::beside(path).marks(path, &records);
    for (record, mark) in records.iter().zip(marks) {
        write_record(record, out)?;
        write_mark(record.generation, mark, out)?;
    }
    if verify {
        let repairs = records.iter().filter(|r| r.recovered.is_some()).count();
        write!(out, "hash chain verified: {} record(s)", records.len())?;
        if repairs > 0 {
            write!(out, "; {repairs} torn tail(s) repaired on open")?;
        }
        writeln!(out)?;
    }
    Ok(EXIT_OK)
}

fn read_records(path: &PathBuf) -> Result<Vec<AuditRecord>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: not an audit record: {e}", path.display(), i + 1))
        })
        .collect()
}

fn write_record(record: &AuditRecord, out: &mut dyn Write) -> std::io::Result<()> {
    write!(
        out,
        "{}  #{:<4} {:8} {:9}",
        record.time, record.generation, record.trigger.kind, record.result
    )?;
    if let Some(source) = &record.source {
        write!(
            out,
            " sha256 {}",
            &source.sha256[..12.min(source.sha256.len())]
        )?;
    }
    writeln!(out, " ({:.1} ms)", record.duration_ms)?;
    let trigger = record.trigger.to_string();
    if trigger != record.trigger.kind {
        writeln!(out, "    trigger: {trigger}")?;
    }
    if let Some(change) = record.source.as_ref().and_then(|s| s.change.as_ref()) {
        writeln!(out, "    by {change}")?;
    }
    for change in &record.changes {
        let old = change.old.as_deref().unwrap_or("-");
        let new = change.new.as_deref().unwrap_or("-");
        writeln!(
            out,
            "    {} [{}] {}: {old} -> {new}",
            change.path, change.class, change.kind
        )?;
    }
    if !record.pending_restart.is_empty() {
        writeln!(
            out,
            "    pending restart: {}",
            record.pending_restart.join(", ")
        )?;
    }
    if let Some(error) = &record.error {
        writeln!(out, "    {}", error.replace('\n', "\n    "))?;
    }
    Ok(())
}

/// Whether `rollback --to GEN` can restore the version a record applied: said on the record
/// `rollback` would take (the newest of its generation); nothing for versions recorded without
/// a snapshot.
fn write_mark(
    generation: u64,
    mark: Option<Result<PathBuf, SnapshotError>>,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match mark {
        Some(Ok(_)) => writeln!(out, "    restorable: rollback --to {generation}"),
        Some(Err(SnapshotError::NotKept { .. })) | None => Ok(()),
        Some(Err(err)) => writeln!(out, "    not restorable: {err}"),
    }
}
