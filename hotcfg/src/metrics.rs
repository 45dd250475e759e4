//! Prometheus-style metrics through the `metrics` facade. Install any recorder (for example
//! `metrics-exporter-prometheus`) to export them.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::event::Trigger;
use crate::ReloadEvent;

/// Counter of reload attempts, labelled `result` = applied|unchanged|rejected|failed.
pub const RELOADS_TOTAL: &str = "hotcfg_reloads_total";
/// Histogram of reload durations in seconds.
pub const RELOAD_DURATION_SECONDS: &str = "hotcfg_reload_duration_seconds";
/// Gauge: the live generation.
pub const CONFIG_GENERATION: &str = "hotcfg_config_generation";
/// Gauge: 1 when the last attempt succeeded (applied or unchanged), else 0.
pub const LAST_RELOAD_SUCCESS: &str = "hotcfg_last_reload_success";
/// Gauge: Unix time of the last successful attempt.
pub const LAST_SUCCESS_TIMESTAMP_SECONDS: &str = "hotcfg_last_success_timestamp_seconds";
/// Counter of audit records that could not be written (see [`AuditFailure`](crate::AuditFailure)).
pub const AUDIT_WRITE_FAILURES_TOTAL: &str = "hotcfg_audit_write_failures_total";
/// Counter of reverts that made an earlier version live, labelled `reason` (`requested`: by
/// [`Reloader::revert_to`](crate::Reloader::revert_to); `unhealthy`, `check_panicked`,
/// `check_timeout`, `unconfirmed`: by probation, see [`RevertReason`](crate::RevertReason)).
pub const REVERTS_TOTAL: &str = "hotcfg_reverts_total";
/// Gauge: restart-only fields whose new value waits for a restart.
pub const PENDING_RESTART_FIELDS: &str = "hotcfg_pending_restart_fields";

/// Counter of probation reverts that failed (the change stays live), labelled `reason` as
/// [`REVERTS_TOTAL`].
pub const REVERT_FAILURES_TOTAL: &str = "hotcfg_revert_failures_total";
/// Gauge: source contents quarantined (reverted, not applied again until they change).
pub const QUARANTINED_VERSIONS: &str = "hotcfg_quarantined_versions";

/// Gauge: 1 while the engine runs a version it started from because the source could not be
/// reached ([`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)), until
/// a read of the source answers; else 0.
pub const CONFIG_STALE: &str = "hotcfg_config_stale";

/// Sets whether the engine runs a stale version.
pub(crate) fn stale(stale: bool) {
    metrics::gauge!(CONFIG_STALE).set(if stale { 1.0 } else { 0.0 });
}

/// Counts one probation revert: done, or failed (the change stays live).
pub(crate) fn reverted(reason: &'static str, done: bool) {
    let name = if done {
        REVERTS_TOTAL
    } else {
        REVERT_FAILURES_TOTAL
    };
    metrics::counter!(name, "reason" => reason).increment(1);
}

/// Sets how many contents are quarantined.
pub(crate) fn quarantined(count: usize) {
    metrics::gauge!(QUARANTINED_VERSIONS).set(count as f64);
}

/// Counts one audit record that could not be written.
pub(crate) fn audit_write_failed() {
    metrics::counter!(AUDIT_WRITE_FAILURES_TOTAL).increment(1);
}

/// Records one attempt.
pub(crate) fn record(event: &ReloadEvent, pending_restart: usize) {
    let result = event.result.kind();
    metrics::counter!(RELOADS_TOTAL, "result" => result).increment(1);
    metrics::histogram!(RELOAD_DURATION_SECONDS).record(event.duration.as_secs_f64());
    metrics::gauge!(CONFIG_GENERATION).set(event.generation as f64);
    let ok = event.result.is_ok();
    metrics::gauge!(LAST_RELOAD_SUCCESS).set(if ok { 1.0 } else { 0.0 });
    if ok {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!(LAST_SUCCESS_TIMESTAMP_SECONDS).set(now);
    }
    metrics::gauge!(PENDING_RESTART_FIELDS).set(pending_restart as f64);
    if matches!(event.trigger, Trigger::Revert(_)) && event.result.kind() == "applied" {
        metrics::counter!(REVERTS_TOTAL, "reason" => "requested").increment(1);
    }
}
