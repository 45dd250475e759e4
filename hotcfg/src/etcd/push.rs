//! Pushing a configuration file to an etcd key: check it, plan it against the value there (the
//! fleet's desired state), then write it with a compare-and-swap on the revision planned against,
//! so that of two operators pushing at once, one is refused instead of silently overwritten. Who
//! pushed and why ([`ChangeNote`]) is written in the same transaction; a push for one node writes
//! its override layer.

use std::path::Path;

use super::beside;
use super::client::{Entry, EtcdClient, EtcdError};
use super::rollout::{RolloutPhase, RolloutState};
use super::source::EtcdSource;
use crate::engine::Pipeline;
use crate::hot_reload::HotConfig;
use crate::load::{ConfigError, Format};
use crate::plan::{Decision, Plan};
use crate::source::{ChangeNote, FileSource, Source, SourceContent, SourceIdentity};

/// A push checked and planned against the value in etcd, not yet written. Made by
/// [`PreparedPush::prepare`]; [`commit`](PreparedPush::commit) writes it if the key is still at
/// [`revision`](PreparedPush::revision).
///
/// ```no_run
/// use hotcfg::etcd::{EtcdClient, PreparedPush};
/// use hotcfg::Pipeline;
/// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, hotcfg::HotReload)]
/// # struct Config { #[reload(scope = "limits")] workers: usize }
///
/// let client = EtcdClient::new(["127.0.0.1:2379"])?;
/// let pipeline = Pipeline::<Config>::new();
/// let push = PreparedPush::prepare(&pipeline, "new.toml".as_ref(), &client, "app/config.toml")?;
/// println!("planned against revision {}", push.revision);
/// let revision = push.commit(&client)?; // refused if someone wrote the key meanwhile
///
/// // Who and why travel with the value; one node's override layer is pushed the same way.
/// let push = PreparedPush::prepare_for_node(&pipeline, "node-3.toml".as_ref(), &client, "app/config.toml", "node-3")?
///     .with_change(hotcfg::ChangeNote::by_current_user().reason("node-3 listens elsewhere"));
/// assert_eq!(push.key, "app/config.toml/nodes/node-3");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PreparedPush {
    /// The key written: the configuration key, or for a node's override
    /// `<key>/nodes/<node id>`.
    pub key: String,
    /// The node whose override this push writes (`None`: the value every node shares).
    pub node: Option<String>,
    /// Who pushes and why, written beside the value in the same transaction (`<key>/change`).
    pub change: Option<ChangeNote>,
    /// The mod revision of the value planned against (0: the key did not exist).
    pub revision: i64,
    /// The plan against the value in etcd; `None` when there was no usable value there.
    pub plan: Option<Plan>,
    /// Why there is no plan: the key is absent, or its value cannot be used.
    pub note: Option<String>,
    /// The pushed file's identity.
    pub identity: SourceIdentity,
    pub(super) text: String,
    /// The mod revision of a stopped rollout's state seen at planning (0: none), deleted with
    /// the write.
    rollout_revision: i64,
}

/// Why a push wrote nothing.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The file cannot be used.
    #[error("nothing pushed: {0}")]
    Invalid(ConfigError),
    /// The key changed between the plan and the write (another operator pushed first).
    #[error("{}", conflict_message(key, *planned, *current))]
    Conflict {
        /// The key.
        key: String,
        /// The revision the push was planned against (0: absent).
        planned: i64,
        /// The key's revision when the write was refused (0: absent).
        current: i64,
    },
    /// etcd cannot be reached or refused the request.
    #[error("nothing pushed: {0}")]
    Etcd(EtcdError),
    /// The command cannot be carried out as given (a prefix as key, a format mismatch).
    #[error("nothing pushed: {0}")]
    Usage(String),
    /// A staged rollout of the key is in the way (one runs; or its state changed meanwhile).
    #[error("push refused: {0}")]
    Rollout(String),
}

/// The format of the value pushed to `key`: the file's, which the key's name must not contradict.
fn value_format(key: &str, file: &Path, file_format: Format) -> Result<Format, PushError> {
    match Format::from_path(key.as_ref()) {
        Some(key_format) if key_format != file_format => Err(PushError::Usage(format!(
            "{} is {file_format} but the key {key} holds {key_format} (from its name)",
            file.display()
        ))),
        _ => Ok(file_format),
    }
}

fn conflict_message(key: &str, planned: i64, current: i64) -> String {
    let what = match (planned, current) {
        (0, _) => format!(
            "{key} was created by another writer (it is at revision {current}) after this push \
             was planned against an absent key"
        ),
        (_, 0) => format!(
            "{key} was deleted after revision {planned}, the revision this push was planned \
             against"
        ),
        _ => format!(
            "{key} changed since revision {planned}, the revision this push was planned \
             against: it is now at revision {current} (another operator pushed first)"
        ),
    };
    format!(
        "push refused: {what}; nothing was written. Run push again to plan against the current \
         value."
    )
}

impl PreparedPush {
    /// Checks `file` with `pipeline` and plans it against the value of `key` in etcd, writing
    /// nothing. The value's format is the key's extension, else the file's.
    pub fn prepare<C: HotConfig>(
        pipeline: &Pipeline<C>,
        file: &Path,
        client: &EtcdClient,
        key: &str,
    ) -> Result<PreparedPush, PushError> {
        Self::prepare_at(pipeline, file, client, key, None)
    }

    /// Checks `file` as `node`'s override of `key` (`<key>/nodes/<node>`, layered over the
    /// shared value: the merged configuration is what is checked) and plans it against what the
    /// node reads now, writing nothing. The shared value must exist.
    pub fn prepare_for_node<C: HotConfig>(
        pipeline: &Pipeline<C>,
        file: &Path,
        client: &EtcdClient,
        key: &str,
        node: &str,
    ) -> Result<PreparedPush, PushError> {
        if node.is_empty() || node.contains('/') {
            return Err(PushError::Usage(format!(
                "`{node}` is not a node id (empty, or holds a `/`)"
            )));
        }
        Self::prepare_at(pipeline, file, client, key, Some(node))
    }

    /// Records who pushes and why with the value (see [`ChangeNote::check`] for what is refused
    /// at [`commit`](PreparedPush::commit)).
    pub fn with_change(mut self, change: ChangeNote) -> Self {
        self.change = Some(change);
        self
    }

    fn prepare_at<C: HotConfig>(
        pipeline: &Pipeline<C>,
        file: &Path,
        client: &EtcdClient,
        key: &str,
        node: Option<&str>,
    ) -> Result<PreparedPush, PushError> {
        if key.is_empty() || key.ends_with('/') {
            return Err(PushError::Usage(format!(
                "`{key}` is not a key: push writes one key (for a fleet that follows a prefix, \
                 push to a key inside it)"
            )));
        }
        let content = FileSource::new(file)
            .read()
            .map_err(|e| PushError::Invalid(e.into()))?;
        let format = value_format(key, file, content.layers[0].format)?;
        let text = content.layers[0].text.clone();
        // Read values as the nodes do: the same source, the same pipeline.
        let mut source = EtcdSource::new(client.clone(), key).format(format);
        let mut shared = Vec::new();
        let candidate = match node {
            None => content.clone(),
            Some(node) => {
                source = source.node_override(node);
                shared.push(client.get(key).map_err(PushError::Etcd)?.ok_or_else(|| {
                    PushError::Usage(format!(
                        "{key} does not exist: push the value every node shares first, then \
                         the override of {node}"
                    ))
                })?);
                overlaid(&source, &shared, file, &text)?
            }
        };
        let candidate = pipeline.load(&candidate).map_err(PushError::Invalid)?;
        let target = source.override_key().unwrap_or_else(|| key.to_string());
        let mut push = PreparedPush {
            key: target.clone(),
            node: node.map(str::to_string),
            change: None,
            revision: 0,
            plan: None,
            note: None,
            identity: content.identity.clone(),
            text,
            rollout_revision: 0,
        };
        if node.is_none() {
            push.rollout_revision = stopped_rollout(client, key)?;
        }
        let current = client.get(&target).map_err(PushError::Etcd)?;
        if let Some(entry) = &current {
            push.revision = entry.mod_revision;
        } else if node.is_none() {
            push.note = Some(format!("{key} does not exist yet: this push creates it"));
            return Ok(push);
        } else {
            push.note = Some(format!(
                "{target} does not exist yet: this push creates it (planned against the shared \
                 value)"
            ));
        }
        let live = source
            .content_of(shared.into_iter().chain(current).collect())
            .map_err(|e| e.problem)
            .and_then(|live| pipeline.load(&live).map_err(|e| e.to_string()));
        match live {
            Ok(live) => {
                let (changes, decided) = pipeline.decide(&live, candidate, Vec::new());
                push.plan = Some(Plan::decided(
                    Some(push.identity.clone()),
                    changes,
                    decided,
                    |diff| pipeline.scope_order(diff),
                ));
            }
            Err(problem) => {
                push.note = Some(format!(
                    "the value at revision {} cannot be used ({problem}); this push replaces it",
                    push.revision
                ));
            }
        }
        Ok(push)
    }

    /// Why running nodes would reject it, if they would.
    pub fn rejection(&self) -> Option<&str> {
        match self.plan.as_ref().map(|p| &p.decision) {
            Some(Decision::Reject { reason, .. }) => Some(reason),
            _ => None,
        }
    }

    /// Writes the value, and [`change`](PreparedPush::change) beside it, if the key is still at
    /// [`revision`](PreparedPush::revision) (one etcd transaction); returns the new revision.
    /// For the key every node shares, the write also requires that no staged rollout started
    /// since the plan, and deletes a stopped one's keys.
    pub fn commit(&self, client: &EtcdClient) -> Result<i64, PushError> {
        let mut writes = vec![(self.key.clone(), Some(self.text.clone().into_bytes()))];
        if let Some(change) = &self.change {
            change
                .check()
                .map_err(|e| PushError::Usage(format!("the change note: {e}")))?;
            let json = serde_json::to_vec(change)
                .map_err(|e| PushError::Usage(format!("the change note: {e}")))?;
            writes.push((beside::change_key(&self.key), Some(json)));
        }
        let mut guard = vec![(self.key.clone(), self.revision)];
        if self.node.is_none() {
            guard.push((beside::rollout_key(&self.key), self.rollout_revision));
            if self.rollout_revision > 0 {
                writes.push((beside::rollout_key(&self.key), None));
                writes.push((beside::candidate_key(&self.key), None));
            }
        }
        match client.write_if(&guard, writes).map_err(PushError::Etcd)? {
            Ok(revision) => Ok(revision),
            Err(now) if now[0] != self.revision => Err(PushError::Conflict {
                key: self.key.clone(),
                planned: self.revision,
                current: now[0],
            }),
            Err(_) => Err(PushError::Rollout(format!(
                "a staged rollout of {} was started or changed since the plan; nothing was                  written",
                self.key
            ))),
        }
    }
}

/// The mod revision of a stopped rollout of `key` (0: none); a running one refuses the push.
fn stopped_rollout(client: &EtcdClient, key: &str) -> Result<i64, PushError> {
    let Some(entry) = client
        .get(&beside::rollout_key(key))
        .map_err(PushError::Etcd)?
    else {
        return Ok(0);
    };
    match serde_json::from_slice::<RolloutState>(&entry.value) {
        Ok(state) if state.phase == RolloutPhase::Running => {
            Err(super::rollout_run::running_refusal(key, &state))
        }
        _ => Ok(entry.mod_revision),
    }
}

/// The content a node reads once `text` (from `file`) is its override over `shared`: the layer
/// named after the file, so a problem in it names the file's lines.
fn overlaid(
    source: &EtcdSource,
    shared: &[Entry],
    file: &Path,
    text: &str,
) -> Result<SourceContent, PushError> {
    let own = Entry {
        key: source.override_key().unwrap_or_default(),
        value: text.as_bytes().to_vec(),
        mod_revision: 0,
    };
    let mut entries = shared.to_vec();
    entries.push(own);
    let mut content = source
        .content_of(entries)
        .map_err(|e| PushError::Invalid(e.into()))?;
    if let Some(layer) = content.layers.last_mut() {
        layer.name = file.display().to_string();
    }
    Ok(content)
}
