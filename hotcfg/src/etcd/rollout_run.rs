//! [`Rollout`]: the pusher's side of a staged rollout (see the design in `rollout.rs`): start it,
//! wait on each wave, admit the next, finish, halt, resume or abort.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::beside;
use super::client::{EtcdClient, EtcdError};
use super::push::{PreparedPush, PushError};
use super::rollout::{judge, NodeOutcome, RolloutPhase, RolloutState, Verdict, WaveSize};
use super::status::NodeStatus;
use crate::source::sha256_hex;

/// How often a waiting pusher reads the nodes' reports.
const POLL: Duration = Duration::from_millis(100);

/// A staged rollout of one key, driven by its pusher: [`start`](Rollout::start) it (or
/// [`find`](Rollout::find) a running one to resume or abort), then [`run`](Rollout::run) it, or
/// step by step: [`wait_wave`](Rollout::wait_wave), [`advance`](Rollout::advance),
/// [`halt`](Rollout::halt).
///
/// ```no_run
/// use std::time::Duration;
/// use hotcfg::etcd::{EtcdClient, PreparedPush, Rollout, RolloutOutcome, WaveSize};
/// use hotcfg::Pipeline;
/// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, hotcfg::HotReload)]
/// # struct Config { #[reload(scope = "limits")] workers: usize }
///
/// let client = EtcdClient::new(["127.0.0.1:2379"])?;
/// let key = "app/config.toml";
/// let push = PreparedPush::prepare(&Pipeline::<Config>::new(), "new.toml".as_ref(), &client, key)?;
/// let waves = WaveSize::parse_list("1,25%,100%")?;
/// let mut rollout = Rollout::start(&push, &client, &waves, Duration::from_secs(60))?;
/// match rollout.run(&mut |line| println!("{line}"))? {
///     RolloutOutcome::Done { revision, .. } => println!("{key} is at revision {revision}"),
///     RolloutOutcome::Halted { reason, .. } => println!("halted: {reason}"),
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Rollout {
    client: EtcdClient,
    key: String,
    status_prefix: String,
    state: RolloutState,
    /// The mod revision of the state as last written: the guard of the next write.
    state_revision: i64,
    candidate_revision: i64,
    candidate: Vec<u8>,
    wave_timeout: Duration,
}

/// How a rollout ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutOutcome {
    /// Every wave passed: the candidate is the key's value at `revision`.
    Done {
        /// The key's new mod revision.
        revision: i64,
        /// Each node's outcome.
        outcomes: Vec<NodeOutcome>,
    },
    /// Halted (or aborted): every node runs the stable value again.
    Halted {
        /// Why.
        reason: String,
        /// Each node's outcome.
        outcomes: Vec<NodeOutcome>,
    },
}

/// A refusal that names the running rollout and what to do about it.
pub(super) fn running_refusal(key: &str, state: &RolloutState) -> PushError {
    PushError::Rollout(format!(
        "a staged rollout ({}) of {key} is running ({}); `push --resume` continues it, `push \
         --abort` returns its nodes to the stable value; nothing was written",
        state.id,
        state.progress()
    ))
}

impl Rollout {
    /// Starts a rollout of `push` (checked and planned, for the key every node shares) in waves
    /// of `sizes` over the nodes reporting now under the key's default status prefix, each wave
    /// given `wave_timeout` to pass. One transaction creates it, admitting the first wave, only if
    /// the key is still at the revision planned against and no rollout runs.
    pub fn start(
        push: &PreparedPush,
        client: &EtcdClient,
        sizes: &[WaveSize],
        wave_timeout: Duration,
    ) -> Result<Rollout, PushError> {
        let key = push.key.clone();
        if push.node.is_some() || push.revision == 0 {
            return Err(PushError::Usage(format!(
                "a staged rollout replaces the value every node shares of an existing key; {} \
                 is a node's override or absent: push it without --waves",
                push.key
            )));
        }
        if let Some(change) = &push.change {
            change
                .check()
                .map_err(|e| PushError::Usage(format!("the change note: {e}")))?;
        }
        let status_prefix = super::source::default_status_prefix(&key, false);
        let existing = client
            .get(&beside::rollout_key(&key))
            .map_err(PushError::Etcd)?;
        if let Some(state) = existing.as_ref().and_then(|e| parse_state(&e.value)) {
            if state.phase == RolloutPhase::Running {
                return Err(running_refusal(&key, &state));
            }
        }
        let waves = Self::plan(client, &key, sizes)?;
        let candidate = push.text.clone().into_bytes();
        let sha = sha256_hex(&candidate);
        let id = format!("{}-{}", &sha[..8], unix_seconds());
        let mut state = RolloutState::new(id, push.revision, sha, waves);
        state.change = push.change.clone();
        let rollout_revision = existing.map_or(0, |e| e.mod_revision);
        let revision = create(client, push, &state, &candidate, rollout_revision)?;
        Ok(Rollout {
            client: client.clone(),
            key,
            status_prefix,
            state,
            state_revision: revision,
            candidate_revision: revision,
            candidate,
            wave_timeout,
        })
    }

    /// The waves a rollout of `key` in `sizes` would make now: the nodes reporting under the
    /// key's default status prefix, in id order (what `push --waves --dry-run` shows).
    pub fn plan(
        client: &EtcdClient,
        key: &str,
        sizes: &[WaveSize],
    ) -> Result<Vec<Vec<String>>, PushError> {
        let prefix = super::source::default_status_prefix(key, false);
        let mut nodes: Vec<String> = reports(client, &prefix)
            .map_err(PushError::Etcd)?
            .into_iter()
            .map(|r| r.node)
            .collect();
        nodes.sort();
        WaveSize::plan(sizes, &nodes).map_err(PushError::Usage)
    }

    /// The running rollout of `key` (to resume or abort it), each wave given `wave_timeout`.
    pub fn find(
        client: &EtcdClient,
        key: &str,
        wave_timeout: Duration,
    ) -> Result<Rollout, PushError> {
        let (found, _) = client
            .get_all(&[beside::rollout_key(key), beside::candidate_key(key)])
            .map_err(PushError::Etcd)?;
        let (Some(entry), Some(candidate)) = (&found[0], &found[1]) else {
            return Err(PushError::Usage(format!(
                "no staged rollout of {key} to continue"
            )));
        };
        let state = parse_state(&entry.value)
            .ok_or_else(|| PushError::Usage(format!("{} is not a rollout's state", entry.key)))?;
        if state.phase != RolloutPhase::Running {
            return Err(PushError::Usage(format!(
                "the staged rollout {} of {key} is {} ({}): push again to start another",
                state.id,
                state.phase,
                state.stopped.as_deref().unwrap_or("stopped")
            )));
        }
        Ok(Rollout {
            client: client.clone(),
            key: key.to_string(),
            status_prefix: super::source::default_status_prefix(key, false),
            state,
            state_revision: entry.mod_revision,
            candidate_revision: candidate.mod_revision,
            candidate: candidate.value.clone(),
            wave_timeout,
        })
    }

    /// The state as last written.
    pub fn state(&self) -> &RolloutState {
        &self.state
    }

    /// The candidate's mod revision: what admitted nodes report running.
    pub fn candidate_revision(&self) -> i64 {
        self.candidate_revision
    }

    /// Waits for every node of the current wave to pass, at most the wave timeout; `Ok(Err)`
    /// says why the wave fails (the first refusal or revert seen, or who was still waiting).
    /// Another pusher's write of the state meanwhile (an abort, a resume) ends the wait with
    /// [`PushError::Rollout`].
    pub fn wait_wave(&self) -> Result<Result<(), String>, PushError> {
        let deadline = Instant::now() + self.wave_timeout;
        let wave = &self.state.waves[self.state.wave];
        loop {
            if self.state_moved() {
                return Err(self.changed_meanwhile());
            }
            // An unreadable etcd counts as waiting: the wave times out if it does not return.
            let reports = reports(&self.client, &self.status_prefix).unwrap_or_default();
            let mut waiting = Vec::new();
            for node in wave {
                match judge(
                    reports.iter().find(|r| &r.node == node),
                    self.candidate_revision,
                ) {
                    Verdict::Passed => {}
                    Verdict::Failed(why) => {
                        return Ok(Err(format!("{}: {node} {why}", self.state.progress())))
                    }
                    Verdict::Waiting(why) => waiting.push(format!("{node} ({why})")),
                }
            }
            if waiting.is_empty() {
                return Ok(Ok(()));
            }
            if Instant::now() >= deadline {
                return Ok(Err(format!(
                    "{}: not passed within {:?}, waiting for {}",
                    self.state.progress(),
                    self.wave_timeout,
                    waiting.join(", ")
                )));
            }
            std::thread::sleep(POLL.min(deadline.saturating_duration_since(Instant::now())));
        }
    }

    /// Admits the next wave (`Ok(None)`), or after the last one writes the candidate as the
    /// key's value and removes the rollout (`Ok(Some(revision))`, the key's new revision).
    pub fn advance(&mut self) -> Result<Option<i64>, PushError> {
        if self.state.wave + 1 < self.state.waves.len() {
            let mut next = self.state.clone();
            next.wave += 1;
            self.write_state(next)?;
            return Ok(None);
        }
        let note = match &self.state.change {
            Some(change) => Some(
                serde_json::to_vec(change)
                    .map_err(|e| PushError::Usage(format!("the change note: {e}")))?,
            ),
            None => None,
        };
        let guard = [
            (self.key.clone(), self.state.stable_revision),
            (beside::rollout_key(&self.key), self.state_revision),
        ];
        let writes = vec![
            (self.key.clone(), Some(self.candidate.clone())),
            (beside::change_key(&self.key), note),
            (beside::rollout_key(&self.key), None),
            (beside::candidate_key(&self.key), None),
        ];
        match self
            .client
            .write_if(&guard, writes)
            .map_err(PushError::Etcd)?
        {
            Ok(revision) => Ok(Some(revision)),
            Err(_) => Err(self.changed_meanwhile()),
        }
    }

    /// Stops the rollout as `phase` (halted or aborted) for `reason`: every admitted node returns
    /// to the stable value. Returns each node's outcome (also kept in the state).
    pub fn halt(
        &mut self,
        phase: RolloutPhase,
        reason: &str,
    ) -> Result<Vec<NodeOutcome>, PushError> {
        let reports = reports(&self.client, &self.status_prefix).unwrap_or_default();
        let outcomes = self.outcomes(&reports);
        let mut stopped = self.state.clone();
        stopped.phase = phase;
        stopped.stopped = Some(reason.to_string());
        stopped.outcomes = outcomes.clone();
        self.write_state(stopped)?;
        Ok(outcomes)
    }

    /// Runs the rollout from its current wave to the end: waits on each wave, admits the next,
    /// halts at the first failure. `progress` is told of each step.
    pub fn run(&mut self, progress: &mut dyn FnMut(&str)) -> Result<RolloutOutcome, PushError> {
        loop {
            let wave = &self.state.waves[self.state.wave];
            progress(&format!(
                "{}: {} run the candidate (revision {})",
                self.state.progress(),
                wave.join(", "),
                self.candidate_revision
            ));
            if let Err(reason) = self.wait_wave()? {
                let reason = format!("halted at {reason}");
                let outcomes = self.halt(RolloutPhase::Halted, &reason)?;
                return Ok(RolloutOutcome::Halted { reason, outcomes });
            }
            progress(&format!("{} passed", self.state.progress()));
            let reports = reports(&self.client, &self.status_prefix).unwrap_or_default();
            let outcomes = self.outcomes(&reports);
            if let Some(revision) = self.advance()? {
                return Ok(RolloutOutcome::Done { revision, outcomes });
            }
        }
    }

    /// Each node's outcome as its reports say now.
    fn outcomes(&self, reports: &[NodeStatus]) -> Vec<NodeOutcome> {
        let mut outcomes = Vec::new();
        for (i, wave) in self.state.waves.iter().enumerate() {
            for node in wave {
                let (result, reason) = if !self.state.admits(node) {
                    ("not admitted", Some("kept the stable value".to_string()))
                } else {
                    match judge(
                        reports.iter().find(|r| &r.node == node),
                        self.candidate_revision,
                    ) {
                        Verdict::Passed => ("passed", None),
                        Verdict::Waiting(why) => ("waiting", Some(why)),
                        Verdict::Failed(why) => ("failed", Some(why)),
                    }
                };
                outcomes.push(NodeOutcome {
                    node: node.clone(),
                    wave: i + 1,
                    result: result.to_string(),
                    reason,
                });
            }
        }
        outcomes
    }

    /// Writes `next` if the state is still as last written.
    fn write_state(&mut self, next: RolloutState) -> Result<(), PushError> {
        let key = beside::rollout_key(&self.key);
        let guard = [(key.clone(), self.state_revision)];
        match self
            .client
            .write_if(&guard, vec![(key, Some(encode(&next)?))])
            .map_err(PushError::Etcd)?
        {
            Ok(revision) => {
                self.state = next;
                self.state_revision = revision;
                Ok(())
            }
            Err(_) => Err(self.changed_meanwhile()),
        }
    }

    /// Whether the state's key is no longer as this pusher last wrote it (an unreadable etcd
    /// says nothing).
    fn state_moved(&self) -> bool {
        match self.client.get(&beside::rollout_key(&self.key)) {
            Ok(entry) => entry.is_none_or(|e| e.mod_revision != self.state_revision),
            Err(_) => false,
        }
    }

    fn changed_meanwhile(&self) -> PushError {
        PushError::Rollout(format!(
            "the staged rollout {} of {} changed meanwhile (another pusher resumed or aborted it, \
             or {} was written by other means); nothing was written",
            self.state.id, self.key, self.key
        ))
    }
}

/// Creates the rollout's keys if `push.key` is still at the revision planned against and its
/// rollout state at `rollout_revision` (0: none); returns the revision of the write.
fn create(
    client: &EtcdClient,
    push: &PreparedPush,
    state: &RolloutState,
    candidate: &[u8],
    rollout_revision: i64,
) -> Result<i64, PushError> {
    let key = &push.key;
    let guard = [
        (key.clone(), push.revision),
        (beside::rollout_key(key), rollout_revision),
    ];
    let writes = vec![
        (beside::rollout_key(key), Some(encode(state)?)),
        (beside::candidate_key(key), Some(candidate.to_vec())),
    ];
    match client.write_if(&guard, writes).map_err(PushError::Etcd)? {
        Ok(revision) => Ok(revision),
        Err(now) if now[0] != push.revision => Err(PushError::Conflict {
            key: key.clone(),
            planned: push.revision,
            current: now[0],
        }),
        Err(_) => Err(PushError::Rollout(format!(
            "another staged rollout of {key} was started or stopped meanwhile; nothing was \
             written"
        ))),
    }
}

/// Every report under `prefix` that reads as one.
fn reports(client: &EtcdClient, prefix: &str) -> Result<Vec<NodeStatus>, EtcdError> {
    let listing = client.list(prefix)?;
    Ok(listing
        .entries
        .iter()
        .filter_map(|e| serde_json::from_slice(&e.value).ok())
        .collect())
}

fn parse_state(bytes: &[u8]) -> Option<RolloutState> {
    serde_json::from_slice(bytes).ok()
}

fn encode(state: &RolloutState) -> Result<Vec<u8>, PushError> {
    serde_json::to_vec(state).map_err(|e| PushError::Usage(format!("the rollout's state: {e}")))
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
