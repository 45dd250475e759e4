//! Support for the code `#[derive(HotReload)]` generates. Not a public API: names here may
//! change in any release.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Display;
use std::hash::{BuildHasher, Hash};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub use crate::diff::FieldPath;
pub use crate::nested_list::{element_key, ElementKey, NestedList};
pub use crate::{Change, ChangeKind, Class, FieldInfo, HotReload, WatchedFile};

use crate::diff::{join_path, record_leaf, record_presence};

/// What every classified (non-nested) field's type must be: comparable and renderable.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be diffed: a `#[reload]` field needs `PartialEq` and `serde::Serialize`",
    label = "this field's type needs `PartialEq` and `serde::Serialize`",
    note = "derive or implement `PartialEq` and `serde::Serialize` for `{Self}`"
)]
pub trait Leaf: PartialEq + serde::Serialize {}
impl<T: PartialEq + serde::Serialize + ?Sized> Leaf for T {}

/// Compile-time check emitted for each leaf field, spanned at its type.
pub const fn assert_leaf<T: Leaf + ?Sized>() {}

/// Whether a classified field changed: all the work an unchanged field costs. The generated
/// diff calls this first and builds the field's path only inside the branch (issue 19).
#[inline(always)]
pub fn leaf_changed<T: Leaf + ?Sized>(old: &T, new: &T) -> bool {
    old != new
}

/// Records a classified field that [`leaf_changed`]. Out of line and cold, so the comparisons
/// of the unchanged fields around it stay one tight sequence.
#[cold]
#[inline(never)]
pub fn diff_leaf<T: Leaf + ?Sized>(
    old: &T,
    new: &T,
    path: &FieldPath<'_>,
    class: Class,
    secret: bool,
    out: &mut Vec<Change>,
) {
    record_leaf(path, class, secret, old, new, out);
}

/// A schema row for one classified field.
pub fn leaf_info(
    prefix: &str,
    name: &str,
    class: Class,
    doc: &'static str,
    secret: bool,
    watch: bool,
    type_name: &'static str,
) -> FieldInfo {
    FieldInfo {
        path: join_path(prefix, name),
        class,
        doc,
        secret,
        watch,
        type_name,
    }
}

/// Joins a schema path.
pub fn join(prefix: &str, name: &str) -> String {
    join_path(prefix, name)
}

/// Builds and caches a type's schema.
pub fn schema_of<T: HotReload>(cell: &'static OnceLock<Vec<FieldInfo>>) -> &'static [FieldInfo] {
    cell.get_or_init(|| {
        let mut out = Vec::new();
        T::schema_into("", &mut out);
        out
    })
}

/// What a `#[reload(nested)]` field's type must be: a struct deriving `HotReload`, or a `Box`,
/// `Option`, `Vec`, `Option<Vec>` or map of one.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be `#[reload(nested)]`: it is neither a type deriving `HotReload` nor a supported container of one",
    label = "expected a type deriving `HotReload`, or a `Box`, `Option`, `Vec`, `Option<Vec>`, `BTreeMap` or `HashMap` of one",
    note = "derive `HotReload` on the element type and hold it in a supported container, or classify the field with `scope = \"...\"` or `restart` (diffed as one value)"
)]
pub trait Nested: Sized + PartialEq {
    /// Whether the field changed at all: one `PartialEq` comparison, the whole cost of an
    /// unchanged nested field (the generated diff calls [`diff_nested`](Nested::diff_nested)
    /// only when this is `true`).
    #[inline(always)]
    fn changed(&self, new: &Self) -> bool {
        self != new
    }
    /// Diffs the field, recursing into the nested type's own classification.
    fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>);
    /// Appends the nested fields' schema; `doc` describes the field itself (shown on the row of
    /// a map entry or optional section).
    fn schema_nested(prefix: &str, doc: &'static str, out: &mut Vec<FieldInfo>);
    /// Takes hot fields from `new`, keeps restart-only fields of `self`.
    fn merge_nested(&self, new: &Self) -> Self;
    /// Appends watched files of the nested value.
    fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>);
}

impl<T: HotReload> Nested for T {
    #[inline]
    fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>) {
        self.diff_into(new, path, out);
    }
    fn schema_nested(prefix: &str, _doc: &'static str, out: &mut Vec<FieldInfo>) {
        T::schema_into(prefix, out);
    }
    fn merge_nested(&self, new: &Self) -> Self {
        self.merge_hot(new)
    }
    fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
        self.watched_files_into(path, out);
    }
}

fn entry_info<T: HotReload>(path: String, doc: &'static str) -> FieldInfo {
    FieldInfo {
        path,
        class: T::CLASS,
        doc,
        secret: false,
        watch: false,
        type_name: std::any::type_name::<T>(),
    }
}

/// The schema rows of a collection of nested values: the entry itself (`routes.*`) and its fields.
pub(crate) fn entries_schema<T: HotReload>(
    prefix: &str,
    doc: &'static str,
    out: &mut Vec<FieldInfo>,
) {
    let entry = join_path(prefix, "*");
    out.push(entry_info::<T>(entry.clone(), doc));
    T::schema_into(&entry, out);
}

/// Whether a value of `T` holds a `#[reload(secret)]` field anywhere: such a value appearing or
/// disappearing as a whole is rendered redacted, or the secret would be shown with it.
pub(crate) fn holds_secret<T: HotReload>() -> bool {
    T::schema().iter().any(|field| field.secret)
}

impl<T: HotReload> Nested for Option<T> {
    fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>) {
        match (self, new) {
            (Some(old), Some(new)) => old.diff_into(new, path, out),
            (None, Some(new)) => {
                let secret = holds_secret::<T>();
                record_presence(path, T::CLASS, secret, ChangeKind::Added, new, out)
            }
            (Some(old), None) => {
                let secret = holds_secret::<T>();
                record_presence(path, T::CLASS, secret, ChangeKind::Removed, old, out)
            }
            (None, None) => {}
        }
    }
    fn schema_nested(prefix: &str, doc: &'static str, out: &mut Vec<FieldInfo>) {
        out.push(entry_info::<T>(prefix.to_string(), doc));
        T::schema_into(prefix, out);
    }
    fn merge_nested(&self, new: &Self) -> Self {
        match (self, new) {
            (Some(old), Some(new)) => Some(old.merge_hot(new)),
            // Appearing or disappearing as a whole follows the nested type's own class.
            _ if T::CLASS.is_restart() => self.clone(),
            _ => new.clone(),
        }
    }
    fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
        if let Some(value) = self {
            value.watched_files_into(path, out);
        }
    }
}

/// Diffs two maps of nested values entry by entry, in the order `keys` gives.
pub(crate) fn diff_entries<'k, K, T, I>(
    keys: I,
    get_old: impl Fn(&K) -> Option<&'k T>,
    get_new: impl Fn(&K) -> Option<&'k T>,
    path: &FieldPath<'_>,
    out: &mut Vec<Change>,
) where
    K: Display + 'k,
    T: HotReload,
    I: Iterator<Item = &'k K>,
{
    for key in keys {
        let (old, new) = (get_old(key), get_new(key));
        if old == new {
            continue;
        }
        let name = key.to_string();
        let entry = path.join(&name);
        match (old, new) {
            (Some(old), Some(new)) => old.diff_into(new, &entry, out),
            (None, Some(new)) => {
                let secret = holds_secret::<T>();
                record_presence(&entry, T::CLASS, secret, ChangeKind::Added, new, out)
            }
            (Some(old), None) => {
                let secret = holds_secret::<T>();
                record_presence(&entry, T::CLASS, secret, ChangeKind::Removed, old, out)
            }
            (None, None) => {}
        }
    }
}

impl<K: Ord + Display + Clone, T: HotReload> Nested for BTreeMap<K, T> {
    fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>) {
        let keys: BTreeSet<&K> = self.keys().chain(new.keys()).collect();
        diff_entries(keys.into_iter(), |k| self.get(k), |k| new.get(k), path, out);
    }
    fn schema_nested(prefix: &str, doc: &'static str, out: &mut Vec<FieldInfo>) {
        entries_schema::<T>(prefix, doc, out);
    }
    fn merge_nested(&self, new: &Self) -> Self {
        merge_entries(self.iter(), new.iter(), |k| self.get(k), |k| new.get(k))
    }
    fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
        for (key, value) in self {
            let name = key.to_string();
            value.watched_files_into(&path.join(&name), out);
        }
    }
}

impl<K, T, S> Nested for HashMap<K, T, S>
where
    K: Eq + Hash + Ord + Display + Clone,
    T: HotReload,
    S: BuildHasher + Default + Clone,
{
    fn diff_nested(&self, new: &Self, path: &FieldPath<'_>, out: &mut Vec<Change>) {
        // Sorted, so the same edit always gives the same diff.
        let keys: BTreeSet<&K> = self.keys().chain(new.keys()).collect();
        diff_entries(keys.into_iter(), |k| self.get(k), |k| new.get(k), path, out);
    }
    fn schema_nested(prefix: &str, doc: &'static str, out: &mut Vec<FieldInfo>) {
        entries_schema::<T>(prefix, doc, out);
    }
    fn merge_nested(&self, new: &Self) -> Self {
        merge_entries(self.iter(), new.iter(), |k| self.get(k), |k| new.get(k))
    }
    fn watched_nested(&self, path: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
        let mut entries: Vec<_> = self.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        for (key, value) in entries {
            let name = key.to_string();
            value.watched_files_into(&path.join(&name), out);
        }
    }
}

/// Merges two maps of nested values: entries in both are merged field by field; entries only in
/// one follow the value type's class (hot: take `new`'s presence; restart: keep `current`'s).
fn merge_entries<'a, K, T, M>(
    current: impl Iterator<Item = (&'a K, &'a T)>,
    new: impl Iterator<Item = (&'a K, &'a T)>,
    in_current: impl Fn(&K) -> Option<&'a T>,
    in_new: impl Fn(&K) -> Option<&'a T>,
) -> M
where
    K: Clone + 'a,
    T: HotReload,
    M: FromIterator<(K, T)>,
{
    let hot = !T::CLASS.is_restart();
    let from_new = new.filter_map(|(key, value)| match in_current(key) {
        Some(cur) => Some((key.clone(), cur.merge_hot(value))),
        None if hot => Some((key.clone(), value.clone())),
        None => None,
    });
    let kept = current
        .filter(|(key, _)| !hot && in_new(key).is_none())
        .map(|(key, value)| (key.clone(), value.clone()));
    from_new.chain(kept).collect()
}

/// What a `#[reload(watch)]` field's type must be.
#[diagnostic::on_unimplemented(
    message = "`#[reload(watch)]` needs a path field, and `{Self}` is not one",
    label = "expected `PathBuf`, `Vec<PathBuf>` or `BTreeSet<PathBuf>`, or an `Option` of one",
    note = "`watch` makes hotcfg follow the files a field names; use it only on file paths"
)]
pub trait WatchPaths {
    /// Calls `f` with every path the field names.
    fn for_each_path(&self, f: &mut dyn FnMut(&Path));
}

impl WatchPaths for PathBuf {
    fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        f(self)
    }
}
impl<T: WatchPaths> WatchPaths for Option<T> {
    fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        if let Some(paths) = self {
            paths.for_each_path(f)
        }
    }
}
impl WatchPaths for Vec<PathBuf> {
    fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        self.iter().for_each(|p| f(p))
    }
}
impl WatchPaths for BTreeSet<PathBuf> {
    fn for_each_path(&self, f: &mut dyn FnMut(&Path)) {
        self.iter().for_each(|p| f(p))
    }
}

/// Compile-time check emitted for each `watch` field, spanned at its type.
pub const fn assert_watch<T: WatchPaths + ?Sized>() {}

/// Records the files a `#[reload(watch)]` field names.
pub fn watch_field<T: WatchPaths + ?Sized>(
    value: &T,
    path: &FieldPath<'_>,
    class: Class,
    out: &mut Vec<WatchedFile>,
) {
    value.for_each_path(&mut |file| {
        out.push(WatchedFile {
            field: path.render(),
            class,
            file: file.to_path_buf(),
        })
    });
}
