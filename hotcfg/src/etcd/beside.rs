//! The keys hotcfg keeps beside a configuration key `K`:
//!
//! - `K/status/<node id>`: each node's report (see `status.rs`);
//! - `K/change`: who pushed the value and why ([`ChangeNote`] as JSON), written in the same
//!   transaction as the value, so it belongs to the value exactly when both have the same mod
//!   revision;
//! - `K/nodes/<node id>`: a node's override, layered over the shared value; its note is
//!   `K/nodes/<node id>/change`;
//! - `K/rollout`: a staged rollout's state (JSON, see `rollout.rs`), and `K/rollout/candidate`
//!   the value it rolls out.
//!
//! In a prefix, a key below another key (`K/...` beside `K`) is that key's, not a fragment.

use std::collections::HashSet;

use super::client::Entry;
use crate::source::ChangeNote;

/// The largest note read back: anything larger was not written by `push`.
const MAX_NOTE_JSON: usize = 4 * crate::source::MAX_NOTE_BYTES;

/// Where the note of the value at `key` is kept.
pub(crate) fn change_key(key: &str) -> String {
    format!("{key}/change")
}

/// Where the nodes' overrides of `key` are kept.
pub(crate) fn overrides_prefix(key: &str) -> String {
    format!("{key}/nodes/")
}

/// Where `node`'s override of `key` is kept.
pub(crate) fn override_key(key: &str, node: &str) -> String {
    format!("{}{node}", overrides_prefix(key))
}

/// Where a staged rollout of `key` keeps its state.
pub(crate) fn rollout_key(key: &str) -> String {
    format!("{key}/rollout")
}

/// Where a staged rollout of `key` keeps the value it rolls out.
pub(crate) fn candidate_key(key: &str) -> String {
    format!("{key}/rollout/candidate")
}

/// The note in `entry` when it was written with the value at `revision`; `None` when there is
/// none, it belongs to an older write (the value was written by other means since), or it is not
/// a note.
pub(crate) fn note_of(entry: Option<&Entry>, revision: i64) -> Option<ChangeNote> {
    let entry = entry.filter(|e| e.mod_revision == revision && e.value.len() <= MAX_NOTE_JSON)?;
    let note: ChangeNote = serde_json::from_slice(&entry.value).ok()?;
    note.check().ok().map(|()| note)
}

/// The keys of `keys` (a prefix's listing) that sit below another key of it.
pub(crate) fn below_another<'a>(
    keys: impl IntoIterator<Item = &'a str> + Clone,
) -> HashSet<String> {
    let all: HashSet<&str> = keys.clone().into_iter().collect();
    keys.into_iter()
        .filter(|key| {
            key.match_indices('/')
                .any(|(at, _)| at > 0 && all.contains(&key[..at]))
        })
        .map(str::to_string)
        .collect()
}

/// The nodes with an override of `key` and its revision, from a listing of its overrides prefix.
pub(crate) fn overrides(key: &str, entries: &[Entry]) -> Vec<(String, i64)> {
    let prefix = overrides_prefix(key);
    entries
        .iter()
        .filter_map(|e| {
            let node = e.key.strip_prefix(&prefix)?;
            (!node.is_empty() && !node.contains('/')).then(|| (node.to_string(), e.mod_revision))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, value: &str, mod_revision: i64) -> Entry {
        Entry {
            key: key.into(),
            value: value.into(),
            mod_revision,
        }
    }

    #[test]
    fn a_note_belongs_to_the_value_written_in_the_same_transaction_only() {
        let note = entry("k/change", r#"{"author":"a@h","reason":"why"}"#, 7);
        assert_eq!(
            note_of(Some(&note), 7),
            Some(ChangeNote::new("a@h").reason("why"))
        );
        assert_eq!(note_of(Some(&note), 8), None, "an older note");
        assert_eq!(note_of(None, 7), None);
        assert_eq!(note_of(Some(&entry("k/change", "not json", 7)), 7), None);
        let forged = entry("k/change", r#"{"author":"a\nb"}"#, 7);
        assert_eq!(note_of(Some(&forged), 7), None, "a note push would refuse");
    }

    #[test]
    fn keys_below_another_key_of_a_prefix_are_that_keys_and_overrides_are_listed_by_node() {
        let keys = ["p/a.toml", "p/a.toml/change", "p/b.toml", "p/c/d.toml"];
        let below = below_another(keys);
        assert_eq!(below, HashSet::from(["p/a.toml/change".to_string()]));
        let listing = [
            entry("k/nodes/n1", "", 3),
            entry("k/nodes/n1/change", "", 3),
            entry("k/nodes/n2", "", 5),
        ];
        assert_eq!(
            overrides("k", &listing),
            [("n1".to_string(), 3), ("n2".to_string(), 5)]
        );
        assert_eq!(override_key("k", "n1"), "k/nodes/n1");
        assert_eq!(change_key("k/nodes/n1"), "k/nodes/n1/change");
    }
}
