//! `#[reload(nested)]` on lists: `Vec<T>` and `Option<Vec<T>>` of a type deriving `HotReload`,
//! diffed element by element, by position (`routes.1.upstream`) or, with
//! `#[reload(nested, key = "field")]`, by the value of a key field (`routes.api.upstream`), so
//! that inserting an element at the front is one addition rather than a change to every element.

use std::collections::{BTreeMap, HashSet};

use crate::__private::{diff_entries, entries_schema, holds_secret, Nested};
use crate::diff::{record_presence, FieldPath};
use crate::hot_reload::WatchedFile;
use crate::{Change, ChangeKind, FieldInfo, HotReload};

/// How the elements of a list are told apart: the key field's value, rendered.
pub type ElementKey<'a, T> = &'a dyn Fn(&T) -> String;

/// The key of the elements of `L`, as the derive writes it: the closure's parameter type comes
/// from `L`, so the closure needs no annotation.
pub fn element_key<L: NestedList>(
    key: &dyn Fn(&L::Item) -> String,
) -> Option<ElementKey<'_, L::Item>> {
    Some(key)
}

/// A list of nested values, with or without a key field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be matched by `key`: only a `Vec` or `Option<Vec>` of a type deriving `HotReload` can",
    label = "expected a `Vec<T>` or `Option<Vec<T>>` where `T` derives `HotReload`",
    note = "a map is matched by its own keys already: remove `key`"
)]
pub trait NestedList: Sized {
    /// The element type.
    type Item: HotReload;
    /// Diffs two lists, matching elements by `key` (by position when `None`).
    fn diff_list(
        &self,
        new: &Self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, Self::Item>>,
        out: &mut Vec<Change>,
    );
    /// Takes hot fields from `new`, keeps restart-only fields of `self`, matching as `diff_list`.
    fn merge_list(&self, new: &Self, key: Option<ElementKey<'_, Self::Item>>) -> Self;
    /// Appends the watched files of every element, under its position or key.
    fn watched_list(
        &self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, Self::Item>>,
        out: &mut Vec<WatchedFile>,
    );
}

/// The segment each element is recorded under: its key, or its position when there is no key or
/// when two elements share one (the key cannot tell them apart then).
fn segments<T>(items: &[T], key: Option<ElementKey<'_, T>>) -> Option<Vec<String>> {
    let keys: Vec<String> = items.iter().map(key?).collect();
    let mut seen = HashSet::with_capacity(keys.len());
    keys.iter().all(|k| seen.insert(k)).then_some(keys)
}

fn positions(len: usize) -> Vec<String> {
    (0..len).map(|i| i.to_string()).collect()
}

/// Both lists' elements by segment, and each list's segments in order.
struct Matched<'a, T> {
    old_order: Vec<String>,
    new_order: Vec<String>,
    old: BTreeMap<String, &'a T>,
    new: BTreeMap<String, &'a T>,
}

impl<'a, T> Matched<'a, T> {
    fn new(old: &'a [T], new: &'a [T], key: Option<ElementKey<'_, T>>) -> Self {
        let (old_order, new_order) = match (segments(old, key), segments(new, key)) {
            (Some(o), Some(n)) => (o, n),
            _ => (positions(old.len()), positions(new.len())),
        };
        Matched {
            old: old_order.iter().cloned().zip(old).collect(),
            new: new_order.iter().cloned().zip(new).collect(),
            old_order,
            new_order,
        }
    }

    /// Every segment once: `old`'s in order, then those only in `new`.
    fn all(&self) -> impl Iterator<Item = &String> {
        let added = self.new_order.iter().filter(|k| !self.old.contains_key(*k));
        self.old_order.iter().chain(added)
    }
}

impl<T: HotReload> NestedList for Vec<T> {
    type Item = T;

    fn diff_list(
        &self,
        new: &Self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, T>>,
        out: &mut Vec<Change>,
    ) {
        if self == new {
            return;
        }
        let m = Matched::new(self, new, key);
        let get_old = |k: &String| m.old.get(k).copied();
        let get_new = |k: &String| m.new.get(k).copied();
        diff_entries(m.all(), get_old, get_new, path, out);
    }

    fn merge_list(&self, new: &Self, key: Option<ElementKey<'_, T>>) -> Self {
        let m = Matched::new(self, new, key);
        // Restart-only elements keep `self`'s presence and order; hot ones follow `new`.
        if T::CLASS.is_restart() {
            let merged = |k: &String| match m.new.get(k) {
                Some(next) => m.old[k].merge_hot(next),
                None => m.old[k].clone(),
            };
            m.old_order.iter().map(merged).collect()
        } else {
            let merged = |k: &String| match m.old.get(k) {
                Some(cur) => cur.merge_hot(m.new[k]),
                None => m.new[k].clone(),
            };
            m.new_order.iter().map(merged).collect()
        }
    }

    fn watched_list(
        &self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, T>>,
        out: &mut Vec<WatchedFile>,
    ) {
        let names = segments(self, key).unwrap_or_else(|| positions(self.len()));
        for (name, item) in names.iter().zip(self) {
            item.watched_files_into(&path.join(name), out);
        }
    }
}

impl<T: HotReload> NestedList for Option<Vec<T>> {
    type Item = T;

    fn diff_list(
        &self,
        new: &Self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, T>>,
        out: &mut Vec<Change>,
    ) {
        match (self, new) {
            (Some(old), Some(new)) => old.diff_list(new, path, key, out),
            (None, Some(list)) | (Some(list), None) => {
                let kind = if self.is_none() {
                    ChangeKind::Added
                } else {
                    ChangeKind::Removed
                };
                let secret = holds_secret::<T>();
                record_presence(path, T::CLASS, secret, kind, list, out)
            }
            (None, None) => {}
        }
    }

    fn merge_list(&self, new: &Self, key: Option<ElementKey<'_, T>>) -> Self {
        match (self, new) {
            (Some(old), Some(new)) => Some(old.merge_list(new, key)),
            // Appearing or disappearing as a whole follows the element type's class.
            _ if T::CLASS.is_restart() => self.clone(),
            _ => new.clone(),
        }
    }

    fn watched_list(
        &self,
        path: &FieldPath<'_>,
        key: Option<ElementKey<'_, T>>,
        out: &mut Vec<WatchedFile>,
    ) {
        if let Some(list) = self {
            list.watched_list(path, key, out);
        }
    }
}

/// Lists without a key field: by position.
macro_rules! nested_by_position {
    ($($list:ty),*) => {$(
        impl<T: HotReload> Nested for $list {
            fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>) {
                self.diff_list(new, path, None, out);
            }
            fn schema_nested(prefix: &str, doc: &'static str, out: &mut Vec<FieldInfo>) {
                entries_schema::<T>(prefix, doc, out);
            }
            fn merge_nested(&self, new: &Self) -> Self {
                self.merge_list(new, None)
            }
            fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
                self.watched_list(path, None, out);
            }
        }
    )*};
}

nested_by_position!(Vec<T>, Option<Vec<T>>);
