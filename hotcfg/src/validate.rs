//! The configuration type's own rules, checked on every candidate before anything is applied.

use std::fmt;

/// Rules a configuration must satisfy beyond what its types express.
///
/// Implement it and pass `Config::validate` to
/// [`ReloaderBuilder::validator`](crate::ReloaderBuilder::validator). Report every broken rule;
/// the reload is refused if any is reported, and all of them are shown together.
///
/// ```
/// use hotcfg::{Validate, Violations};
///
/// struct Limits { max_concurrent: usize, queue_capacity: usize }
///
/// impl Validate for Limits {
///     fn validate(&self, v: &mut Violations) {
///         v.check(self.max_concurrent >= 1, "max_concurrent", "must be at least 1");
///         v.check(self.queue_capacity >= self.max_concurrent, "queue_capacity",
///                 "must be at least max_concurrent");
///     }
/// }
///
/// let mut v = Violations::default();
/// Limits { max_concurrent: 0, queue_capacity: 0 }.validate(&mut v);
/// assert_eq!(v.len(), 1);
/// assert_eq!(v.to_string(), "`max_concurrent`: must be at least 1");
/// ```
pub trait Validate {
    /// Records every broken rule in `violations`.
    fn validate(&self, violations: &mut Violations);
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    /// Dotted key path of the offending field.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

/// The broken rules found in a candidate configuration.
///
/// Each is reported at a key, written as the diff writes paths, and located in the file that
/// sets it (file and line): nested fields are dotted (`limits.max`), map entries by their key
/// (`upstreams.api-v1.url`, or `loops."my.loop".max` for a key holding a dot), and list
/// elements by their index from 0, `routes.1.upstream` (also accepted: `routes[1].upstream`),
/// whether the list is written as TOML `[[routes]]` tables, an inline array, a JSON array or a
/// YAML sequence.
///
/// ```
/// use hotcfg::{Format, MemorySource, Reloader, Violations};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, hotcfg::HotReload)]
/// struct Config {
///     #[reload(scope = "routing")]
///     routes: Vec<Route>,
/// }
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct Route { name: String, upstream: String }
///
/// fn validate(config: &Config, v: &mut Violations) {
///     for (i, route) in config.routes.iter().enumerate() {
///         v.check(route.upstream.starts_with("http"), format!("routes.{i}.upstream"),
///                 "must be an http(s) URL");
///     }
/// }
///
/// let text = "[[routes]]\nname = \"a\"\nupstream = \"http://a\"\n\n\
///             [[routes]]\nname = \"b\"\nupstream = \"ftp://b\"\n";
/// let source = MemorySource::new("gw.toml", Format::Toml, text);
/// let err = Reloader::builder(source).validator(validate).build().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid configuration: gw.toml:7: `routes.1.upstream`: must be an http(s) URL"
/// );
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct Violations {
    items: Vec<Violation>,
}

impl Violations {
    /// Records a broken rule at `key`.
    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.items.push(Violation {
            key: key.into(),
            message: message.into(),
        });
    }

    /// Records `message` at `key` unless `ok`.
    pub fn check(&mut self, ok: bool, key: impl Into<String>, message: impl Into<String>) {
        if !ok {
            self.push(key, message);
        }
    }

    /// `true` when no rule is broken.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Number of broken rules.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The broken rules in the order reported.
    pub fn iter(&self) -> std::slice::Iter<'_, Violation> {
        self.items.iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, v) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "`{}`: {}", v.key, v.message)?;
        }
        Ok(())
    }
}
