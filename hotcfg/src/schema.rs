//! Field introspection: every field path, its class, its docs.

use crate::Class;

/// One field of a configuration type, as listed by [`HotReload::schema`](crate::HotReload::schema).
///
/// Nested structs are expanded (`limits.max_concurrent`); entries of maps of nested values appear
/// as `loops.*` (the entry itself) and `loops.*.max_iterations` (its fields).
///
/// ```
/// let info = hotcfg::FieldInfo {
///     path: "limits.max_concurrent".into(),
///     class: hotcfg::Class::Scope("limits"),
///     doc: "How many loops may run at once.",
///     secret: false,
///     watch: false,
///     type_name: "usize",
/// };
/// assert!(!info.class.is_restart());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldInfo {
    /// Dotted path of the field; `*` stands for any map key.
    pub path: String,
    /// What a change to this field needs.
    pub class: Class,
    /// The field's `///` doc comment, trimmed; empty when it has none.
    pub doc: &'static str,
    /// Whether the value is redacted wherever it would be shown.
    pub secret: bool,
    /// Whether the field names files that are watched along with the configuration.
    pub watch: bool,
    /// The field's Rust type as written in the source.
    pub type_name: &'static str,
}
