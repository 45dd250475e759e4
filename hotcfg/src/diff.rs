//! Field-level differences between two configurations.
//!
//! A [`Diff`] lists every changed leaf with its dotted path, its [`Class`] and its old and new
//! values rendered for people. Secret fields are rendered as [`REDACTED`].

use std::collections::BTreeSet;
use std::fmt;

use crate::nonfinite::{float_aware, unmark};
use crate::secret::{holds_fingerprint, rendered_holds_fingerprint, scrub, with_fingerprints};
use crate::Class;

/// What secret values are shown as, everywhere.
pub const REDACTED: &str = "<redacted>";

/// How a field changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The field (a map entry, an optional section) did not exist before.
    Added,
    /// The field (a map entry, an optional section) no longer exists.
    Removed,
    /// The field has a new value.
    Modified,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        })
    }
}

/// One changed field.
///
/// ```
/// use hotcfg::{Change, ChangeKind, Class};
///
/// let change = Change {
///     path: "limits.max_concurrent".into(),
///     class: Class::Scope("limits"),
///     kind: ChangeKind::Modified,
///     old: Some("4".into()),
///     new: Some("8".into()),
///     secret: false,
/// };
/// assert_eq!(change.to_string(), "limits.max_concurrent [limits]: 4 -> 8");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Dotted path: `limits.max_concurrent`, `loops.fast.max_iterations`.
    pub path: String,
    /// The scope whose handlers apply it, or restart.
    pub class: Class,
    /// Added, removed or modified.
    pub kind: ChangeKind,
    /// The old value rendered (JSON), `None` when added; [`REDACTED`] for secrets.
    pub old: Option<String>,
    /// The new value rendered (JSON), `None` when removed; [`REDACTED`] for secrets.
    pub new: Option<String>,
    /// Whether the values are redacted.
    pub secret: bool,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: ", self.path, self.class)?;
        match (&self.old, &self.new) {
            (None, Some(new)) => write!(f, "added {new}"),
            (Some(old), None) => write!(f, "removed (was {old})"),
            (Some(old), Some(new)) => write!(f, "{old} -> {new}"),
            (None, None) => write!(f, "{}", self.kind),
        }
    }
}

/// All changes between two configurations, in field order.
///
/// ```
/// use hotcfg::{Change, ChangeKind, Class, Diff};
///
/// let diff = Diff::from_changes(vec![Change {
///     path: "daemon.listen".into(),
///     class: Class::Restart,
///     kind: ChangeKind::Modified,
///     old: Some("\"127.0.0.1:7000\"".into()),
///     new: Some("\"127.0.0.1:7001\"".into()),
///     secret: false,
/// }]);
/// assert!(diff.needs_restart());
/// assert_eq!(diff.scopes().count(), 0);
/// assert_eq!(diff.len(), 1);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Diff {
    changes: Vec<Change>,
}

impl Diff {
    /// An empty diff (allocates nothing).
    pub const fn empty() -> Self {
        Diff {
            changes: Vec::new(),
        }
    }

    /// Wraps a list of changes, kept in the given order.
    pub fn from_changes(changes: Vec<Change>) -> Self {
        Diff { changes }
    }

    /// `true` when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Number of changed fields.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// The changes, in field order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Iterates the changes in field order.
    pub fn iter(&self) -> std::slice::Iter<'_, Change> {
        self.changes.iter()
    }

    /// Takes the changes out.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    /// `true` when any change is restart-only.
    pub fn needs_restart(&self) -> bool {
        self.changes.iter().any(|c| c.class.is_restart())
    }

    /// The restart-only changes.
    pub fn restart_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.class.is_restart())
    }

    /// The changes that can be applied live.
    pub fn hot_changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| !c.class.is_restart())
    }

    /// The distinct scopes touched, sorted by name.
    pub fn scopes(&self) -> impl Iterator<Item = &'static str> {
        self.changes
            .iter()
            .filter_map(|c| c.class.scope())
            .collect::<BTreeSet<_>>()
            .into_iter()
    }

    /// The changes that belong to `scope`.
    pub fn in_scope<'a>(&'a self, scope: &'a str) -> impl Iterator<Item = &'a Change> + 'a {
        self.changes
            .iter()
            .filter(move |c| c.class.scope() == Some(scope))
    }
}

impl<'a> IntoIterator for &'a Diff {
    type Item = &'a Change;
    type IntoIter = std::slice::Iter<'a, Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.changes.iter()
    }
}

impl IntoIterator for Diff {
    type Item = Change;
    type IntoIter = std::vec::IntoIter<Change>;
    fn into_iter(self) -> Self::IntoIter {
        self.changes.into_iter()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.changes.is_empty() {
            return f.write_str("no changes");
        }
        for (i, change) in self.changes.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{change}")?;
        }
        Ok(())
    }
}

/// A dotted path under construction, kept on the stack so that comparing equal values
/// allocates nothing; it becomes a `String` only when a change is recorded.
#[derive(Clone, Copy, Debug)]
pub struct FieldPath<'a> {
    parent: Option<&'a FieldPath<'a>>,
    segment: &'a str,
}

impl<'a> FieldPath<'a> {
    /// The root (empty) path.
    pub const ROOT: FieldPath<'static> = FieldPath {
        parent: None,
        segment: "",
    };

    /// This path extended by one segment (a field name or map key).
    pub fn join(&'a self, segment: &'a str) -> FieldPath<'a> {
        FieldPath {
            parent: Some(self),
            segment,
        }
    }

    /// Renders the path: segments joined by `.`, keys that are not plain words quoted.
    ///
    /// ```
    /// use hotcfg::FieldPath;
    ///
    /// let root = FieldPath::ROOT;
    /// let loops = root.join("loops");
    /// let entry = loops.join("my.loop");
    /// assert_eq!(entry.render(), r#"loops."my.loop""#);
    /// ```
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.rendered_len_hint());
        self.render_into(&mut out);
        out
    }

    /// Appends the segments from the root down to this one (no intermediate list: a change
    /// renders its path once, on the diff's hot path).
    fn render_into(&self, out: &mut String) {
        let Some(parent) = self.parent else {
            return; // The root has no segment of its own.
        };
        parent.render_into(out);
        if !out.is_empty() {
            out.push('.');
        }
        push_segment(out, self.segment);
    }

    /// The rendered length when no segment needs quoting.
    fn rendered_len_hint(&self) -> usize {
        let mut len = 0;
        let mut at = self;
        while let Some(parent) = at.parent {
            len += at.segment.len() + 1;
            at = parent;
        }
        len
    }
}

fn push_segment(out: &mut String, segment: &str) {
    let plain = !segment.is_empty()
        && segment
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*');
    if plain {
        out.push_str(segment);
    } else {
        out.push_str(&serde_json::to_string(segment).unwrap_or_else(|_| segment.to_string()));
    }
}

/// Appends `segment` to a dotted path prefix (used for schema paths).
pub(crate) fn join_path(prefix: &str, segment: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + segment.len() + 1);
    out.push_str(prefix);
    if !prefix.is_empty() {
        out.push('.');
    }
    push_segment(&mut out, segment);
    out
}

/// Renders a value for people: compact JSON (`4`, `"text"`, `{"a":1}`).
pub(crate) fn render<T: serde::Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_string(value) {
        Ok(text) => text,
        Err(err) => format!("<unrenderable: {err}>"),
    }
}

/// Records the difference between two leaf values that are known to differ.
///
/// Non-secret structured values (structs, maps) are walked so the change is reported at the
/// deepest differing keys (`daemon.listen` rather than all of `daemon`); arrays and scalars are
/// reported whole. Secret values (`#[reload(secret)]`) are reported once, at the field,
/// redacted; a [`Secret`](crate::Secret) held anywhere in the value is compared by fingerprint
/// and shown as [`REDACTED`].
pub(crate) fn record_leaf<T: serde::Serialize + ?Sized>(
    path: &FieldPath<'_>,
    class: Class,
    secret: bool,
    old: &T,
    new: &T,
    out: &mut Vec<Change>,
) {
    if secret {
        out.push(Change {
            path: path.render(),
            class,
            kind: ChangeKind::Modified,
            old: Some(REDACTED.to_string()),
            new: Some(REDACTED.to_string()),
            secret: true,
        });
        return;
    }
    // The common case, the diff's hot path: reported whole from its rendering, without building
    // two `serde_json::Value`s (issue 19).
    if let Some((old_text, new_text)) = plain_rendering(old, new) {
        out.push(Change {
            path: path.render(),
            class,
            kind: ChangeKind::Modified,
            old: Some(old_text),
            new: Some(new_text),
            secret: false,
        });
        return;
    }
    let before = out.len();
    let values = with_fingerprints(|| (serde_json::to_value(old), serde_json::to_value(new)));
    if let (Ok(old_v), Ok(new_v)) = values {
        walk(path, class, &old_v, &new_v, out);
    }
    let shows_null = |c: &Change| {
        [&c.old, &c.new]
            .iter()
            .any(|v| v.as_deref() == Some("null"))
    };
    if out.len() == before || out[before..].iter().any(shows_null) {
        // JSON writes NaN and the infinities as `null`: look again with them kept.
        if let (Some(old_v), Some(new_v)) = (float_aware(old), float_aware(new)) {
            out.truncate(before);
            if old_v == new_v {
                return; // Unequal only because NaN != NaN: nothing changed.
            }
            walk(path, class, &old_v, &new_v, out);
        }
    }
    if out.len() == before {
        // Unequal by PartialEq but rendering the same (unrenderable): still a change.
        out.push(Change {
            path: path.render(),
            class,
            kind: ChangeKind::Modified,
            old: Some(render(old)),
            new: Some(render(new)),
            secret: false,
        });
    }
}

/// A value met by [`walk`], rendered for people: [`REDACTED`] for a secret, the JSON with its
/// secrets redacted otherwise; and whether it held a secret.
fn shown(value: &serde_json::Value) -> (String, bool) {
    if !holds_fingerprint(value) {
        return (unmark(render(value)), false);
    }
    if value.is_string() {
        return (REDACTED.to_string(), true);
    }
    let mut scrubbed = value.clone();
    scrub(&mut scrubbed);
    (unmark(render(&scrubbed)), true)
}

/// A change found by [`walk`].
fn walked_change(
    path: &FieldPath<'_>,
    class: Class,
    kind: ChangeKind,
    old: Option<&serde_json::Value>,
    new: Option<&serde_json::Value>,
) -> Change {
    let (old, old_secret) = old.map(shown).unzip();
    let (new, new_secret) = new.map(shown).unzip();
    Change {
        path: path.render(),
        class,
        kind,
        old,
        new,
        secret: old_secret.unwrap_or(false) || new_secret.unwrap_or(false),
    }
}

/// Both values rendered, when the exact path below would report them whole as rendered: neither
/// is a struct or map to walk, holds a secret's fingerprint, writes `null` (where JSON may have
/// lost a NaN) or fails to render. Text that only looks like one of those takes the exact path.
fn plain_rendering<T: serde::Serialize + ?Sized>(old: &T, new: &T) -> Option<(String, String)> {
    let (old, new) = with_fingerprints(|| (serde_json::to_string(old), serde_json::to_string(new)));
    let (old, new) = (old.ok()?, new.ok()?);
    let plain = |text: &str| !text.contains("null") && !rendered_holds_fingerprint(text);
    let structured = old.starts_with('{') && new.starts_with('{');
    (!structured && plain(&old) && plain(&new)).then_some((old, new))
}

fn walk(
    path: &FieldPath<'_>,
    class: Class,
    old: &serde_json::Value,
    new: &serde_json::Value,
    out: &mut Vec<Change>,
) {
    use serde_json::Value;
    match (old, new) {
        (Value::Object(old_map), Value::Object(new_map)) => {
            for (key, old_value) in old_map {
                let child = path.join(key);
                match new_map.get(key) {
                    Some(new_value) if new_value != old_value => {
                        walk(&child, class, old_value, new_value, out)
                    }
                    Some(_) => {}
                    None => out.push(walked_change(
                        &child,
                        class,
                        ChangeKind::Removed,
                        Some(old_value),
                        None,
                    )),
                }
            }
            for (key, new_value) in new_map {
                if !old_map.contains_key(key) {
                    let child = path.join(key);
                    let change =
                        walked_change(&child, class, ChangeKind::Added, None, Some(new_value));
                    out.push(change);
                }
            }
        }
        _ if old != new => out.push(walked_change(
            path,
            class,
            ChangeKind::Modified,
            Some(old),
            Some(new),
        )),
        _ => {}
    }
}

/// A whole value appearing or disappearing (a map entry, an optional section).
pub(crate) fn record_presence<T: serde::Serialize + ?Sized>(
    path: &FieldPath<'_>,
    class: Class,
    secret: bool,
    kind: ChangeKind,
    value: &T,
    out: &mut Vec<Change>,
) {
    if secret {
        let (old, new) = match kind {
            ChangeKind::Added => (None, Some(REDACTED.to_string())),
            _ => (Some(REDACTED.to_string()), None),
        };
        out.push(Change {
            path: path.render(),
            class,
            kind,
            old,
            new,
            secret,
        });
        return;
    }
    let value = with_fingerprints(|| serde_json::to_value(value)).unwrap_or_default();
    let (old, new) = match kind {
        ChangeKind::Added => (None, Some(&value)),
        _ => (Some(&value), None),
    };
    out.push(walked_change(path, class, kind, old, new));
}
