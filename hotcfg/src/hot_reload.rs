//! The trait `#[derive(HotReload)]` implements.

use std::path::PathBuf;

use crate::diff::FieldPath;
use crate::{Change, Class, Diff, FieldInfo};

/// A file named by a `#[reload(watch)]` field, to be watched along with the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct WatchedFile {
    /// Dotted path of the field that names the file.
    pub field: String,
    /// The class of that field: editing the file reloads this scope.
    pub class: Class,
    /// The file, as written in the configuration (relative paths are resolved by the watcher
    /// against the configuration file's directory).
    pub file: PathBuf,
}

/// A configuration type whose fields are classified for hot reload.
///
/// Implemented by `#[derive(HotReload)]`; implementing it by hand is possible but rarely useful.
/// The derive generates a field-by-field [`diff`](HotReload::diff), the [`schema`](HotReload::schema)
/// and the [`merge_hot`](HotReload::merge_hot) used to defer restart-only changes.
///
/// ```
/// use hotcfg::HotReload;
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     /// Where clients connect.
///     #[reload(restart)]
///     listen: String,
///     /// Loops allowed to run at once.
///     #[reload(scope = "limits")]
///     max_concurrent: usize,
/// }
///
/// let old = Config { listen: "127.0.0.1:7000".into(), max_concurrent: 4 };
/// let new = Config { listen: "127.0.0.1:7000".into(), max_concurrent: 8 };
/// let diff = old.diff(&new);
/// assert_eq!(diff.to_string(), "max_concurrent [limits]: 4 -> 8");
/// assert!(!diff.needs_restart());
/// assert!(old.diff(&old).is_empty());
/// ```
pub trait HotReload: Clone + PartialEq + serde::Serialize + 'static {
    /// The class of a value of this type as a whole: used when it appears in or disappears from
    /// a map of nested values, or an optional nested section. Set by the container attribute
    /// (`#[reload(scope = "loops")]` on the struct); restart when absent.
    const CLASS: Class;

    /// Appends the changes from `self` to `new` under `prefix` to `out`, in field order.
    /// Allocates nothing when the values are equal.
    fn diff_into(&self, new: &Self, prefix: &FieldPath<'_>, out: &mut Vec<Change>);

    /// Appends this type's fields, their paths prefixed by `prefix`, to `out`.
    fn schema_into(prefix: &str, out: &mut Vec<FieldInfo>);

    /// Every field of this type: path (nested expanded, map entries as `*`), class, docs, secrecy.
    fn schema() -> &'static [FieldInfo];

    /// A value with the hot fields of `new` and the restart-only fields of `self`: what can be
    /// applied live when restart-only changes are deferred.
    fn merge_hot(&self, new: &Self) -> Self;

    /// Appends the files named by `#[reload(watch)]` fields (recursing into nested ones).
    fn watched_files_into(&self, prefix: &FieldPath<'_>, out: &mut Vec<WatchedFile>);

    /// Compares `self` (the current value) with `new`, field by field.
    fn diff(&self, new: &Self) -> Diff {
        let mut changes = Vec::new();
        self.diff_into(new, &FieldPath::ROOT, &mut changes);
        Diff::from_changes(changes)
    }

    /// The files named by `#[reload(watch)]` fields.
    fn watched_files(&self) -> Vec<WatchedFile> {
        let mut out = Vec::new();
        self.watched_files_into(&FieldPath::ROOT, &mut out);
        out
    }
}

/// A configuration type the engine runs: [`HotReload`], deserializable, and shareable between
/// threads. Implemented for every such type; generic code names this one bound instead of four.
///
/// ```
/// fn live_workers<C: hotcfg::HotConfig>(reloader: &hotcfg::Reloader<C>) -> u64 {
///     reloader.handle().generation()
/// }
/// ```
pub trait HotConfig: HotReload + serde::de::DeserializeOwned + Send + Sync {}

impl<C: HotReload + serde::de::DeserializeOwned + Send + Sync> HotConfig for C {}

/// A boxed section (a large or recursive one) is nested like the section itself.
impl<T: HotReload> HotReload for Box<T> {
    const CLASS: Class = T::CLASS;

    fn diff_into(&self, new: &Self, prefix: &FieldPath<'_>, out: &mut Vec<Change>) {
        (**self).diff_into(new, prefix, out)
    }
    fn schema_into(prefix: &str, out: &mut Vec<FieldInfo>) {
        T::schema_into(prefix, out)
    }
    fn schema() -> &'static [FieldInfo] {
        T::schema()
    }
    fn merge_hot(&self, new: &Self) -> Self {
        Box::new((**self).merge_hot(new))
    }
    fn watched_files_into(&self, prefix: &FieldPath<'_>, out: &mut Vec<WatchedFile>) {
        (**self).watched_files_into(prefix, out)
    }
}
