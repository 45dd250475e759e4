//! Unit tests of probation's vocabulary: the labels and messages operators read, and what the
//! builder's setup means (enabled, runtime needed, the interval between checks).

use super::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn unhealthy() -> RevertReason {
    RevertReason::Unhealthy("5xx".into())
}

/// The revert of generation 5 to generation 4's version.
fn revert() -> ProbationRevert {
    ProbationRevert {
        reverted: 5,
        restored: 4,
        reason: unhealthy(),
    }
}

#[test]
fn every_revert_reason_has_its_label_and_message() {
    let cases = [
        (unhealthy(), "unhealthy", "unhealthy: 5xx"),
        (
            RevertReason::CheckPanicked("boom".into()),
            "check_panicked",
            "the health check panicked: boom",
        ),
        (
            RevertReason::CheckTimedOut(ms(5)),
            "check_timeout",
            "the health check did not answer within 5ms",
        ),
        (
            RevertReason::Unconfirmed(Duration::from_secs(60)),
            "unconfirmed",
            "not confirmed within 60s",
        ),
    ];
    for (reason, label, message) in cases {
        assert_eq!(
            (reason.label(), reason.to_string().as_str()),
            (label, message)
        );
    }
}

#[test]
fn a_revert_says_what_it_restored_and_why() {
    let message = "revert of generation 5 to generation 4's version (unhealthy: 5xx)";
    assert_eq!(revert().to_string(), message);
}

#[test]
fn every_status_has_its_kind() {
    let on_probation = ProbationStatus::OnProbation {
        generation: 5,
        revert_to: 4,
        since: SystemTime::UNIX_EPOCH,
        window_ends: SystemTime::UNIX_EPOCH,
        confirm_by: None,
        confirmed: false,
        checks: 0,
    };
    let failed = ProbationStatus::RevertFailed {
        revert: revert(),
        live: 5,
        error: "vetoed".into(),
    };
    let kinds = [
        (ProbationStatus::Idle, "idle"),
        (on_probation, "on_probation"),
        (
            ProbationStatus::Passed {
                generation: 5,
                checks: 3,
            },
            "passed",
        ),
        (
            ProbationStatus::Reverted {
                revert: revert(),
                live: 6,
            },
            "reverted",
        ),
        (failed, "revert_failed"),
    ];
    for (status, kind) in kinds {
        assert_eq!(status.kind(), kind, "{status:?}");
    }
}

#[test]
fn a_refusal_names_the_short_content_key_the_generation_and_the_reason() {
    let quarantined = |sha256: &str| Quarantined {
        sha256: sha256.into(),
        generation: 5,
        reason: unhealthy(),
    };
    let refusal = quarantined("0123456789abcdef0123").refusal();
    let expected = "content sha256 0123456789ab is quarantined: generation 5 was reverted \
                    (unhealthy: 5xx); it is not applied again until the source changes";
    assert_eq!(refusal, expected);
    let short = quarantined("abc").refusal();
    assert!(
        short.starts_with("content sha256 abc is quarantined"),
        "{short}"
    );
}

struct AsyncHealthy;

impl AsyncHealthCheck<u32> for AsyncHealthy {
    fn check<'a>(&'a self, _: &'a Probe<u32>) -> BoxFuture<'a, Health> {
        Box::pin(async { Health::Healthy })
    }
}

#[test]
fn probation_is_enabled_by_a_check_or_commit_confirmed_and_an_async_check_needs_tokio() {
    let healthy = |_: &Probe<u32>| Health::Healthy;
    let sync = Some(Checker::Sync(Arc::new(healthy)));
    let asynchronous = Some(Checker::Async(Arc::new(AsyncHealthy)));
    let confirm_within = Some(Duration::from_secs(60));
    let setups: [(ProbationSetup<u32>, bool, bool); 4] = [
        (ProbationSetup::default(), false, false),
        (
            ProbationSetup {
                confirm_within,
                ..ProbationSetup::default()
            },
            true,
            false,
        ),
        (
            ProbationSetup {
                check: sync,
                ..ProbationSetup::default()
            },
            true,
            false,
        ),
        (
            ProbationSetup {
                check: asynchronous,
                ..ProbationSetup::default()
            },
            true,
            true,
        ),
    ];
    for (n, (setup, enabled, needs_runtime)) in setups.into_iter().enumerate() {
        let answers = (setup.enabled(), setup.needs_runtime());
        assert_eq!(answers, (enabled, needs_runtime), "setup {n}");
    }
}

#[test]
fn checks_come_a_tenth_of_the_window_apart_unless_set_never_under_a_millisecond() {
    let interval = |window: Duration, interval: Option<Duration>| {
        let setup = ProbationSetup::<u32> {
            window,
            interval,
            ..ProbationSetup::default()
        };
        setup.interval()
    };
    assert_eq!(interval(Duration::from_secs(1), None), ms(100));
    assert_eq!(interval(Duration::from_secs(1), Some(ms(250))), ms(250));
    assert_eq!(interval(ms(5), None), ms(1), "half a millisecond is raised");
    assert_eq!(interval(Duration::ZERO, None), ms(1));
    assert_eq!(
        interval(Duration::from_secs(1), Some(Duration::ZERO)),
        ms(1)
    );
}
