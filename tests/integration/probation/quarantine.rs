//! Quarantine rejections are recorded once, not at every repeat. Kills the `Rejected` arm of
//! `quarantine_refusal` deleted and its `==` into `!=` (cargo-mutants, issue 22): either recorded
//! every repeat.

use super::*;

#[test]
fn a_repeated_quarantine_rejection_is_recorded_once_after_something_else_was() {
    let (source, reloader) = bad_reverted();

    // Something else is recorded in between: content that does not parse.
    source.set("workers = ");
    let invalid = reloader.reload_now();
    assert!(!invalid.result.is_ok(), "{invalid}");
    let history = reloader.history().len();

    source.set(BAD);
    for attempt in 1..=3 {
        let again = reloader.reload_now();
        let ReloadResult::Rejected { reason, .. } = &again.result else {
            panic!("attempt {attempt}: quarantined content applied again: {again}");
        };
        assert!(reason.contains("is quarantined"), "{reason}");
        assert_eq!(
            reloader.history().len(),
            history + 1,
            "attempt {attempt}: recorded the first time only"
        );
    }
}
