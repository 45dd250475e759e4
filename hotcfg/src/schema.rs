//! Field introspection: every field path, its class, its docs.

use std::sync::Arc;

use crate::handle::Snapshot;
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

/// The configuration as JSON with every `#[reload(secret)]` value replaced by
/// [`REDACTED`](crate::REDACTED): what to show when an operator asks for the live configuration.
///
/// ```
/// use hotcfg::HotReload;
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "auth", secret)]
///     token: String,
///     #[reload(restart)]
///     listen: String,
/// }
///
/// let config = Config { token: "hunter2".into(), listen: "127.0.0.1:1".into() };
/// let shown = hotcfg::redacted_json(&config);
/// assert_eq!(shown["token"], "<redacted>");
/// assert_eq!(shown["listen"], "127.0.0.1:1");
/// ```
pub fn redacted_json<T: AsConfig + ?Sized>(config: &T) -> serde_json::Value {
    let mut value = serde_json::to_value(config.as_config()).unwrap_or(serde_json::Value::Null);
    for field in <T::Config as crate::HotReload>::schema()
        .iter()
        .filter(|f| f.secret)
    {
        let segments: Vec<&str> = field.path.split('.').collect();
        redact_at(&mut value, &segments);
    }
    value
}

fn redact_at(value: &mut serde_json::Value, segments: &[&str]) {
    let Some((first, rest)) = segments.split_first() else {
        if !value.is_null() {
            *value = serde_json::Value::String(crate::REDACTED.to_string());
        }
        return;
    };
    match value {
        serde_json::Value::Object(map) if *first == "*" => {
            map.values_mut().for_each(|child| redact_at(child, rest))
        }
        // The elements of a nested list.
        serde_json::Value::Array(items) if *first == "*" => {
            items.iter_mut().for_each(|child| redact_at(child, rest))
        }
        serde_json::Value::Object(map) => {
            if let Some(child) = map.get_mut(*first) {
                redact_at(child, rest);
            }
        }
        _ => {}
    }
}

/// A configuration, or what holds one: what [`redacted_json`] accepts (the configuration itself,
/// a [`Snapshot`], the `Arc` that [`Handle::snapshot`](crate::Handle::snapshot) gives or the
/// guard that [`Handle::load`](crate::Handle::load) gives).
///
/// ```
/// # use hotcfg::{HotReload, Reloader};
/// # #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// # struct Config { #[reload(scope = "auth", secret)] token: String }
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("app.toml");
/// # std::fs::write(&path, "token = \"hunter2\"")?;
/// let handle = Reloader::<Config>::builder(hotcfg::FileSource::new(&path)).build()?.handle();
/// assert_eq!(hotcfg::redacted_json(&handle.load())["token"], "<redacted>");
/// assert_eq!(hotcfg::redacted_json(&*handle.load())["token"], "<redacted>");
/// assert_eq!(hotcfg::redacted_json(&handle.snapshot())["token"], "<redacted>");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait AsConfig {
    /// The configuration type.
    type Config: crate::HotReload;
    /// The configuration.
    fn as_config(&self) -> &Self::Config;
}

impl<C: crate::HotReload> AsConfig for C {
    type Config = C;
    fn as_config(&self) -> &C {
        self
    }
}

impl<C: crate::HotReload> AsConfig for Snapshot<C> {
    type Config = C;
    fn as_config(&self) -> &C {
        self.config()
    }
}

impl<C: crate::HotReload> AsConfig for Arc<Snapshot<C>> {
    type Config = C;
    fn as_config(&self) -> &C {
        self.config()
    }
}

impl<C: crate::HotReload> AsConfig for arc_swap::Guard<Arc<Snapshot<C>>> {
    type Config = C;
    fn as_config(&self) -> &C {
        self.config()
    }
}
