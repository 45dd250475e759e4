//! Pushing a configuration file to an etcd key: check it, plan it against the value there (the
//! fleet's desired state), then write it with a compare-and-swap on the revision planned against,
//! so that of two operators pushing at once, one is refused instead of silently overwritten.

use std::path::Path;

use super::client::{EtcdClient, EtcdError, Swap};
use super::source::EtcdSource;
use crate::engine::Pipeline;
use crate::hot_reload::HotConfig;
use crate::load::{ConfigError, Format};
use crate::plan::{Decision, Plan};
use crate::source::{FileSource, Source, SourceIdentity};

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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PreparedPush {
    /// The key.
    pub key: String,
    /// The mod revision of the value planned against (0: the key did not exist).
    pub revision: i64,
    /// The plan against the value in etcd; `None` when there was no usable value there.
    pub plan: Option<Plan>,
    /// Why there is no plan: the key is absent, or its value cannot be used.
    pub note: Option<String>,
    /// The pushed file's identity.
    pub identity: SourceIdentity,
    text: String,
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
        let candidate = pipeline.load(&content).map_err(PushError::Invalid)?;
        let mut push = PreparedPush {
            key: key.to_string(),
            revision: 0,
            plan: None,
            note: None,
            identity: content.identity.clone(),
            text: content.layers[0].text.clone(),
        };
        let Some(entry) = client.get(key).map_err(PushError::Etcd)? else {
            push.note = Some(format!("{key} does not exist yet: this push creates it"));
            return Ok(push);
        };
        push.revision = entry.mod_revision;
        // Read the value as the nodes do: the same source, the same pipeline.
        let source = EtcdSource::new(client.clone(), key).format(format);
        let live = source
            .content_of(entry)
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

    /// Writes the value if the key is still at [`revision`](PreparedPush::revision) (one etcd
    /// transaction); returns the new revision.
    pub fn commit(&self, client: &EtcdClient) -> Result<i64, PushError> {
        match client
            .put_if_revision(&self.key, self.text.as_bytes(), self.revision)
            .map_err(PushError::Etcd)?
        {
            Swap::Written(revision) => Ok(revision),
            Swap::Conflict { current } => Err(PushError::Conflict {
                key: self.key.clone(),
                planned: self.revision,
                current,
            }),
        }
    }
}
