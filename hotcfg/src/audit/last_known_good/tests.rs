//! Tests of [`super`]. Each names the mutants it kills (cargo-mutants, issue 22): before them the
//! search was tested only through the fleet tests, which need etcd and take minutes a mutant.

use super::super::record::AuditTrigger;
use super::super::snapshots::tests::{content, record, write_log};
use super::*;
use crate::source::{SourceError, SourceErrorKind};

/// The source name [`content`] gives its identity.
const NAME: &str = "/etc/app/base.toml";

/// A source that is only a name (and may refuse one layer): the search never reads it.
#[derive(Debug)]
struct Named {
    name: &'static str,
    refused_layer: Option<&'static str>,
}

impl Source for Named {
    fn read(&self) -> Result<SourceContent, SourceError> {
        Err(SourceError::new(
            self.name,
            SourceErrorKind::Unavailable,
            "not read in these tests",
        ))
    }

    fn name(&self) -> String {
        self.name.to_string()
    }

    fn reads_layer(&self, layer: &str) -> bool {
        self.refused_layer != Some(layer)
    }
}

const APP: Named = Named {
    name: NAME,
    refused_layer: None,
};

/// A record of `generation` with `result` for the content `text` of the source `name`.
fn of(
    name: &str,
    generation: u64,
    result: &str,
    text: &str,
    snapshot: Option<&str>,
) -> AuditRecord {
    let mut record = record(generation, result, snapshot);
    let mut identity = content(text).identity;
    identity.path = name.to_string();
    record.source = Some(identity);
    record
}

/// Probation's record: it reverted `reverted` and applied `text` again, naming no snapshot.
fn probation(generation: u64, reverted: u64, text: &str) -> AuditRecord {
    let mut record = of(NAME, generation, "applied", text, None);
    record.trigger = AuditTrigger {
        kind: "probation".to_string(),
        reverted: Some(reverted),
        reason: Some("unhealthy: test".to_string()),
        ..AuditTrigger::default()
    };
    record
}

struct Kept {
    _dir: tempfile::TempDir,
    log: PathBuf,
    snapshots: Snapshots,
}

/// A log of `records` beside the snapshots of `texts`; `records` gets their ids, in order.
fn kept(texts: &[&str], records: impl FnOnce(&[String]) -> Vec<AuditRecord>) -> Kept {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let snapshots = Snapshots::beside(&log);
    let ids: Vec<String> = texts
        .iter()
        .map(|text| snapshots.write(&content(text)).unwrap())
        .collect();
    write_log(&log, &records(&ids));
    Kept {
        _dir: dir,
        log,
        snapshots,
    }
}

/// X applied, Y applied then reverted by probation (which put X back), a failed attempt at Z
/// between them, Y applied again later (it is still the content probation reverted), and a
/// failed attempt at W last. Kills: `&&` into `||` and `==` into `!=` in the `applied` filter;
/// `delete !` before `reverted.contains`; `==` into `!=` in the snapshot search by content;
/// `delete !` before `reads_layer`; `sha256_of` replaced by `""` or `"xyzzy"`;
/// `reverted_by_probation` replaced by an empty set or one of `""` or `"xyzzy"`; and in it, `==`
/// into `!=` on the kind, the generation and the result, `&&` into `||`.
fn history() -> Kept {
    kept(&["X", "Y"], |ids| {
        vec![
            of(NAME, 1, "applied", "X", Some(&ids[0])),
            of(NAME, 2, "applied", "Y", Some(&ids[1])),
            of(NAME, 2, "failed", "Z", None),
            probation(3, 2, "X"),
            of(NAME, 4, "applied", "Y", Some(&ids[1])),
            of(NAME, 4, "failed", "W", None),
        ]
    })
}

#[test]
fn the_newest_applied_version_probation_did_not_revert_is_found_with_its_first_snapshot() {
    let kept = history();
    let found = last_known_good(&kept.log, &kept.snapshots, &APP).unwrap();
    assert_eq!(
        found.record.generation, 3,
        "probation's record of X is newest"
    );
    assert_eq!(found.record.trigger.kind, "probation");
    let x = content("X");
    assert_eq!(found.content.layers, x.layers);
    assert_eq!(found.content.identity.sha256, x.identity.sha256);
    let first = kept.snapshots.write(&x).unwrap();
    assert_eq!(found.snapshot, kept.snapshots.path_of(&first));
}

/// Kills `delete !` before `source.reads_layer`, the other way round from the test above.
#[test]
fn a_version_with_a_layer_the_source_does_not_read_is_refused_naming_it() {
    let kept = history();
    let source = Named {
        name: NAME,
        refused_layer: Some("overlay.yaml"),
    };
    let error = last_known_good(&kept.log, &kept.snapshots, &source).unwrap_err();
    match &error {
        LastKnownGoodError::OtherLayers {
            generation, layer, ..
        } => assert_eq!((*generation, layer.as_str()), (3, "overlay.yaml")),
        other => panic!("expected OtherLayers, got {other:?}"),
    }
    assert!(
        error
            .to_string()
            .ends_with("has the layer overlay.yaml, which this source does not read"),
        "{error}"
    );
}

/// Kills `others_note` replaced by `""` (the other sources unnamed), `delete !` before
/// `of_source` in the others' filter (this source's failed record is not another source), and
/// `==` into `!=` in `of_source`.
#[test]
fn without_an_applied_version_of_this_source_the_error_names_the_sources_the_log_has() {
    let kept = kept(&[], |_| {
        vec![
            of("/etc/other.toml", 1, "applied", "O", None),
            of(NAME, 2, "failed", "X", None),
            of("etcd:/fleet/app", 3, "applied", "E", None),
        ]
    });
    let error = last_known_good(&kept.log, &kept.snapshots, &APP).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} records no applied version of {NAME} (it records versions of \
             /etc/other.toml, etcd:/fleet/app only)",
            kept.log.display()
        )
    );
}

/// Kills `others_note` replaced by `"xyzzy"`: with no other source the message ends at the name.
#[test]
fn without_any_applied_version_the_error_names_only_the_log_and_the_source() {
    let kept = kept(&[], |_| vec![of(NAME, 1, "failed", "X", None)]);
    let error = last_known_good(&kept.log, &kept.snapshots, &APP).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{} records no applied version of {NAME}",
            kept.log.display()
        )
    );
}

#[test]
fn a_newest_version_whose_record_names_no_snapshot_is_an_error_not_an_older_version() {
    let kept = kept(&["X"], |ids| {
        vec![
            of(NAME, 1, "applied", "X", Some(&ids[0])),
            of(NAME, 2, "applied", "Y", None),
        ]
    });
    let error = last_known_good(&kept.log, &kept.snapshots, &APP).unwrap_err();
    match &error {
        LastKnownGoodError::Snapshot { error, .. } => assert!(
            matches!(**error, SnapshotError::NotKept { generation: 2, .. }),
            "{error:?}"
        ),
        other => panic!("expected a snapshot error, got {other:?}"),
    }
}
