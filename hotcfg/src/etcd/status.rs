//! What each node reports back: [`NodeStatus`] under `<status prefix><node id>`, and the operator's
//! view of all of them, [`FleetStatus`].

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use super::beside;
use super::client::{EtcdClient, EtcdError};
use super::health::WatchHealth;
use super::node_probation::NodeProbation;
use super::rollout::RolloutProgress;
use crate::source::ChangeNote;
use crate::{ReloadEvent, ReloadResult};

/// A node's result for one reload, as the `result` field of its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeResult {
    /// The configuration was applied (hot changes live; restart-only ones deferred when the
    /// node runs the defer policy, listed in `pending_restart`).
    Applied,
    /// Nothing differed from the live configuration.
    Unchanged,
    /// Refused before anything was applied: restart-only changes under the reject policy, or a
    /// handler's veto. `error` says why.
    Rejected,
    /// The value could not be read, parsed or validated, or applying it failed and was rolled
    /// back. `error` says why. The node keeps its previous configuration.
    Failed,
}

impl NodeResult {
    /// `applied`, `unchanged`, `rejected` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeResult::Applied => "applied",
            NodeResult::Unchanged => "unchanged",
            NodeResult::Rejected => "rejected",
            NodeResult::Failed => "failed",
        }
    }

    /// `true` for applied and unchanged.
    pub fn is_ok(self) -> bool {
        matches!(self, NodeResult::Applied | NodeResult::Unchanged)
    }
}

impl fmt::Display for NodeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One node's report, stored as JSON under `<status prefix><node id>`, bound to the node's lease.
///
/// ```
/// use hotcfg::etcd::{NodeResult, NodeStatus};
///
/// let json = r#"{"node":"web-1","revision":42,"result":"rejected",
///     "error":"restart-only changes: listen","generation":3}"#;
/// let status: NodeStatus = serde_json::from_str(json)?;
/// assert_eq!(status.result, NodeResult::Rejected);
/// assert!(status.pending_restart.is_empty());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeStatus {
    /// The node's id.
    pub node: String,
    /// The mod revision of the value this result is for (`None` when it could not be read).
    #[serde(default)]
    pub revision: Option<i64>,
    /// What the node did with it.
    pub result: NodeResult,
    /// Why it was rejected or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Restart-only settings whose new values wait for a restart of this node.
    #[serde(default)]
    pub pending_restart: Vec<String>,
    /// Things worth telling the operator.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// The node's live configuration generation.
    #[serde(default)]
    pub generation: u64,
    /// SHA-256 of the value read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// What started the reload (`startup`, `remote etcd ...`, `signal`, `manual`).
    #[serde(default)]
    pub trigger: String,
    /// When the node wrote this report (seconds since the Unix epoch).
    #[serde(default)]
    pub reported_at: u64,
    /// What the node's watch is doing: a node that is not watching will not see the next change
    /// (`None` in reports of older versions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchHealth>,
    /// Who pushed the version this result is for, and why (`None` when unknown: written by
    /// other means than `push`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeNote>,
    /// Where the node's probation stands (`None`: the node runs no probation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probation: Option<NodeProbation>,
    /// The node runs a version it started from because etcd could not be reached at start (its
    /// last-known-good version, [`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)),
    /// and has not read the key since.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl NodeStatus {
    /// The report of `event` by `node`; `pending_restart` is the node's pending list after it.
    pub fn from_event(node: &str, event: &ReloadEvent, pending_restart: Vec<String>) -> Self {
        let (result, error, warnings) = match &event.result {
            ReloadResult::Applied { warnings, .. } => (NodeResult::Applied, None, warnings.clone()),
            ReloadResult::Unchanged => (NodeResult::Unchanged, None, Vec::new()),
            ReloadResult::Rejected { reason, refused } => {
                let paths: Vec<&str> = refused.iter().map(|c| c.path.as_str()).collect();
                let error = if paths.is_empty() || reason.contains(paths[0]) {
                    reason.clone()
                } else {
                    format!("{reason} ({})", paths.join(", "))
                };
                (NodeResult::Rejected, Some(error), Vec::new())
            }
            ReloadResult::Failed { error, rollback } => {
                let mut warnings = Vec::new();
                if let crate::Rollback::Incomplete { .. } = rollback {
                    warnings.push(rollback.to_string());
                }
                (NodeResult::Failed, Some(error.to_string()), warnings)
            }
        };
        NodeStatus {
            node: node.to_string(),
            revision: event.source.as_ref().and_then(|s| s.revision),
            result,
            error,
            pending_restart,
            warnings,
            generation: event.generation,
            sha256: event.source.as_ref().map(|s| s.sha256.clone()),
            trigger: event.trigger.to_string(),
            reported_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            watch: None,
            change: event.source.as_ref().and_then(|s| s.change.clone()),
            probation: None,
            stale: false,
        }
    }

    /// Whether the node follows the key now (reports without a watch state count as following).
    pub fn is_following(&self) -> bool {
        self.watch.as_ref().is_none_or(WatchHealth::is_watching)
    }

    /// Whether two reports say the same thing (ignoring when and why they were written).
    pub(crate) fn same_as(&self, other: &NodeStatus) -> bool {
        self.revision == other.revision
            && self.result == other.result
            && self.error == other.error
            && self.pending_restart == other.pending_restart
            && self.generation == other.generation
            && self.sha256 == other.sha256
            && self.watch == other.watch
            && self.change == other.change
            && self.probation == other.probation
            && self.stale == other.stale
    }
}

/// The nodes a fleet is expected to have, so that `fleet-status` can tell a missing node from a
/// fleet that shrank. Empty (the default): whoever reports is the fleet.
///
/// ```
/// let expected = hotcfg::etcd::Expected::nodes(["web-1", "web-2"]);
/// assert_eq!(expected.count, None);
/// assert!(!expected.is_empty());
/// assert!(hotcfg::etcd::Expected::default().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Expected {
    /// These node ids must report.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// At least this many nodes must report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl Expected {
    /// Expects these node ids.
    pub fn nodes<S: Into<String>>(ids: impl IntoIterator<Item = S>) -> Self {
        Expected {
            nodes: ids.into_iter().map(Into::into).collect(),
            count: None,
        }
    }

    /// Expects at least `count` nodes.
    pub fn count(count: usize) -> Self {
        Expected {
            nodes: Vec::new(),
            count: Some(count),
        }
    }

    /// Whether nothing is expected.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty() && self.count.is_none()
    }
}

/// Every node's report under a status prefix, with the configuration key's current revision and
/// the membership expected. `Display` renders the table `fleet-status` prints.
///
/// The fleet has converged when at least one node reports, every expected node reports, and every
/// node applied (or found unchanged) the key's current revision *and* still watches the key: a
/// node whose watch is down (reconnecting, paused) will miss the next change, so it never counts
/// as converged, whatever revision it runs.
///
/// ```
/// use hotcfg::etcd::{Expected, FleetStatus, NodeResult, NodeStatus};
///
/// let node = |name: &str, revision, result, error: Option<&str>| NodeStatus {
///     node: name.into(), revision: Some(revision), result, error: error.map(Into::into),
///     pending_restart: vec![], warnings: vec![], generation: 2, sha256: None,
///     trigger: "remote".into(), reported_at: 0, watch: None, change: None, probation: None,
///     stale: false,
/// };
/// let fleet = FleetStatus {
///     key: "app/config".into(),
///     key_revision: Some(7),
///     status_prefix: "app/config/status/".into(),
///     nodes: vec![
///         node("a", 7, NodeResult::Applied, None),
///         node("b", 7, NodeResult::Failed, Some("cannot parse configuration: ...")),
///     ],
///     expected: Expected::default(),
///     change: None,
///     overrides: vec![],
///     rollout: None,
/// };
/// assert!(!fleet.converged());
/// let table = fleet.to_string();
/// assert_eq!(table.lines().nth(1), Some("NODE  REVISION  RESULT   WATCH  PENDING RESTART  ERROR"));
/// assert_eq!(table.lines().nth(3), Some("b     7         failed   -      -                cannot parse configuration: ..."));
/// assert!(table.ends_with("2 node(s); 1 applied the current revision; not converged"));
///
/// // Expected membership: a node that does not report is missing.
/// let fleet = FleetStatus { nodes: vec![node("a", 7, NodeResult::Applied, None)], ..fleet }
///     .expecting(Expected::nodes(["a", "c"]));
/// assert_eq!(fleet.missing(), ["c"]);
/// assert!(!fleet.converged());
/// assert!(fleet.to_string().ends_with("1 node(s); 1 applied the current revision; 1 missing; not converged"));
///
/// // Who pushed the key's value and why; a node with its own override layer.
/// let fleet = FleetStatus {
///     change: Some(hotcfg::ChangeNote::new("alice@ops").reason("more workers")),
///     overrides: vec![("a".into(), 9)],
///     ..fleet
/// };
/// assert!(fleet.to_string().starts_with("key app/config at revision 7, pushed by alice@ops: more workers\n"));
/// assert!(fleet.to_string().contains("\noverrides: a (revision 9)\n"));
/// assert!(!fleet.is_current(&fleet.nodes[0]), "a runs its override's revision 9, not 7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FleetStatus {
    /// The configuration key (or prefix).
    pub key: String,
    /// Its mod revision now (for a prefix, the newest among its keys); `None` when absent.
    pub key_revision: Option<i64>,
    /// Where the reports were read.
    pub status_prefix: String,
    /// One report per live node, by node id.
    pub nodes: Vec<NodeStatus>,
    /// The membership expected (see [`FleetStatus::expecting`]).
    #[serde(skip_serializing_if = "Expected::is_empty")]
    pub expected: Expected,
    /// Who pushed the key's current value and why (`None` when unknown, and for a prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeNote>,
    /// The nodes with an override of the key (`<key>/nodes/<node id>`) and its mod revision.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<(String, i64)>,
    /// A staged rollout of the key (running, halted or aborted) and how far it got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutProgress>,
}

impl FleetStatus {
    /// Reads every report under `status_prefix`, and the revision of `key` (a prefix when it
    /// ends with `/`). Unreadable reports appear as failed with the reason.
    pub fn read(
        client: &EtcdClient,
        key: &str,
        status_prefix: &str,
    ) -> Result<FleetStatus, EtcdError> {
        let is_prefix = key.ends_with('/');
        let listing = client.list(status_prefix)?;
        let (mut change, mut overrides, mut rollout) = (None, Vec::new(), None);
        let key_revision = if is_prefix {
            client
                .list(key)?
                .entries
                .iter()
                .filter(|e| !e.key.starts_with(status_prefix))
                .map(|e| e.mod_revision)
                .max()
        } else {
            let revision = client.get(key)?.map(|e| e.mod_revision);
            if let Some(revision) = revision {
                let note = client.get(&beside::change_key(key))?;
                change = beside::note_of(note.as_ref(), revision);
            }
            let listing = client.list(&beside::overrides_prefix(key))?;
            overrides = beside::overrides(key, &listing.entries);
            rollout = RolloutProgress::read(client, key)?;
            revision
        };
        let nodes: Vec<NodeStatus> = listing
            .entries
            .into_iter()
            .map(|entry| {
                let id = entry
                    .key
                    .strip_prefix(status_prefix)
                    .unwrap_or(&entry.key)
                    .to_string();
                serde_json::from_slice::<NodeStatus>(&entry.value).unwrap_or_else(|err| {
                    NodeStatus {
                        node: id,
                        revision: None,
                        result: NodeResult::Failed,
                        error: Some(format!("unreadable status report {}: {err}", entry.key)),
                        pending_restart: Vec::new(),
                        warnings: Vec::new(),
                        generation: 0,
                        sha256: None,
                        trigger: String::new(),
                        reported_at: 0,
                        watch: None,
                        change: None,
                        probation: None,
                        stale: false,
                    }
                })
            })
            .collect();
        let rollout = rollout.map(|r| r.judged(&nodes));
        Ok(FleetStatus {
            key: key.to_string(),
            key_revision,
            status_prefix: status_prefix.to_string(),
            nodes,
            expected: Expected::default(),
            change,
            overrides,
            rollout,
        })
    }

    /// The same view, judged against the membership `expected`.
    pub fn expecting(mut self, expected: Expected) -> Self {
        self.expected = expected;
        self
    }

    /// Expected node ids without a report, in the order given.
    pub fn missing(&self) -> Vec<&str> {
        self.expected
            .nodes
            .iter()
            .filter(|id| !self.nodes.iter().any(|n| &n.node == *id))
            .map(String::as_str)
            .collect()
    }

    /// Whether `node` applied (or found unchanged) the key's current revision (with an override,
    /// the newer of the key's and the override's) and still follows the key.
    pub fn is_current(&self, node: &NodeStatus) -> bool {
        let own = self
            .overrides
            .iter()
            .find(|(id, _)| *id == node.node)
            .map(|(_, revision)| *revision);
        let expected = match (self.key_revision, own) {
            (Some(key), Some(own)) => Some(key.max(own)),
            (key, _) => key,
        };
        node.result.is_ok()
            && node.revision.is_some()
            && node.revision == expected
            && node.is_following()
    }

    /// `true` when at least one node reports, every expected node reports, and every node is
    /// [current](FleetStatus::is_current).
    pub fn converged(&self) -> bool {
        !self.nodes.is_empty()
            && self.missing().is_empty()
            && self
                .expected
                .count
                .is_none_or(|count| self.nodes.len() >= count)
            && self.nodes.iter().all(|n| self.is_current(n))
    }

    /// The JSON `fleet-status --json` prints: the fields, plus `missing` and `converged`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(object) = value.as_object_mut() {
            object.insert("missing".into(), self.missing().into());
            object.insert("converged".into(), self.converged().into());
        }
        value
    }
}
