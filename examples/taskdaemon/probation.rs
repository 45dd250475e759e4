//! Probation in the daemon: every committed change is watched for a window, judged by a real
//! signal (loop iterations that failed under the new generation, per second), and reverted
//! automatically when they fail; with `--confirm-within`, a change also reverts unless an
//! operator confirms it (`POST /api/confirm`).
//!
//! A loop iteration fails when its output line is broken: the template names a placeholder the
//! daemon does not fill (`{iterations}` for `{iteration}`). Validation cannot see that (a
//! template is free text), so such a change commits, and probation is what catches it.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use hotcfg::{Health, HealthCheck, ProbationStatus, Probe, Reloader, ReloaderBuilder};
use serde_json::{json, Value};

use crate::config::TaskDaemonConfig;

/// The probation options on the command line.
#[derive(Clone, Debug, clap::Args)]
pub struct ProbationArgs {
    /// Seconds each committed change is on probation (0: no probation).
    #[arg(long = "probation-secs", value_name = "SECS", default_value_t = 10)]
    pub window_secs: u64,
    /// Loop iteration failures per second under a new change that revert it.
    #[arg(
        long = "max-loop-failures-per-sec",
        value_name = "N",
        default_value_t = 1.0
    )]
    pub max_failures_per_sec: f64,
    /// Commit-confirmed: a change reverts unless `POST /api/confirm` comes within SECS.
    #[arg(long = "confirm-within", value_name = "SECS")]
    pub confirm_within_secs: Option<u64>,
}

impl ProbationArgs {
    /// The demo's: a short window, so its steps need not wait long.
    pub fn demo() -> Self {
        ProbationArgs {
            window_secs: 2,
            max_failures_per_sec: 1.0,
            confirm_within_secs: None,
        }
    }
}

/// Sets probation up on the daemon's engine.
pub fn setup(
    builder: ReloaderBuilder<TaskDaemonConfig>,
    args: &ProbationArgs,
) -> ReloaderBuilder<TaskDaemonConfig> {
    let mut builder = builder;
    if args.window_secs > 0 {
        let window = Duration::from_secs(args.window_secs);
        let check = LoopFailures {
            max_per_second: args.max_failures_per_sec,
        };
        builder = builder
            .probation(window, check)
            .probation_interval(Duration::from_millis(250));
    }
    if let Some(secs) = args.confirm_within_secs {
        builder = builder.confirm_within(Duration::from_secs(secs));
    }
    builder
}

/// Loop iterations by the configuration generation they ran under: (generation, failed).
pub static LOOPS: LoopOutcomes = LoopOutcomes::new();

/// Generations remembered (the oldest is forgotten first).
const GENERATIONS_KEPT: usize = 16;

/// Failed loop iterations counted per configuration generation.
pub struct LoopOutcomes {
    failed: Mutex<VecDeque<(u64, u64)>>,
}

impl LoopOutcomes {
    const fn new() -> Self {
        LoopOutcomes {
            failed: Mutex::new(VecDeque::new()),
        }
    }

    /// Notes one iteration run under `generation` that wrote `line`; `true` if it failed.
    pub fn iteration(&self, generation: u64, line: &str) -> bool {
        let Some(placeholder) = unfilled_placeholder(line) else {
            return false;
        };
        tracing::warn!(
            generation,
            placeholder,
            "loop iteration failed: its template names an unknown placeholder"
        );
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        match failed.iter_mut().find(|(g, _)| *g == generation) {
            Some((_, count)) => *count += 1,
            None => {
                if failed.len() >= GENERATIONS_KEPT {
                    failed.pop_front();
                }
                failed.push_back((generation, 1));
            }
        }
        true
    }

    /// Iterations that failed under `generation`.
    pub fn failures(&self, generation: u64) -> u64 {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        failed
            .iter()
            .find(|(g, _)| *g == generation)
            .map_or(0, |(_, n)| *n)
    }
}

/// The first `{name}` left in a rendered line: a placeholder the daemon does not fill.
fn unfilled_placeholder(line: &str) -> Option<&str> {
    let start = line.find('{')?;
    let rest = &line[start + 1..];
    let end = rest.find('}')?;
    let name = &rest[..end];
    let is_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if is_name {
        Some(name)
    } else {
        unfilled_placeholder(&rest[end + 1..])
    }
}

/// Unhealthy when loop iterations under the change fail at `max_per_second` or more.
struct LoopFailures {
    max_per_second: f64,
}

impl HealthCheck<TaskDaemonConfig> for LoopFailures {
    fn check(&self, probe: &Probe<TaskDaemonConfig>) -> Health {
        let generation = probe.new.generation();
        let failed = LOOPS.failures(generation);
        // At least a second, so one failure in the first instant is not a huge rate.
        let seconds = probe.elapsed.as_secs_f64().max(1.0);
        let rate = failed as f64 / seconds;
        if failed > 0 && rate >= self.max_per_second {
            return Health::unhealthy(format!(
                "{failed} loop iteration(s) failed under generation {generation} in {:.1} s \
                 ({rate:.1}/s; the limit is {}/s)",
                probe.elapsed.as_secs_f64(),
                self.max_per_second
            ));
        }
        Health::Healthy
    }
}

/// The `probation` object of `/api/status`.
pub fn status_json(reloader: &Reloader<TaskDaemonConfig>) -> Value {
    let quarantined: Vec<Value> = reloader
        .quarantined()
        .into_iter()
        .map(|q| json!({"sha256": q.sha256, "generation": q.generation, "reason": q.reason.to_string()}))
        .collect();
    let status = reloader.probation_status();
    let mut out = json!({ "state": status.kind(), "quarantined": quarantined });
    match status {
        ProbationStatus::OnProbation {
            generation,
            revert_to,
            window_ends,
            confirm_by,
            confirmed,
            checks,
            ..
        } => {
            out["generation"] = generation.into();
            out["revert_to"] = revert_to.into();
            out["window_ends"] = rfc3339(window_ends).into();
            out["confirm_by"] = confirm_by.map(rfc3339).into();
            out["confirmed"] = confirmed.into();
            out["checks"] = checks.into();
        }
        ProbationStatus::Passed { generation, checks } => {
            out["generation"] = generation.into();
            out["checks"] = checks.into();
        }
        ProbationStatus::Reverted { revert, live } => {
            out["generation"] = revert.reverted.into();
            out["restored"] = revert.restored.into();
            out["reason"] = revert.reason.to_string().into();
            out["live"] = live.into();
        }
        ProbationStatus::RevertFailed {
            revert,
            live,
            error,
        } => {
            out["generation"] = revert.reverted.into();
            out["reason"] = revert.reason.to_string().into();
            out["live"] = live.into();
            out["error"] = error.into();
        }
        _ => {}
    }
    out
}

fn rfc3339(time: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_placeholder_left_unfilled_is_found() {
        assert_eq!(unfilled_placeholder("loop 3: 2/5"), None);
        assert_eq!(
            unfilled_placeholder("loop 3: {iterations}/5"),
            Some("iterations")
        );
        assert_eq!(unfilled_placeholder("json {\"a\": 1} then {x}"), Some("x"));
        assert_eq!(unfilled_placeholder("{} and { } and {"), None);
    }

    #[test]
    fn failures_are_counted_per_generation() {
        let outcomes = LoopOutcomes::new();
        assert!(!outcomes.iteration(2, "loop 1: 1/5"));
        assert!(outcomes.iteration(3, "loop 1: {iterations}/5"));
        assert!(outcomes.iteration(3, "loop 2: {iterations}/5"));
        assert_eq!((outcomes.failures(2), outcomes.failures(3)), (0, 2));
        for generation in 10..10 + GENERATIONS_KEPT as u64 {
            outcomes.iteration(generation, "{x}");
        }
        assert_eq!(
            outcomes.failures(3),
            0,
            "the oldest generations are forgotten"
        );
    }
}
