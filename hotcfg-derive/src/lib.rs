//! `#[derive(HotReload)]` for [hotcfg](https://docs.rs/hotcfg): the field-by-field diff, the
//! classification of every field (a named scope, or restart-only) and the schema, generated at
//! compile time. Use it through `hotcfg::HotReload`, which re-exports it; this crate is pinned
//! to the exact version of `hotcfg`, and the code it generates names only `::hotcfg::__private`.
//!
//! The work is done in passes, one module each: `attr` parses `#[reload(...)]` (and the
//! `#[serde(...)]` keys that change a field's name), `ast` is the model of the input, `check`
//! enforces the rules between keys and `expand` writes the impl. Every mistake is reported in
//! the same build, pointing at the tokens to change, together with a stub impl so that no
//! "`HotReload` is not implemented" errors follow.

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;

/// Derives `hotcfg::HotReload` for a struct with named fields.
///
/// Every field gets a *class*: a named **scope**, whose handlers apply a change to the running
/// program, or **restart**, a change that waits for the next restart. A field without
/// `#[reload]` is restart-only: forgetting an attribute is never unsafe.
///
/// # Field attributes
///
/// | attribute | meaning |
/// |-----------|---------|
/// | `#[reload(scope = "name")]` | hot: applied live by the handlers of scope `name` (`[a-z0-9_-]+`, not `restart`) |
/// | `#[reload(restart)]` | a change needs a restart (also the default) |
/// | `#[reload(nested)]` | recurse into the field's type: a struct deriving `HotReload`, or a `Box`, `Option`, `Vec`, `Option<Vec>`, `BTreeMap` or `HashMap` of one |
/// | `#[reload(nested, key = "field")]` | on a `Vec` (or `Option<Vec>`): match elements by the value of their `field` rather than by position |
/// | `#[reload(secret)]` | the value is shown as `<redacted>` in diffs, events and logs; combines with `scope` / `restart` |
/// | `#[reload(watch)]` | the field names files (`PathBuf`, `Vec<PathBuf>`, `BTreeSet<PathBuf>`, or an `Option` of one) watched with the configuration; combines with `scope` / `restart` |
///
/// ```rust,ignore
/// use hotcfg::HotReload;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// struct Config {
///     /// Applied live by the handlers of the `limits` scope.
///     #[reload(scope = "limits")]
///     max_concurrent: usize,
///     /// Needs a restart.
///     #[reload(restart)]
///     listen: String,
///     /// No class given: restart-only, the safe default.
///     data_dir: String,
/// }
///
/// let diff = old.diff(&new);
/// // max_concurrent [limits]: 4 -> 8
/// // data_dir [restart]: "/var/lib/td" -> "/srv/td"
/// let live = old.merge_hot(&new); // hot fields of `new`, restart-only fields of `old`
/// ```
///
/// Floats: an unchanged NaN is not a change (although `NaN != NaN`), and non-finite values
/// render as `NaN`, `inf` and `-inf` (JSON would write `null`). 128-bit integers (`u128`,
/// `i128`) are refused at compile time: figment, which loads the configuration, cannot read them.
///
/// A leaf field's type must be `PartialEq + serde::Serialize`; a structured value (a plain
/// struct, a map) is compared as one field but its changes are reported at the deepest keys
/// that differ (`daemon.listen`). Values are rendered as compact JSON (`4`, `"text"`).
///
/// # Struct attribute
///
/// `#[reload(scope = "name")]` or `#[reload(restart)]` on the struct sets the class of its
/// fields that have none, and `HotReload::CLASS`: the class of the value as a whole when it
/// appears in or disappears from a map of nested values, or as an `Option`. Without it, both
/// are restart.
///
/// ```rust,ignore
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// #[reload(scope = "loops")]
/// struct LoopConfig {
///     max_iterations: u32,   // scope "loops"
///     #[reload(restart)]
///     runner: String,        // restart
/// }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// struct Config {
///     #[reload(nested)]
///     loops: BTreeMap<String, LoopConfig>,
/// }
/// // Config::schema(): loops.* [loops], loops.*.max_iterations [loops], loops.*.runner [restart]
/// // A change to one entry: loops.fast.max_iterations [loops]: 10 -> 20
/// ```
///
/// # Lists
///
/// A `Vec` of a type deriving `HotReload` is diffed element by element. By default elements are
/// matched by position (`routes.1.upstream`, `routes.2` added); with `key = "field"` they are
/// matched by that field's value, so inserting a route at the front is one addition, not a change
/// to every route after it. The key field is named as in Rust, must be `Display`, and its value
/// is the element's path segment (when two elements share a key, the list falls back to
/// positions). `merge_hot` keeps the restart-only fields of matched elements.
///
/// ```rust,ignore
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// #[reload(scope = "routing")]
/// struct Route { name: String, upstream: String }
///
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// struct Config {
///     #[reload(nested, key = "name")]
///     routes: Vec<Route>,       // routes.api.upstream [routing]: "http://a" -> "http://b"
///     #[reload(nested)]
///     tls: Box<Tls>,            // tls.cert [tls]: ...
/// }
/// ```
///
/// # Secrets and watched files
///
/// ```rust,ignore
/// #[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "auth", secret)]
///     api_token: String,      // api_token [auth]: <redacted> -> <redacted>
///     #[reload(scope = "tls", watch)]
///     cert: PathBuf,          // config.watched_files(): cert [tls] -> cert.pem
/// }
/// ```
///
/// A map entry or optional section that holds a secret field anywhere is rendered redacted as a
/// whole when it is added or removed. `secret` and `watch` apply to leaves: on a `nested` field,
/// mark the nested type's own fields instead.
///
/// # serde
///
/// Paths are the keys of the configuration file, so the derive reads serde's attributes:
/// `#[serde(rename = "...")]` on a field (the deserialize name when they differ) and
/// `#[serde(rename_all = "...")]` on the struct (`lowercase`, `UPPERCASE`, `PascalCase`,
/// `camelCase`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE`).
/// Raw identifiers lose their `r#`.
///
/// - `#[serde(skip)]` fields are not in the file: they are left out of the diff, the schema and
///   the watched files, and `merge_hot` keeps the current value (`self.field.clone()`). Giving
///   them a `#[reload]` attribute is an error.
/// - `#[serde(flatten)]` needs `#[reload(nested)]`: the flattened fields are diffed under this
///   struct's path, with no segment of their own.
///
/// # Schema
///
/// `HotReload::schema()` lists every field: dotted path (`*` for any map key), class, secrecy,
/// whether it is watched, the `///` doc comment (lines trimmed and joined with spaces) and the
/// type as written (`BTreeMap<String, String>`). It is built once and cached in a `static`,
/// which is why generic structs are not supported.
///
/// # Mistakes
///
/// Each is a compile error pointing at the tokens to change, and all are reported in one build:
/// unknown or duplicate keys, `scope` without a string value, invalid scope names, `restart`
/// with `scope`, `nested` with `scope` / `restart` / `secret` / `watch`, `flatten` without
/// `nested`, `key` without `nested` or on a map, `u128` / `i128` fields, enums, unions, tuple and unit structs, generic structs; and, at the field's type,
/// a leaf type that is not `PartialEq + Serialize`, a `nested` type that does not derive
/// `HotReload`, a `watch` type that is not a path. The `tests/ui` folder of the repository has
/// one example of each, with the exact message.
#[proc_macro_derive(HotReload, attributes(reload))]
pub fn derive_hot_reload(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    expand::derive(&input).into()
}
