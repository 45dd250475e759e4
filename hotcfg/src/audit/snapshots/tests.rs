//! Tests of [`super`]. Each names the mutants it kills (cargo-mutants, issue 22): before them
//! the snapshot store was tested only through the integration tests of `revert_to`.

use std::time::{Duration, SystemTime};

use super::*;
use crate::{Diff, ReloadEvent, ReloadResult, Trigger};

pub(in crate::audit) fn content(text: &str) -> SourceContent {
    SourceContent {
        layers: vec![
            Layer {
                name: "base.toml".to_string(),
                format: Format::Toml,
                text: format!("value = \"{text}\""),
            },
            Layer {
                name: "overlay.yaml".to_string(),
                format: Format::Yaml,
                text: "limit: 3".to_string(),
            },
            Layer {
                name: "local.json".to_string(),
                format: Format::Json,
                text: "{\"debug\": true}".to_string(),
            },
        ],
        identity: SourceIdentity::new("/etc/app/base.toml", text.as_bytes()),
    }
}

/// A record of `generation` with `result`, naming `snapshot`.
pub(in crate::audit) fn record(
    generation: u64,
    result: &str,
    snapshot: Option<&str>,
) -> AuditRecord {
    let event = ReloadEvent {
        generation,
        timestamp: SystemTime::UNIX_EPOCH,
        trigger: Trigger::Manual,
        source: None,
        changes: Diff::empty(),
        result: ReloadResult::Unchanged,
        duration: Duration::ZERO,
    };
    let mut record = AuditRecord::from_event(&event, String::new());
    record.result = result.to_string();
    record.snapshot = snapshot.map(str::to_string);
    record
}

pub(in crate::audit) fn write_log(path: &Path, records: &[AuditRecord]) {
    let lines: Vec<String> = records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

fn set_age(path: &Path, seconds_ago: u64) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(seconds_ago))
        .unwrap();
}

/// Kills `format_name` and `content_of` arms deleted or swapped, `stored` fields replaced, and
/// `read`'s hash check negated: what is written reads back the same, every format included.
#[test]
fn a_snapshot_reads_back_as_written_every_format_and_the_identity() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::beside(&dir.path().join("audit.jsonl"));
    let written = content("one");
    let id = snapshots.write(&written).unwrap();
    let bytes = std::fs::read(snapshots.path_of(&id)).unwrap();
    assert_eq!(id, sha256_hex(&bytes), "a snapshot is named by its hash");
    assert_eq!(snapshots.dir(), dir.path().join("audit.snapshots"));

    let read = snapshots.read(4, &id).unwrap();
    assert_eq!(read.layers, written.layers);
    assert_eq!(read.identity.path, "/etc/app/base.toml");
    assert_eq!(read.identity.sha256, written.identity.sha256);
    // The same content is stored once.
    assert_eq!(snapshots.write(&written).unwrap(), id);
    assert_eq!(std::fs::read_dir(snapshots.dir()).unwrap().count(), 1);
}

/// Kills `create_private_dir` and `write`'s mode: a snapshot holds secrets, so only the owner
/// may read it.
#[cfg(unix)]
#[test]
fn the_directory_and_the_snapshots_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::beside(&dir.path().join("audit.jsonl"));
    let id = snapshots.write(&content("one")).unwrap();
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(snapshots.dir()), 0o700);
    assert_eq!(mode(&snapshots.path_of(&id)), 0o600);
}

/// Kills the `NotFound` guard of `read` replaced (a missing file must say so), the hash check
/// deleted, and the unknown-format arm of `content_of` deleted.
#[test]
fn missing_altered_and_foreign_snapshots_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::beside(&dir.path().join("audit.jsonl"));
    let id = snapshots.write(&content("one")).unwrap();

    let missing = "0".repeat(64);
    let err = snapshots.read(2, &missing).unwrap_err();
    assert!(
        matches!(err, SnapshotError::Missing { generation: 2, .. }),
        "{err}"
    );

    let path = snapshots.path_of(&id);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
    let err = snapshots.read(3, &id).unwrap_err().to_string();
    assert!(
        err.contains("corrupt") && err.contains("not to its name"),
        "{err}"
    );

    let foreign = br#"{"source":{"path":"p","sha256":"s"},"layers":[{"name":"a.ini","format":"ini","text":""}]}"#;
    let foreign_id = sha256_hex(foreign);
    std::fs::write(snapshots.path_of(&foreign_id), foreign).unwrap();
    let err = snapshots.read(5, &foreign_id).unwrap_err().to_string();
    assert!(err.contains("layer a.ini: unknown format `ini`"), "{err}");

    let not_json = b"not a snapshot";
    let not_json_id = sha256_hex(not_json);
    std::fs::write(snapshots.path_of(&not_json_id), not_json).unwrap();
    let err = snapshots.read(6, &not_json_id).unwrap_err().to_string();
    assert!(err.contains("not a snapshot"), "{err}");

    // A directory where the file should be: unreadable, not missing.
    let odd = "f".repeat(64);
    std::fs::create_dir(snapshots.path_of(&odd)).unwrap();
    let err = snapshots.read(7, &odd).unwrap_err();
    assert!(
        matches!(err, SnapshotError::Unreadable { generation: 7, .. }),
        "{err}"
    );
}

/// Kills `prune` replaced by `Ok(())`, `+` into `-` or `*` in its excess count, `keep`'s
/// `max(1)` and the name filter: the oldest applied beyond the limit go, the live one and
/// files that are not snapshots stay.
#[test]
fn the_oldest_snapshots_beyond_the_limit_are_pruned_never_the_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::beside(&dir.path().join("audit.jsonl")).keep(2);
    let first = snapshots.write(&content("one")).unwrap();
    let second = snapshots.write(&content("two")).unwrap();
    set_age(&snapshots.path_of(&first), 200);
    set_age(&snapshots.path_of(&second), 100);
    std::fs::write(snapshots.dir().join("NOTES"), "kept by hand").unwrap();

    let third = snapshots.write(&content("three")).unwrap();
    assert!(!snapshots.path_of(&first).exists(), "the oldest is pruned");
    assert!(snapshots.path_of(&second).exists());
    assert!(snapshots.path_of(&third).exists());
    assert!(
        snapshots.dir().join("NOTES").exists(),
        "not a snapshot: left alone"
    );

    // Applying the oldest kept one again makes it the newest: the next prune takes the other.
    set_age(&snapshots.path_of(&third), 50);
    assert_eq!(snapshots.write(&content("two")).unwrap(), second);
    assert!(
        snapshots.path_of(&third).exists(),
        "two kept: nothing to prune yet"
    );
    let fourth = snapshots.write(&content("four")).unwrap();
    assert!(!snapshots.path_of(&third).exists());
    assert!(snapshots.path_of(&second).exists());

    // `keep(0)` still keeps the live one.
    let one = Snapshots::beside(&dir.path().join("audit.jsonl")).keep(0);
    let live = one.write(&content("five")).unwrap();
    assert!(one.path_of(&live).exists());
    assert!(!one.path_of(&second).exists() && !one.path_of(&fourth).exists());
}

/// Kills `find`'s and `newest_commit`'s mutants: the newest record that applied the generation,
/// preferring one that names a snapshot; a generation not applied, or applied without a
/// snapshot, is refused with its own error.
#[test]
fn find_takes_the_newest_commit_of_the_generation_that_names_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let snapshots = Snapshots::beside(&log);
    let old = snapshots.write(&content("old")).unwrap();
    let new = snapshots.write(&content("new")).unwrap();
    write_log(
        &log,
        &[
            record(1, "applied", Some(&old)),
            record(2, "applied", Some(&old)),
            record(3, "failed", Some(&new)),
            record(4, "applied", None),
            // Numbered again after a restart: generation 2 applied twice.
            record(2, "applied", Some(&new)),
            record(2, "applied", None),
        ],
    );

    let found = snapshots.find(&log, 2).unwrap();
    assert_eq!(found.generation, 2);
    assert_eq!(found.record.snapshot.as_deref(), Some(new.as_str()));
    assert_eq!(found.content, snapshots.read(2, &new).unwrap());
    assert_eq!(
        snapshots.find(&log, 1).unwrap().content.identity.sha256,
        content("old").identity.sha256
    );

    let err = snapshots.find(&log, 3).unwrap_err();
    assert!(
        matches!(err, SnapshotError::NotRecorded { generation: 3, .. }),
        "{err}"
    );
    let err = snapshots.find(&log, 4).unwrap_err();
    assert!(
        matches!(err, SnapshotError::NotKept { generation: 4, .. }),
        "{err}"
    );
}

/// Kills `restorable`'s and `marks`'s mutants (the filter on `applied`, the chosen record, the
/// `NotKept` arm): one entry per applied generation, saying whether it can be restored.
#[test]
fn restorable_says_for_each_applied_generation_whether_it_can_be_restored() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let snapshots = Snapshots::beside(&log);
    let kept = snapshots.write(&content("kept")).unwrap();
    let records = [
        record(1, "applied", Some(&kept)),
        record(2, "applied", None),
        record(3, "rejected", Some(&kept)),
        record(4, "applied", Some(&"a".repeat(64))),
    ];
    let restorable = snapshots.restorable(&log, &records);
    assert_eq!(restorable.keys().copied().collect::<Vec<_>>(), [1, 2, 4]);
    assert_eq!(restorable[&1].as_ref().unwrap(), &snapshots.path_of(&kept));
    assert!(matches!(
        restorable[&2],
        Err(SnapshotError::NotKept { generation: 2, .. })
    ));
    assert!(matches!(
        restorable[&4],
        Err(SnapshotError::Missing { generation: 4, .. })
    ));
    let marks = snapshots.marks(&log, &records);
    assert_eq!(
        marks.iter().map(Option::is_some).collect::<Vec<_>>(),
        [true, true, false, true]
    );
}

/// Kills `read_records`' mutants: blank lines are skipped, and a line that is not a record is
/// named by its number.
#[test]
fn read_records_skips_blank_lines_and_names_a_bad_one() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let line = serde_json::to_string(&record(1, "applied", None)).unwrap();
    std::fs::write(&log, format!("{line}\n\n{line}\n")).unwrap();
    assert_eq!(read_records(&log).unwrap().len(), 2);
    std::fs::write(&log, format!("{line}\n\nnot json\n")).unwrap();
    let err = read_records(&log).unwrap_err().to_string();
    assert!(err.contains("line 3: not an audit record"), "{err}");
    let err = read_records(&dir.path().join("none.jsonl")).unwrap_err();
    assert!(matches!(err, SnapshotError::Log { .. }), "{err}");
}

/// Kills the guard `existing == bytes` of `write` replaced by `true` (or `==` into `!=`): a
/// damaged snapshot of content applied again is written again, not merely touched.
#[test]
fn a_damaged_snapshot_is_written_again_when_its_content_is_applied_again() {
    let dir = tempfile::tempdir().unwrap();
    let snapshots = Snapshots::beside(&dir.path().join("audit.jsonl"));
    let id = snapshots.write(&content("one")).unwrap();
    std::fs::write(snapshots.path_of(&id), "damaged").unwrap();
    assert_eq!(snapshots.write(&content("one")).unwrap(), id);
    assert_eq!(snapshots.read(1, &id).unwrap(), content("one"));
}
