//! The reloader's probation calls on a real `Reloader`, without and with probation. The
//! integration tests cover the scenarios; these pin each call's answer inside hotcfg's lib, so
//! the mutation script's quick stage checks them without the integration binary.

use std::time::Duration;

use super::*;
use crate::engine::probation::{Health, Probe};
use crate::test_support::{bounded, BOUND};
use crate::{Format, MemorySource};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, crate::HotReload)]
struct Cfg {
    #[reload(scope = "main")]
    value: u32,
}

fn source() -> MemorySource {
    MemorySource::new("app.toml", Format::Toml, "value = 1")
}

/// Sets the source to `value` and reloads: a new generation when the value changed.
fn commit(source: &MemorySource, reloader: &Reloader<Cfg>, value: u32) {
    source.set(format!("value = {value}"));
    reloader.reload_now();
}

#[test]
fn without_probation_every_call_answers_at_once_and_confirm_is_refused() {
    let reloader = Reloader::<Cfg>::builder(source()).build().unwrap();
    assert!(!reloader.has_probation());
    assert_eq!(reloader.probation_status(), ProbationStatus::Idle);
    assert_eq!(
        *reloader.probation_updates().borrow(),
        ProbationStatus::Idle
    );
    let long = Duration::from_secs(600);
    assert_eq!(reloader.wait_probation(long), ProbationStatus::Idle);
    assert_eq!(reloader.confirm(), Err(ConfirmError::NotEnabled));
    assert_eq!(
        reloader.confirm_generation(1),
        Err(ConfirmError::NotEnabled)
    );
    assert_eq!(reloader.quarantined(), []);
    assert!(!reloader.release_quarantine("0123"));
}

#[test]
fn commit_confirmed_confirms_the_generation_awaiting_it() {
    let source = source();
    let reloader = Reloader::<Cfg>::builder(source.clone())
        .confirm_within(Duration::from_secs(60))
        .build()
        .unwrap();
    assert!(reloader.has_probation());
    commit(&source, &reloader, 2);
    let status = reloader.probation_status();
    let on_probation = matches!(status, ProbationStatus::OnProbation { generation: 2, .. });
    assert!(on_probation, "{status:?}");
    assert_eq!(*reloader.probation_updates().borrow(), status);
    assert_eq!(reloader.confirm(), Ok(2));
    let passed = ProbationStatus::Passed {
        generation: 2,
        checks: 0,
    };
    assert_eq!(reloader.wait_probation(BOUND), passed);

    commit(&source, &reloader, 3);
    let (asked, pending) = (2, 3);
    let other = ConfirmError::OtherGeneration { asked, pending };
    assert_eq!(reloader.confirm_generation(2), Err(other));
    assert_eq!(reloader.confirm_generation(3), Ok(3));
}

#[test]
fn a_reverted_content_is_quarantined_until_released() {
    let source = source();
    let healthy_unless_zero = |probe: &Probe<Cfg>| match probe.new.value {
        0 => Health::unhealthy("no value"),
        _ => Health::Healthy,
    };
    let reloader = Reloader::<Cfg>::builder(source.clone())
        .probation(Duration::from_secs(60), healthy_unless_zero)
        .probation_interval(Duration::from_millis(5))
        .build()
        .unwrap();
    commit(&source, &reloader, 0);
    let status = reloader.wait_probation(BOUND);
    let reverted = matches!(status, ProbationStatus::Reverted { live: 3, .. });
    assert!(reverted, "{status:?}");
    let quarantined = reloader.quarantined();
    let [entry] = &quarantined[..] else {
        panic!("one content quarantined: {quarantined:?}");
    };
    assert_eq!(entry.generation, 2);
    assert!(reloader.release_quarantine(&entry.sha256));
    assert!(!reloader.release_quarantine(&entry.sha256), "released once");
    assert_eq!(reloader.quarantined(), []);
}

/// Dropping the engine shuts its probation down: the checker's wait ends (kills `Drop for
/// Inner` replaced by `()`, cargo-mutants, issue 22: the checker thread waited for ever).
#[test]
fn dropping_the_engine_ends_the_checkers_wait() {
    let reloader = Reloader::<Cfg>::builder(source())
        .confirm_within(Duration::from_secs(60))
        .build()
        .unwrap();
    let cell = Arc::clone(reloader.inner.probation.as_ref().expect("probation is on"));
    drop(reloader);
    let ended = bounded("the checker's wait", move || cell.next_due().is_none());
    assert!(ended, "something was due after the engine was dropped");
}
