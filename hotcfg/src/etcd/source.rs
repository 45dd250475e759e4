//! [`EtcdSource`]: configuration read from one etcd key, or from the keys under a prefix.

use std::fmt;

use sha2::{Digest, Sha256};

use super::beside;
use super::client::{Entry, EtcdClient, EtcdError, Listing, Swap};
use super::rollout::admitted_candidate;
use crate::source::{hex, sha256_hex, SourceErrorKind};
use crate::{Format, Layer, Source, SourceContent, SourceError, SourceIdentity};

/// Configuration read from etcd: one key, or every key under a prefix merged in key order (later
/// keys override earlier ones, like file overlays).
///
/// The format comes from the key's extension (`.toml`, `.yaml`/`.yml`, `.json`), else from
/// [`format`](EtcdSource::format), else TOML. Each read is a linearizable range read, so it sees
/// every write acknowledged before it started. The identity of what was read is
/// `etcd:<key>`, the SHA-256 of the bytes and the mod revision (for a prefix, the newest mod
/// revision among its keys).
///
/// Reading one key, the source also reads, in the same transaction, who pushed the value and why
/// (`<key>/change`, written by `push` with the value: [`SourceIdentity::change`]) and, with
/// [`node_override`](EtcdSource::node_override), this node's own layer `<key>/nodes/<node id>`.
/// Reading a prefix, a key below another key of the prefix (`<key>/...`) is that key's, not a
/// fragment: it is skipped.
///
/// A read that cannot reach etcd is an error like any other unreadable source
/// ([`SourceErrorKind::Unavailable`]): the engine keeps the live configuration and records a
/// failed event. An error of a read etcd answered carries the store revision it saw
/// ([`SourceError::revision`]).
///
/// ```
/// use hotcfg::etcd::{EtcdClient, EtcdSource};
/// use hotcfg::{Format, Source};
///
/// let client = EtcdClient::new(["127.0.0.1:2379"])?;
/// let source = EtcdSource::new(client.clone(), "apps/billing/config.toml");
/// assert_eq!(source.format_in_use(), Format::Toml);
/// assert_eq!(source.default_status_prefix(), "apps/billing/config.toml/status/");
///
/// let fragments = EtcdSource::prefix(client, "apps/billing/conf.d/").format(Format::Yaml);
/// assert_eq!(fragments.name(), "etcd:apps/billing/conf.d/*");
/// assert_eq!(fragments.default_status_prefix(), "apps/billing/conf.d.status/");
/// # Ok::<(), hotcfg::etcd::EtcdError>(())
/// ```
#[derive(Clone)]
pub struct EtcdSource {
    client: EtcdClient,
    key: String,
    prefix: bool,
    format: Option<Format>,
    exclude: Vec<String>,
    max_bytes: u64,
    /// The node whose override (`<key>/nodes/<node>`) is layered over the key.
    node: Option<String>,
}

impl fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdSource")
            .field("endpoints", &self.client.endpoints())
            .field("key", &self.key)
            .field("prefix", &self.prefix)
            .field("format", &self.format)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl EtcdSource {
    /// Reads the value of `key`.
    pub fn new(client: EtcdClient, key: impl Into<String>) -> Self {
        Self::build(client, key.into(), false)
    }

    /// Reads every key under `prefix`, merged in key order. Keys under the status prefix (when it
    /// lies inside this prefix) are skipped.
    pub fn prefix(client: EtcdClient, prefix: impl Into<String>) -> Self {
        Self::build(client, prefix.into(), true)
    }

    /// [`EtcdSource::prefix`] when `key` ends with `/`, else [`EtcdSource::new`]: the convention of
    /// the `--key` options of the task daemon and the operator commands.
    pub fn for_key(client: EtcdClient, key: impl Into<String>) -> Self {
        let key = key.into();
        let prefix = key.ends_with('/');
        Self::build(client, key, prefix)
    }

    fn build(client: EtcdClient, key: String, prefix: bool) -> Self {
        let status = default_status_prefix(&key, prefix);
        EtcdSource {
            client,
            key,
            prefix,
            format: None,
            exclude: vec![status],
            max_bytes: crate::DEFAULT_MAX_BYTES,
            node: None,
        }
    }

    /// Layers this node's override, the key `<key>/nodes/<node>` when it exists, over the key's
    /// value: the same loader and validation read both, as a file and its overlay; an error in
    /// the override names its key. The follower then also follows the override. For a key, not
    /// a prefix (ignored for a prefix).
    ///
    /// ```
    /// use hotcfg::etcd::{EtcdClient, EtcdSource};
    ///
    /// let client = EtcdClient::new(["127.0.0.1:2379"])?;
    /// let source = EtcdSource::new(client, "apps/billing/config.toml").node_override("billing-2");
    /// assert_eq!(source.override_key().as_deref(), Some("apps/billing/config.toml/nodes/billing-2"));
    /// # Ok::<(), hotcfg::etcd::EtcdError>(())
    /// ```
    pub fn node_override(self, node: impl Into<String>) -> Self {
        self.for_node(node)
    }

    /// This source reads for the node `node`: its override (as
    /// [`node_override`](EtcdSource::node_override)), and its admission to a staged rollout
    /// ([`Rollout`](super::Rollout)): while a rollout runs and admits the node, the source reads
    /// the candidate (`<key>/rollout/candidate`) in place of the key's value. For a key, not a
    /// prefix.
    ///
    /// ```
    /// use hotcfg::etcd::{EtcdClient, EtcdSource};
    ///
    /// let client = EtcdClient::new(["127.0.0.1:2379"])?;
    /// let source = EtcdSource::new(client, "apps/billing/config.toml").for_node("billing-2");
    /// assert_eq!(source.node(), Some("billing-2"));
    /// # Ok::<(), hotcfg::etcd::EtcdError>(())
    /// ```
    pub fn for_node(mut self, node: impl Into<String>) -> Self {
        self.node = Some(node.into());
        self
    }

    /// The node this source reads for, if named.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The key of this node's override, when the source layers one.
    pub fn override_key(&self) -> Option<String> {
        match (&self.node, self.prefix) {
            (Some(node), false) => Some(beside::override_key(&self.key, node)),
            _ => None,
        }
    }

    /// Parses values whose key has no known extension as `format` (default TOML).
    pub fn format(mut self, format: Format) -> Self {
        self.format = Some(format);
        self
    }

    /// Also skips keys under `prefix` when reading a prefix (another writer's keys).
    pub fn exclude(mut self, prefix: impl Into<String>) -> Self {
        self.exclude.push(prefix.into());
        self
    }

    /// Refuses values larger than `max` bytes (default [`DEFAULT_MAX_BYTES`](crate::DEFAULT_MAX_BYTES)).
    pub fn max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    /// The key or prefix.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this source reads a prefix.
    pub fn is_prefix(&self) -> bool {
        self.prefix
    }

    /// The client it reads with.
    pub fn client(&self) -> &EtcdClient {
        &self.client
    }

    /// The format of a value whose key has no known extension.
    pub fn format_in_use(&self) -> Format {
        self.format_of(&self.key)
    }

    /// Where nodes report their status by default: `<key>/status/` for a key; for a prefix
    /// `<prefix without its trailing slash>.status/`, outside the prefix.
    pub fn default_status_prefix(&self) -> String {
        default_status_prefix(&self.key, self.prefix)
    }

    /// Whether a key a read or watch of [`watches_prefix`](EtcdSource::watches_prefix) meets is
    /// not part of the configuration: a status report, another writer's keys; beside a key with
    /// an override, anything but the key and the override.
    pub(crate) fn is_excluded(&self, key: &str) -> bool {
        if self.prefix {
            return self.exclude.iter().any(|p| key.starts_with(p.as_str()));
        }
        match self.override_key() {
            Some(own) => {
                key != self.key
                    && key != own
                    && key != beside::rollout_key(&self.key)
                    && key != beside::candidate_key(&self.key)
            }
            None => false,
        }
    }

    /// Whether following this source means watching every key that starts with its key: a
    /// prefix, or a key with an override beside it.
    pub(crate) fn watches_prefix(&self) -> bool {
        self.prefix || self.override_key().is_some()
    }

    fn format_of(&self, key: &str) -> Format {
        Format::from_path(key.as_ref())
            .or(self.format)
            .unwrap_or(Format::Toml)
    }

    /// Reads asynchronously (on the client's runtime).
    async fn read_async(&self) -> Result<SourceContent, SourceError> {
        if !self.prefix {
            return self.read_key().await;
        }
        let listing = self
            .client
            .range(&self.key, self.prefix)
            .await
            .map_err(|err| failed_read(self.name(), &err))?;
        let revision = listing.revision;
        self.content(listing)
            .map_err(|err| err.at_revision(revision))
    }

    /// One key with its note, and this node's override with its note, as of one revision. The
    /// identity carries the note of the newer of the two layers. A running rollout that admits
    /// this node replaces the key's value with its candidate (and note).
    async fn read_key(&self) -> Result<SourceContent, SourceError> {
        let mut keys = vec![self.key.clone(), beside::change_key(&self.key)];
        if let Some(own) = self.override_key() {
            keys.push(beside::change_key(&own));
            keys.push(own);
            keys.push(beside::rollout_key(&self.key));
            keys.push(beside::candidate_key(&self.key));
        }
        let (found, revision) = self
            .client
            .get_each(&keys)
            .await
            .map_err(|err| failed_read(self.name(), &err))?;
        let mut found = found.into_iter();
        let (Some(value), value_note) = (found.next().flatten(), found.next().flatten()) else {
            return Err(self.not_found(revision));
        };
        let (own_note, own) = (found.next().flatten(), found.next().flatten());
        let (rollout, candidate) = (found.next().flatten(), found.next().flatten());
        let admitted = self
            .node
            .as_deref()
            .and_then(|node| admitted_candidate(node, rollout, candidate));
        let (value, value_note) = admitted.unwrap_or((value, value_note));
        let note = match &own {
            Some(own) if own.mod_revision > value.mod_revision => {
                beside::note_of(own_note.as_ref(), own.mod_revision)
            }
            _ => beside::note_of(value_note.as_ref(), value.mod_revision),
        };
        let entries = std::iter::once(value).chain(own).collect();
        let mut content = self
            .content(Listing { entries, revision })
            .map_err(|err| err.at_revision(revision))?;
        content.identity.change = note;
        Ok(content)
    }

    /// The content of entries read elsewhere (by a push planning against them: the key's value,
    /// then this node's override), exactly as a read of this source would give it.
    pub(crate) fn content_of(&self, entries: Vec<Entry>) -> Result<SourceContent, SourceError> {
        let revision = entries.iter().map(|e| e.mod_revision).max().unwrap_or(0);
        self.content(Listing { entries, revision })
    }

    fn content(&self, listing: Listing) -> Result<SourceContent, SourceError> {
        let below = match self.prefix {
            true => beside::below_another(listing.entries.iter().map(|e| e.key.as_str())),
            false => Default::default(),
        };
        let entries: Vec<_> = listing
            .entries
            .into_iter()
            .filter(|e| !self.is_excluded(&e.key) && !below.contains(&e.key))
            .collect();
        if entries.is_empty() {
            return Err(self.not_found(listing.revision));
        }
        // One layer read from another key than this one (a rollout's candidate) is hashed with
        // its key, so the same bytes read from the key later are a new identity.
        let keyed = entries.first().is_some_and(|e| e.key != self.key);
        let mut layers = Vec::with_capacity(entries.len());
        let mut hasher = Sha256::new();
        let mut revision = 0;
        for entry in entries {
            revision = revision.max(entry.mod_revision);
            let key = entry.key.clone();
            let layer = self.layer(entry)?;
            // Length-prefix keys and values so moving bytes between keys changes the hash.
            hasher.update((key.len() as u64).to_le_bytes());
            hasher.update(key.as_bytes());
            hasher.update((layer.text.len() as u64).to_le_bytes());
            hasher.update(layer.text.as_bytes());
            layers.push(layer);
        }
        let sha256 = if self.prefix || layers.len() > 1 || keyed {
            hex(&hasher.finalize())
        } else {
            sha256_hex(layers[0].text.as_bytes())
        };
        Ok(SourceContent {
            layers,
            identity: SourceIdentity {
                path: self.identity_path(),
                sha256,
                revision: Some(revision),
                change: None,
            },
        })
    }

    /// The error for a key (or prefix) with nothing under it at store `revision`.
    fn not_found(&self, revision: i64) -> SourceError {
        let problem = if self.prefix {
            format!("no keys under this prefix in etcd (store revision {revision})")
        } else {
            format!("the key does not exist in etcd (store revision {revision})")
        };
        SourceError::new(self.name(), SourceErrorKind::NotFound, problem)
    }

    /// One key's value as a layer: within the size limit, UTF-8, in the format its key names.
    fn layer(&self, entry: Entry) -> Result<Layer, SourceError> {
        let name = format!("etcd:{}", entry.key);
        if entry.value.len() as u64 > self.max_bytes {
            let problem = format!(
                "is {} bytes, above the limit of {} bytes",
                entry.value.len(),
                self.max_bytes
            );
            return Err(SourceError::new(name, SourceErrorKind::TooLarge, problem));
        }
        let format = self.format_of(&entry.key);
        let text = String::from_utf8(entry.value).map_err(|err| {
            let offset = err.utf8_error().valid_up_to();
            let problem = format!(
                "not valid UTF-8 (byte offset {offset}, revision {})",
                entry.mod_revision
            );
            SourceError::new(&name, SourceErrorKind::NotText, problem)
        })?;
        Ok(Layer { name, format, text })
    }

    fn identity_path(&self) -> String {
        if self.prefix {
            format!("etcd:{}*", self.key)
        } else {
            format!("etcd:{}", self.key)
        }
    }
}

pub(crate) fn default_status_prefix(key: &str, prefix: bool) -> String {
    if prefix {
        format!("{}.status/", key.trim_end_matches('/'))
    } else {
        format!("{key}/status/")
    }
}

/// A read etcd did not answer, or refused: unreachable is [`SourceErrorKind::Unavailable`].
fn failed_read(name: String, err: &EtcdError) -> SourceError {
    let kind = match err {
        EtcdError::Unreachable { .. } => SourceErrorKind::Unavailable,
        EtcdError::TooLarge { .. } => SourceErrorKind::TooLarge,
        _ => SourceErrorKind::Unreadable,
    };
    SourceError::new(name, kind, err.to_string())
}

impl Source for EtcdSource {
    fn read(&self) -> Result<SourceContent, SourceError> {
        let this = self.clone();
        let name = self.name();
        self.client
            .block_on(async move { Ok(this.read_async().await) })
            .unwrap_or_else(|err| Err(failed_read(name, &err)))
    }

    fn name(&self) -> String {
        self.identity_path()
    }

    /// A prefix reads any key under it but the excluded ones; a key reads itself, a rollout's
    /// candidate in its place, and, with an override, this node's override only.
    fn reads_layer(&self, layer: &str) -> bool {
        let Some(key) = layer.strip_prefix("etcd:") else {
            return false;
        };
        match self.prefix {
            true => key.starts_with(self.key.as_str()) && !self.is_excluded(key),
            false => {
                key == self.key
                    || key == beside::candidate_key(&self.key)
                    || self.override_key().as_deref() == Some(key)
            }
        }
    }

    /// Writes the version back to the key with a compare-and-swap on the revision the engine has
    /// live (as a push does), with its [`ChangeNote`](crate::ChangeNote) (a revert's: who, and
    /// `revert to generation N`) beside it in the same transaction: refused, writing nothing,
    /// when another writer changed the key since, and for a prefix (many keys, not one write).
    fn restore(
        &self,
        content: &SourceContent,
        live: Option<&SourceIdentity>,
    ) -> Result<(), SourceError> {
        let name = self.name();
        let refuse =
            |problem: String| SourceError::new(&name, SourceErrorKind::Unsupported, problem);
        if self.prefix {
            return Err(refuse(
                "a prefix is many keys, not one write: push the version to each key".into(),
            ));
        }
        let layer = match content.layers.as_slice() {
            [layer] if layer.name == name => layer,
            _ => {
                return Err(refuse(format!(
                    "the version to restore came from {}, not from this key",
                    content.identity.path
                )))
            }
        };
        let expected = live.and_then(|identity| identity.revision).unwrap_or(0);
        // Who restored it and why, beside the value in the same transaction, as a push writes it.
        let note = content.identity.change.iter().filter_map(|note| {
            let json = serde_json::to_vec(note).ok()?;
            Some((beside::change_key(&self.key), json))
        });
        let text = layer.text.clone().into_bytes();
        match self
            .client
            .put_if_revision_with(&self.key, text, expected, note.collect())
        {
            Ok(Swap::Written(_)) => Ok(()),
            Ok(Swap::Conflict { current }) => Err(refuse(format!(
                "the key changed since revision {expected}, the live one (it is at revision \
                 {current}): another writer; nothing was written"
            ))),
            Err(err) => Err(failed_read(name.clone(), &err)),
        }
    }
}

#[cfg(test)]
mod tests;
