//! [`NodeProbation`]: a node's probation state in its status report, so that a pusher (a staged
//! rollout's wave) can tell a change that stayed healthy through its window from one reverted.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::ProbationStatus;

/// Where a node's probation stands, as its report says (the node runs
/// [`probation`](crate::ReloaderBuilder::probation) or
/// [`confirm_within`](crate::ReloaderBuilder::confirm_within)).
///
/// ```
/// use hotcfg::etcd::NodeProbation;
///
/// let json = r#"{"state":"reverted","generation":3,"revision":41,"reason":"unhealthy: 5xx"}"#;
/// let probation: NodeProbation = serde_json::from_str(json)?;
/// assert_eq!(probation.failure().as_deref(), Some("reverted by probation: unhealthy: 5xx"));
/// assert_eq!(probation.to_string(), "reverted (generation 3): unhealthy: 5xx");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeProbation {
    /// `idle`, `on_probation`, `passed`, `reverted` or `revert_failed`.
    pub state: String,
    /// The generation on probation, passed, or reverted (0 when idle).
    pub generation: u64,
    /// The source revision that generation was read at, when the node knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// On probation: when its window ends (milliseconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<u64>,
    /// Reverted, or the revert failed: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl NodeProbation {
    /// The report of `status`; `revision_of` gives the source revision a generation was read at.
    pub fn of(status: &ProbationStatus, revision_of: impl Fn(u64) -> Option<i64>) -> Self {
        let (generation, until_ms, reason) = match status {
            ProbationStatus::OnProbation {
                generation,
                window_ends,
                confirm_by,
                ..
            } => {
                let until = confirm_by.map_or(*window_ends, |c| c.max(*window_ends));
                (*generation, Some(millis(until)), None)
            }
            ProbationStatus::Passed { generation, .. } => (*generation, None, None),
            ProbationStatus::Reverted { revert, .. } => {
                (revert.reverted, None, Some(revert.reason.to_string()))
            }
            ProbationStatus::RevertFailed { revert, error, .. } => (
                revert.reverted,
                None,
                Some(format!("{} (the revert failed: {error})", revert.reason)),
            ),
            _ => (0, None, None),
        };
        NodeProbation {
            state: status.kind().to_string(),
            generation,
            revision: (generation > 0).then(|| revision_of(generation)).flatten(),
            until_ms,
            reason,
        }
    }

    /// Why the change on probation counts as failed: reverted, or unhealthy and its revert failed.
    pub fn failure(&self) -> Option<String> {
        match self.state.as_str() {
            "reverted" | "revert_failed" => Some(format!(
                "reverted by probation: {}",
                self.reason.as_deref().unwrap_or("no reason given")
            )),
            _ => None,
        }
    }
}

impl fmt::Display for NodeProbation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.replace('_', " ");
        write!(f, "{state} (generation {})", self.generation)?;
        if let Some(until) = self.until_ms {
            let left = until.saturating_sub(millis(SystemTime::now()));
            write!(f, " for {left} ms more")?;
        }
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

/// The source revision each recent generation was read at, as the reporter saw the events, so a
/// probation report can name the revision it is about.
#[derive(Default)]
pub(super) struct Generations(std::sync::Mutex<std::collections::VecDeque<(u64, i64)>>);

/// Generations remembered (probation concerns the newest ones).
const GENERATIONS_KEPT: usize = 16;

impl Generations {
    /// Remembers the revision of `event`'s generation, when it read one and succeeded.
    pub(super) fn note(&self, event: &crate::ReloadEvent) {
        let Some(revision) = event.source.as_ref().and_then(|s| s.revision) else {
            return;
        };
        if !event.result.is_ok() {
            return;
        }
        let mut kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if kept.iter().any(|&(g, _)| g == event.generation) {
            return;
        }
        if kept.len() == GENERATIONS_KEPT {
            kept.pop_front();
        }
        kept.push_back((event.generation, revision));
    }

    /// The revision `generation` was read at, if remembered.
    pub(super) fn revision_of(&self, generation: u64) -> Option<i64> {
        let kept = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter()
            .find(|&&(g, _)| g == generation)
            .map(|&(_, r)| r)
    }
}
