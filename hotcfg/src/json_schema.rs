//! A JSON Schema of the configuration for editors (feature `schemars`): what `schemars` derives
//! from the type, with every field the [`HotReload`] schema lists annotated with what a change
//! to it needs. A YAML or TOML language server given the schema completes keys and, in the hover
//! text, says which edits apply live and which need a restart.

use std::borrow::Cow;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use secrecy::zeroize::Zeroize;
use serde_json::{Map, Value};

use crate::schema::FieldInfo;
use crate::{Class, HotReload, Secret};

/// The JSON Schema (draft 2020-12) of configuration type `C`, each field annotated:
///
/// - `x-hotcfg-class`: `"scope:NAME"` (applied live by that scope's handlers) or `"restart"`;
/// - `x-hotcfg-secret`: whether the value is redacted wherever hotcfg shows it;
/// - `x-hotcfg-watch`: `true` on fields naming files that are watched too;
/// - the `description` (the field's doc comment) ends with the same in words, which is what
///   language servers show.
///
/// A field's class covers everything under it. On a section (a nested struct, a map entry, a
/// list element) whose fields carry classes of their own, the class is what adding or removing
/// the section as a whole needs. Subschemas are inlined (no `$ref`), so each
/// annotation sits where its field is written. Map entries and list elements are described
/// once, under `additionalProperties` and `items`.
///
/// ```
/// use hotcfg::{HotReload, Secret};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// #[derive(schemars::JsonSchema)]
/// #[serde(rename_all = "kebab-case")]
/// struct Gateway {
///     /// Where clients connect.
///     #[reload(restart)]
///     listen: String,
///     #[reload(nested)]
///     rate_limits: RateLimits,
///     #[reload(scope = "auth")]
///     admin_password: Secret<String>,
/// }
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// #[derive(schemars::JsonSchema)]
/// #[reload(scope = "limits")]
/// struct RateLimits {
///     burst: u32,
/// }
///
/// let schema = hotcfg::json_schema::<Gateway>();
/// let listen = &schema["properties"]["listen"];
/// assert_eq!(listen["x-hotcfg-class"], "restart");
/// assert_eq!(listen["description"], "Where clients connect.\n\nChanging it needs a restart.");
/// let burst = &schema["properties"]["rate-limits"]["properties"]["burst"];
/// assert_eq!(burst["x-hotcfg-class"], "scope:limits");
/// assert_eq!(burst["description"], "Applied live (scope `limits`).");
/// assert_eq!(schema["properties"]["admin-password"]["x-hotcfg-secret"], true);
/// ```
pub fn json_schema<C: HotReload + JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|settings| settings.inline_subschemas = true)
        .into_generator();
    let mut schema = generator.into_root_schema_for::<C>().to_value();
    let fields = C::schema();
    for field in fields {
        let segments: Vec<&str> = field.path.split('.').map(|s| s.trim_matches('"')).collect();
        let under = format!("{}.", field.path);
        let section = fields.iter().any(|f| f.path.starts_with(&under));
        annotate(&mut schema, &segments, &Mark { field, section });
    }
    schema
}

/// What to write on one field's subschema. A section (a nested struct, map entry or list
/// element, whose fields have rows of their own) gets the class of adding or removing it whole.
struct Mark<'a> {
    field: &'a FieldInfo,
    section: bool,
}

/// Annotates the subschema at `segments` under `node` (`*`: a map entry or list element).
fn annotate(node: &mut Value, segments: &[&str], mark: &Mark<'_>) {
    let Some((first, rest)) = segments.split_first() else {
        if let Value::Object(schema) = node {
            mark.write(schema);
        }
        return;
    };
    if let Some(child) = child(node, first) {
        annotate(child, rest, mark);
    }
}

/// The subschema of key `segment` (or of any entry, for `*`) in `node`, looking through
/// `anyOf`/`oneOf`/`allOf` (an `Option` is "the value, or null").
fn child<'a>(node: &'a mut Value, segment: &str) -> Option<&'a mut Value> {
    let Value::Object(schema) = node else {
        return None;
    };
    let direct = if segment == "*" {
        ["items", "additionalProperties"]
            .into_iter()
            .find(|key| schema.get(*key).is_some_and(Value::is_object))
    } else {
        schema
            .get("properties")
            .and_then(|p| p.get(segment))
            .map(|_| "properties")
    };
    match direct {
        Some("properties") => schema.get_mut("properties")?.get_mut(segment),
        Some(key) => schema.get_mut(key),
        None => {
            let branches = ["anyOf", "oneOf", "allOf"]
                .into_iter()
                .filter_map(|key| schema.get(key).and_then(Value::as_array).map(|_| key))
                .next()?;
            let Value::Array(branches) = schema.get_mut(branches)? else {
                return None;
            };
            branches
                .iter_mut()
                .find_map(|branch| child(branch, segment))
        }
    }
}

impl Mark<'_> {
    /// Writes the field's class, secrecy and watching into its subschema.
    fn write(&self, schema: &mut Map<String, Value>) {
        let field = self.field;
        let (class, mut words) = match (field.class, self.section) {
            (Class::Restart, false) => {
                ("restart".to_string(), "Changing it needs a restart.".into())
            }
            (Class::Restart, true) => (
                "restart".to_string(),
                "Adding or removing it as a whole needs a restart.".to_string(),
            ),
            (Class::Scope(scope), false) => (
                format!("scope:{scope}"),
                format!("Applied live (scope `{scope}`)."),
            ),
            (Class::Scope(scope), true) => (
                format!("scope:{scope}"),
                format!("Adding or removing it as a whole is applied live (scope `{scope}`)."),
            ),
        };
        // A `Secret` marked its own schema, wherever it sits.
        let secret = field.secret || schema.get("x-hotcfg-secret") == Some(&Value::Bool(true));
        schema.insert("x-hotcfg-class".into(), class.into());
        schema.insert("x-hotcfg-secret".into(), secret.into());
        if secret {
            words.push_str(" Secret: never shown in diffs, events or logs.");
        }
        if field.watch {
            schema.insert("x-hotcfg-watch".into(), true.into());
            words.push_str(" The files it names are watched.");
        }
        let description = match schema.get("description").and_then(Value::as_str) {
            Some(doc) if !doc.is_empty() => format!("{doc}\n\n{words}"),
            _ => words,
        };
        schema.insert("description".into(), description.into());
    }
}

/// A secret's schema is its value's, marked `writeOnly` (written in the file, never shown) and
/// `x-hotcfg-secret`, wherever it sits (also inside a plain struct, a list or a map).
impl<T: JsonSchema + Zeroize> JsonSchema for Secret<T> {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> Cow<'static, str> {
        format!("Secret_{}", T::schema_name()).into()
    }

    fn schema_id() -> Cow<'static, str> {
        format!("hotcfg::Secret<{}>", T::schema_id()).into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let mut schema = generator.subschema_for::<T>();
        schema.insert("writeOnly".into(), true.into());
        schema.insert("x-hotcfg-secret".into(), true.into());
        schema
    }
}
