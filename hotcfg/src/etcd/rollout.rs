//! Staged rollouts: a candidate value reaches the fleet wave by wave, each wave checked before the
//! next, instead of every node at once.
//!
//! The design and its guarantees are in the `etcd` module's documentation (Staged rollouts).

use std::fmt;

use super::beside;
use super::client::{Entry, EtcdClient, EtcdError};
use super::status::NodeStatus;
use crate::source::ChangeNote;

pub use super::rollout_run::{Rollout, RolloutOutcome};

/// The phase of a rollout, in its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RolloutPhase {
    /// Waves are being admitted: admitted nodes run the candidate.
    Running,
    /// Stopped by a refusal, a probation revert or a timeout: every node runs the stable value.
    Halted,
    /// Stopped by an operator (`push --abort`): every node runs the stable value.
    Aborted,
}

impl fmt::Display for RolloutPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RolloutPhase::Running => "running",
            RolloutPhase::Halted => "halted",
            RolloutPhase::Aborted => "aborted",
        })
    }
}

/// What a node did with a rollout's candidate, as the pusher judged from its reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeOutcome {
    /// The node.
    pub node: String,
    /// Its wave (1-based).
    pub wave: usize,
    /// `passed`, `failed`, `waiting` or `not admitted`.
    pub result: String,
    /// Why it failed, or what it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rollout's state, stored as JSON under `<key>/rollout`.
///
/// ```
/// use hotcfg::etcd::{RolloutPhase, RolloutState};
///
/// let state = RolloutState::new("r1", 7, "ab12", vec![vec!["a".into()], vec!["b".into(), "c".into()]]);
/// assert!(state.admits("a") && !state.admits("b"));
/// assert_eq!(state.progress(), "wave 1 of 2");
/// let halted = RolloutState { phase: RolloutPhase::Halted, ..state };
/// assert!(!halted.admits("a"), "a halted rollout admits nobody");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RolloutState {
    /// Names this rollout.
    pub id: String,
    /// The mod revision of the key the rollout was planned against; nodes not admitted run it.
    pub stable_revision: i64,
    /// SHA-256 of the candidate's bytes.
    pub candidate_sha256: String,
    /// The node ids of each wave, fixed at start.
    pub waves: Vec<Vec<String>>,
    /// The current wave (0-based): it and every earlier one are admitted.
    pub wave: usize,
    /// Running, halted or aborted.
    pub phase: RolloutPhase,
    /// Who started it and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeNote>,
    /// Why it stopped (halted or aborted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Each node's outcome when it stopped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outcomes: Vec<NodeOutcome>,
}

impl RolloutState {
    /// A running rollout at its first wave.
    pub fn new(
        id: impl Into<String>,
        stable_revision: i64,
        candidate_sha256: impl Into<String>,
        waves: Vec<Vec<String>>,
    ) -> Self {
        RolloutState {
            id: id.into(),
            stable_revision,
            candidate_sha256: candidate_sha256.into(),
            waves,
            wave: 0,
            phase: RolloutPhase::Running,
            change: None,
            stopped: None,
            outcomes: Vec::new(),
        }
    }

    /// Whether `node` runs the candidate now: the rollout runs and the node is in the current
    /// wave or an earlier one.
    pub fn admits(&self, node: &str) -> bool {
        self.phase == RolloutPhase::Running
            && self.waves[..(self.wave + 1).min(self.waves.len())]
                .iter()
                .any(|wave| wave.iter().any(|n| n == node))
    }

    /// The wave of `node` (0-based), `None` when it is not part of the rollout.
    pub fn wave_of(&self, node: &str) -> Option<usize> {
        self.waves.iter().position(|w| w.iter().any(|n| n == node))
    }

    /// The nodes admitted now (none unless running), in wave order.
    pub fn admitted(&self) -> Vec<&str> {
        self.waves
            .iter()
            .flatten()
            .filter(|n| self.admits(n))
            .map(String::as_str)
            .collect()
    }

    /// `wave i of n`.
    pub fn progress(&self) -> String {
        format!("wave {} of {}", self.wave + 1, self.waves.len())
    }
}

/// A rollout as `fleet-status` shows it: its state, the candidate's revision, and which of the
/// admitted nodes passed, wait or failed (judged as the pusher judges them).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RolloutProgress {
    /// The state as stored.
    pub state: RolloutState,
    /// The candidate's mod revision (0 when its key is gone).
    pub candidate_revision: i64,
    /// Admitted nodes that run the candidate and passed.
    pub done: Vec<String>,
    /// Admitted nodes not there yet (what each waits for).
    pub waiting: Vec<String>,
    /// Admitted nodes that refused the candidate or reverted it (and why).
    pub failed: Vec<String>,
}

impl RolloutProgress {
    /// The rollout of `key`, if there is one (judged against no report yet).
    pub(super) fn read(client: &EtcdClient, key: &str) -> Result<Option<Self>, EtcdError> {
        let Some(entry) = client.get(&beside::rollout_key(key))? else {
            return Ok(None);
        };
        let Ok(state) = serde_json::from_slice::<RolloutState>(&entry.value) else {
            return Ok(None);
        };
        let candidate_revision = client
            .get(&beside::candidate_key(key))?
            .map_or(0, |e| e.mod_revision);
        Ok(Some(RolloutProgress {
            state,
            candidate_revision,
            done: Vec::new(),
            waiting: Vec::new(),
            failed: Vec::new(),
        }))
    }

    /// The same, with each admitted node judged from `reports`.
    pub(super) fn judged(mut self, reports: &[NodeStatus]) -> Self {
        for node in self.state.admitted() {
            let report = reports.iter().find(|r| r.node == node);
            match judge(report, self.candidate_revision) {
                Verdict::Passed => self.done.push(node.to_string()),
                Verdict::Waiting(why) => self.waiting.push(format!("{node} ({why})")),
                Verdict::Failed(why) => self.failed.push(format!("{node} ({why})")),
            }
        }
        self
    }
}

impl fmt::Display for RolloutProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = &self.state;
        let total: usize = state.waves.iter().map(Vec::len).sum();
        match (state.phase, &state.stopped) {
            (RolloutPhase::Running, _) => write!(
                f,
                "rollout {} running: {}, {} of {total} node(s) admitted to the candidate \
                 (revision {}): {} done, {} waiting, {} failed",
                state.id,
                state.progress(),
                state.admitted().len(),
                self.candidate_revision,
                self.done.len(),
                self.waiting.len(),
                self.failed.len()
            )?,
            (phase, stopped) => write!(
                f,
                "rollout {} {}; every node runs the stable revision {}",
                state.id,
                stopped.clone().unwrap_or_else(|| phase.to_string()),
                state.stable_revision,
            )?,
        }
        if let Some(change) = &state.change {
            write!(f, "; by {change}")?;
        }
        for line in self.waiting.iter().map(|w| ("waiting", w)) {
            write!(f, "\n  {}: {}", line.0, line.1)?;
        }
        for line in self.failed.iter().map(|w| ("failed", w)) {
            write!(f, "\n  {}: {}", line.0, line.1)?;
        }
        Ok(())
    }
}

/// How many nodes a wave reaches, counted from the first wave (cumulative).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaveSize {
    /// This many nodes in all.
    Nodes(usize),
    /// This percentage of the nodes in all (rounded up).
    Percent(u8),
}

impl WaveSize {
    /// Parses `1,25%,100%`: counts and percentages of the fleet, each reaching at least as many
    /// nodes as the one before.
    ///
    /// ```
    /// use hotcfg::etcd::WaveSize;
    ///
    /// let sizes = WaveSize::parse_list("1,25%,100%")?;
    /// assert_eq!(sizes, [WaveSize::Nodes(1), WaveSize::Percent(25), WaveSize::Percent(100)]);
    /// assert!(WaveSize::parse_list("1,150%").is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse_list(text: &str) -> Result<Vec<WaveSize>, String> {
        let sizes = text
            .split(',')
            .map(|part| {
                let part = part.trim();
                let bad = || format!("`{part}` is not a wave size (a count like 2, or 25%)");
                match part.strip_suffix('%') {
                    Some(p) => match p.parse::<u8>() {
                        Ok(p) if (1..=100).contains(&p) => Ok(WaveSize::Percent(p)),
                        _ => Err(bad()),
                    },
                    None => match part.parse::<usize>() {
                        Ok(n) if n > 0 => Ok(WaveSize::Nodes(n)),
                        _ => Err(bad()),
                    },
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        if sizes.is_empty() {
            return Err("no waves given".into());
        }
        Ok(sizes)
    }

    fn reach(self, total: usize) -> usize {
        match self {
            WaveSize::Nodes(n) => n.min(total),
            WaveSize::Percent(p) => (total * p as usize).div_ceil(100),
        }
    }

    /// Splits `nodes` (in this order) into waves of these cumulative sizes; a size that reaches
    /// no new node adds no wave. The last size must reach every node.
    ///
    /// ```
    /// use hotcfg::etcd::WaveSize;
    ///
    /// let nodes: Vec<String> = (1..=5).map(|i| format!("n{i}")).collect();
    /// let waves = WaveSize::plan(&WaveSize::parse_list("1,25%,100%")?, &nodes)?;
    /// assert_eq!(waves, [vec!["n1"], vec!["n2"], vec!["n3", "n4", "n5"]]);
    /// assert!(WaveSize::plan(&WaveSize::parse_list("1,50%")?, &nodes).is_err());
    /// # Ok::<(), String>(())
    /// ```
    pub fn plan(sizes: &[WaveSize], nodes: &[String]) -> Result<Vec<Vec<String>>, String> {
        if nodes.is_empty() {
            return Err(
                "no node reports under the status prefix: nothing to roll out to \
                        (push without --waves)"
                    .into(),
            );
        }
        let mut waves = Vec::new();
        let mut reached = 0;
        for size in sizes {
            let reach = size.reach(nodes.len()).max(reached);
            if reach > reached {
                waves.push(nodes[reached..reach].to_vec());
                reached = reach;
            }
        }
        if reached < nodes.len() {
            return Err(format!(
                "the last wave reaches {reached} of {} nodes: end the waves with 100%",
                nodes.len()
            ));
        }
        Ok(waves)
    }
}

/// The candidate (with its note, as written with it) when `rollout` runs and admits `node`;
/// `None` otherwise: the stable value stands.
pub(super) fn admitted_candidate(
    node: &str,
    rollout: Option<Entry>,
    candidate: Option<Entry>,
) -> Option<(Entry, Option<Entry>)> {
    let state: RolloutState = serde_json::from_slice(&rollout?.value).ok()?;
    let candidate = candidate.filter(|_| state.admits(node))?;
    let note = state.change.map(|change| Entry {
        key: beside::change_key(&candidate.key),
        value: serde_json::to_vec(&change).unwrap_or_default(),
        mod_revision: candidate.mod_revision,
    });
    Some((candidate, note))
}

/// A node's verdict on a candidate, from its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Passed,
    Waiting(String),
    Failed(String),
}

/// Judges `report` (`None`: the node does not report) on the candidate at `candidate`.
pub(super) fn judge(report: Option<&NodeStatus>, candidate: i64) -> Verdict {
    let Some(report) = report else {
        return Verdict::Waiting("no report (not started, stopped, or its lease expired)".into());
    };
    if let Some(probation) = &report.probation {
        if probation.revision == Some(candidate) {
            if let Some(failed) = probation.failure() {
                return Verdict::Failed(failed);
            }
        }
    }
    if report.revision != Some(candidate) {
        let at = report.revision.map_or("-".into(), |r| r.to_string());
        return Verdict::Waiting(format!("runs revision {at}, not the candidate yet"));
    }
    if !report.result.is_ok() {
        let why = report.error.as_deref().unwrap_or("no reason given");
        return Verdict::Failed(format!("{}: {why}", report.result));
    }
    if !report.is_following() {
        return Verdict::Waiting("its watch is down".into());
    }
    match &report.probation {
        Some(p) if report.result == super::NodeResult::Applied => {
            if p.state == "passed" && p.revision == Some(candidate) {
                Verdict::Passed
            } else {
                Verdict::Waiting(p.to_string())
            }
        }
        _ => Verdict::Passed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::etcd::{NodeProbation, NodeResult};

    fn report(revision: i64, result: NodeResult, probation: Option<(&str, i64)>) -> NodeStatus {
        NodeStatus {
            node: "n1".into(),
            revision: Some(revision),
            result,
            error: (!result.is_ok()).then(|| "workers: too many".into()),
            pending_restart: vec![],
            warnings: vec![],
            generation: 2,
            sha256: None,
            trigger: String::new(),
            reported_at: 0,
            watch: None,
            change: None,
            probation: probation.map(|(state, revision)| NodeProbation {
                state: state.into(),
                generation: 2,
                revision: Some(revision),
                until_ms: None,
                reason: Some("unhealthy: 5xx".into()),
            }),
            stale: false,
        }
    }

    #[test]
    fn a_node_passes_only_at_the_candidate_and_after_its_probation_for_it() {
        use NodeResult::*;
        let waiting = |v: Verdict| matches!(v, Verdict::Waiting(_));
        assert!(waiting(judge(None, 9)));
        assert!(waiting(judge(Some(&report(8, Applied, None)), 9)));
        assert_eq!(judge(Some(&report(9, Applied, None)), 9), Verdict::Passed);
        assert_eq!(
            judge(Some(&report(9, Unchanged, Some(("idle", 0)))), 9),
            Verdict::Passed
        );
        assert_eq!(
            judge(Some(&report(9, Failed, None)), 9),
            Verdict::Failed("failed: workers: too many".into())
        );
        // With probation: passed for the candidate, not for an earlier revision.
        assert!(waiting(judge(
            Some(&report(9, Applied, Some(("on_probation", 9)))),
            9
        )));
        assert!(waiting(judge(
            Some(&report(9, Applied, Some(("passed", 8)))),
            9
        )));
        assert_eq!(
            judge(Some(&report(9, Applied, Some(("passed", 9)))), 9),
            Verdict::Passed
        );
        // Reverted: the report is back at the stable revision, the probation names the candidate.
        assert_eq!(
            judge(Some(&report(8, Applied, Some(("reverted", 9)))), 9),
            Verdict::Failed("reverted by probation: unhealthy: 5xx".into())
        );
        assert!(waiting(judge(
            Some(&report(8, Applied, Some(("reverted", 7)))),
            9
        )));
    }

    #[test]
    fn waves_admit_cumulatively_and_nobody_once_stopped() {
        let waves = vec![vec!["a".into()], vec!["b".into(), "c".into()]];
        let mut state = RolloutState::new("r", 3, "sha", waves);
        assert_eq!(state.admitted(), ["a"]);
        state.wave = 1;
        assert_eq!(state.admitted(), ["a", "b", "c"]);
        assert_eq!(state.wave_of("c"), Some(1));
        assert!(!state.admits("d"));
        state.phase = RolloutPhase::Aborted;
        assert!(state.admitted().is_empty());
        let plan = |sizes: &str, n: usize| {
            let nodes: Vec<String> = (0..n).map(|i| i.to_string()).collect();
            WaveSize::plan(&WaveSize::parse_list(sizes).unwrap(), &nodes)
                .map(|w| w.iter().map(Vec::len).collect::<Vec<_>>())
        };
        assert_eq!(plan("1,25%,100%", 8), Ok(vec![1, 1, 6]));
        assert_eq!(
            plan("2,1,100%", 3),
            Ok(vec![2, 1]),
            "a wave reaching no new node adds none"
        );
        assert_eq!(plan("50%,100%", 1), Ok(vec![1]));
        assert!(plan("100%", 0).is_err());
        assert!(WaveSize::parse_list("0").is_err());
        assert!(WaveSize::parse_list("1,,2").is_err());
    }
}
