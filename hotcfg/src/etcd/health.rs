//! [`WatchHealth`]: what a follower's watch is doing, carried in every status report and in the
//! metrics, so a node that cannot follow its key says so instead of looking up to date.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Gauge: 1 while the follower's watch is established, else 0 (reconnecting, paused, starting).
pub const ETCD_WATCHING: &str = "hotcfg_etcd_watching";
/// Gauge: Unix time since which the watch has been in its current state.
pub const ETCD_WATCH_STATE_SINCE_SECONDS: &str = "hotcfg_etcd_watch_state_since_seconds";
/// Counter of failed connection or watch attempts.
pub const ETCD_WATCH_FAILURES_TOTAL: &str = "hotcfg_etcd_watch_failures_total";
/// Gauge: the newest revision of the key the follower has handed to the engine.
pub const ETCD_REVISION: &str = "hotcfg_etcd_revision";

/// The state of a follower's watch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WatchState {
    /// Not yet connected for the first time.
    Starting,
    /// Watching the key: the next change will be applied.
    Watching,
    /// The watch is down (etcd unreachable, or it refused or failed the watch) and the follower
    /// is retrying; changes made meanwhile are applied once it is back.
    Reconnecting,
    /// Held by [`EtcdFollower::pause`](super::EtcdFollower::pause): changes are not followed.
    Paused,
}

impl WatchState {
    /// `starting`, `watching`, `reconnecting` or `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchState::Starting => "starting",
            WatchState::Watching => "watching",
            WatchState::Reconnecting => "reconnecting",
            WatchState::Paused => "paused",
        }
    }
}

impl fmt::Display for WatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A follower's watch: its state, since when, and the error that keeps it down.
///
/// ```
/// use hotcfg::etcd::{WatchHealth, WatchState};
///
/// let json = r#"{"state":"reconnecting","since":1700000000,"last_error":"cannot reach etcd"}"#;
/// let health: WatchHealth = serde_json::from_str(json)?;
/// assert_eq!(health.state, WatchState::Reconnecting);
/// assert_eq!(health.to_string(), "reconnecting since 2023-11-14T22:13:20Z");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatchHealth {
    /// What the watch is doing.
    pub state: WatchState,
    /// Since when (seconds since the Unix epoch).
    pub since: u64,
    /// While not watching: the last error met (the reason it is down).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl WatchHealth {
    /// `state` from now on, with `last_error`.
    pub(crate) fn now(state: WatchState, last_error: Option<String>) -> Self {
        WatchHealth {
            state,
            since: unix_now(),
            last_error,
        }
    }

    /// Whether the watch is established.
    pub fn is_watching(&self) -> bool {
        self.state == WatchState::Watching
    }

    /// Publishes this state to the metrics.
    pub(crate) fn record(&self, failed: bool) {
        metrics::gauge!(ETCD_WATCHING).set(if self.is_watching() { 1.0 } else { 0.0 });
        metrics::gauge!(ETCD_WATCH_STATE_SINCE_SECONDS).set(self.since as f64);
        if failed {
            metrics::counter!(ETCD_WATCH_FAILURES_TOTAL).increment(1);
        }
    }
}

impl fmt::Display for WatchHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let since = UNIX_EPOCH + std::time::Duration::from_secs(self.since);
        write!(
            f,
            "{} since {}",
            self.state,
            humantime::format_rfc3339_seconds(since)
        )
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    /// The metrics (name, value) that `record` publishes, read from a recorder of its own.
    pub(in crate::etcd) fn recorded(record: impl FnOnce()) -> Vec<(String, DebugValue)> {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, record);
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .map(|(key, _, _, value)| (key.key().name().to_string(), value))
            .collect()
    }

    #[test]
    fn a_state_change_is_published_to_the_metrics() {
        let values = recorded(|| {
            WatchHealth::now(WatchState::Watching, None).record(false);
            WatchHealth {
                state: WatchState::Reconnecting,
                since: 42,
                last_error: Some("cannot reach etcd".into()),
            }
            .record(true);
        });
        let value = |name: &str| {
            values
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v)
                .unwrap_or_else(|| panic!("no {name} in {values:?}"))
        };
        assert_eq!(value(ETCD_WATCHING), &DebugValue::Gauge(0.0.into()));
        assert_eq!(
            value(ETCD_WATCH_STATE_SINCE_SECONDS),
            &DebugValue::Gauge(42.0.into())
        );
        assert_eq!(value(ETCD_WATCH_FAILURES_TOTAL), &DebugValue::Counter(1));
    }

    #[test]
    fn each_state_has_its_name_and_only_watching_is_watching() {
        let states = [
            (WatchState::Starting, "starting", false),
            (WatchState::Watching, "watching", true),
            (WatchState::Reconnecting, "reconnecting", false),
            (WatchState::Paused, "paused", false),
        ];
        for (state, name, watching) in states {
            assert_eq!(state.as_str(), name);
            assert_eq!(state.to_string(), name);
            // The name in a report is the same one.
            assert_eq!(serde_json::to_value(state).unwrap(), name);
            let health = WatchHealth {
                state,
                since: 0,
                last_error: None,
            };
            assert_eq!(health.is_watching(), watching, "{name}");
        }
    }

    #[test]
    fn a_health_reads_as_its_state_since_a_utc_time() {
        let health = WatchHealth {
            state: WatchState::Reconnecting,
            since: 1_700_000_000,
            last_error: Some("cannot reach etcd".into()),
        };
        assert_eq!(
            health.to_string(),
            "reconnecting since 2023-11-14T22:13:20Z"
        );
        let epoch = WatchHealth {
            state: WatchState::Starting,
            since: 0,
            last_error: None,
        };
        assert_eq!(epoch.to_string(), "starting since 1970-01-01T00:00:00Z");
    }

    #[test]
    fn a_new_health_is_dated_now() {
        let seconds = || {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
        };
        let before = seconds();
        let health = WatchHealth::now(WatchState::Paused, Some("held".into()));
        let after = seconds();
        assert!(
            (before..=after).contains(&health.since),
            "{health:?} not in {before}..={after}"
        );
        assert_eq!(health.state, WatchState::Paused);
        assert_eq!(health.last_error.as_deref(), Some("held"));
    }
}
