//! Turning configuration text into a typed value: parse each layer (`format`, within the limits
//! of `bounded`), merge the layers with figment, extract. Errors (`error`) name the source (file
//! or key), the key path, and where the text shows it (`locate`), the line and column.

mod bounded;
mod error;
mod format;
mod locate;
mod unknown;

use std::fmt;

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;

pub use bounded::{DEFAULT_MAX_DEPTH, DEFAULT_MAX_VALUES};
pub use error::{ConfigError, Problem, Stage};
pub use format::Format;
pub use locate::locate_key;

pub(crate) use error::clip;
pub(crate) use locate::locate_violations;
pub(crate) use unknown::closest_key;

use crate::source::SourceContent;
use bounded::Limits;
use format::parse_layer;

/// Parses configuration text into `C`: layers merged in order over optional defaults, then an
/// optional environment overlay.
///
/// ```
/// use hotcfg::{Format, Layer, Loader, SourceContent, SourceIdentity};
///
/// #[derive(Debug, serde::Serialize, serde::Deserialize)]
/// struct Config { workers: u32 }
///
/// let text = "workers = \"many\"\n";
/// let content = SourceContent {
///     layers: vec![Layer { name: "app.toml".into(), format: Format::Toml, text: text.into() }],
///     identity: SourceIdentity::new("app.toml", text.as_bytes()),
/// };
/// let err = Loader::<Config>::new().parse(&content).unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "cannot parse configuration: app.toml:1: `workers`: invalid type: found string \"many\", expected u32"
/// );
/// ```
pub struct Loader<C> {
    defaults: Option<C>,
    env_prefix: Option<String>,
    limits: Limits,
    allow_unknown_keys: bool,
}

impl<C> fmt::Debug for Loader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("defaults", &self.defaults.is_some())
            .field("env_prefix", &self.env_prefix)
            .field("max_depth", &self.limits.max_depth)
            .field("max_values", &self.limits.max_values)
            .field("allow_unknown_keys", &self.allow_unknown_keys)
            .finish()
    }
}

impl<C: Clone> Clone for Loader<C> {
    fn clone(&self) -> Self {
        Loader {
            defaults: self.defaults.clone(),
            env_prefix: self.env_prefix.clone(),
            limits: self.limits,
            allow_unknown_keys: self.allow_unknown_keys,
        }
    }
}

impl<C> Default for Loader<C> {
    fn default() -> Self {
        Loader {
            defaults: None,
            env_prefix: None,
            limits: Limits::default(),
            allow_unknown_keys: false,
        }
    }
}

impl<C: DeserializeOwned + serde::Serialize> Loader<C> {
    /// A loader with no defaults and no environment overlay.
    pub fn new() -> Self {
        Self::default()
    }

    /// Values for keys the files leave out.
    pub fn defaults(mut self, defaults: C) -> Self {
        self.defaults = Some(defaults);
        self
    }

    /// Environment variables starting with `prefix` override the files: `APP_LIMITS__MAX=8`
    /// sets `limits.max` (nested keys are separated by a double underscore).
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// Refuses documents nested deeper than `depth` tables or arrays (default
    /// [`DEFAULT_MAX_DEPTH`]).
    pub fn max_depth(mut self, depth: usize) -> Self {
        self.limits.max_depth = depth;
        self
    }

    /// Refuses documents holding more than `values` values, counting every table, array and
    /// scalar (default [`DEFAULT_MAX_VALUES`]).
    pub fn max_values(mut self, values: usize) -> Self {
        self.limits.max_values = values;
        self
    }

    /// Accepts keys that no field reads. By default such a key (a typo, or a key in the wrong
    /// section) is an error naming its file and line and the closest known key, in every layer
    /// and format: a misspelt `api_tokn` would otherwise run the program without its token.
    ///
    /// ```
    /// use hotcfg::{Format, Layer, Loader, SourceContent, SourceIdentity};
    ///
    /// #[derive(Debug, serde::Serialize, serde::Deserialize)]
    /// struct Config { workers: u32 }
    ///
    /// let text = "workers = 4\nwokers = 8\n";
    /// let content = SourceContent {
    ///     layers: vec![Layer { name: "app.toml".into(), format: Format::Toml, text: text.into() }],
    ///     identity: SourceIdentity::new("app.toml", text.as_bytes()),
    /// };
    /// let err = Loader::<Config>::new().parse(&content).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "cannot parse configuration: app.toml:2: `wokers`: unknown key: no field reads it"
    /// );
    /// assert_eq!(Loader::<Config>::new().allow_unknown_keys().parse(&content).unwrap().workers, 4);
    /// ```
    pub fn allow_unknown_keys(mut self) -> Self {
        self.allow_unknown_keys = true;
        self
    }

    /// Parses and merges the layers of `content`.
    pub fn parse(&self, content: &SourceContent) -> Result<C, ConfigError> {
        self.parse_hiding(content, &|_| false, &|_| None)
    }

    /// [`parse`](Loader::parse), with the values of keys for which `is_secret` holds left out of
    /// error messages ("invalid type: found string \"hunter2\"" would print a secret).
    /// `closest_key` suggests a known key for an unknown one.
    pub(crate) fn parse_hiding(
        &self,
        content: &SourceContent,
        is_secret: &dyn Fn(&[String]) -> bool,
        closest_key: &dyn Fn(&[String]) -> Option<String>,
    ) -> Result<C, ConfigError> {
        let mut figment = Figment::new();
        if let Some(defaults) = &self.defaults {
            // The defaults' secrets must reach figment as values, not as `<redacted>`.
            figment = crate::secret::with_secrets_exposed(|| {
                figment.merge(Serialized::defaults(defaults))
            });
        }
        let mut problems = Vec::new();
        for layer in &content.layers {
            match parse_layer(layer, self.limits) {
                Ok(dict) => {
                    figment = figment.merge(ParsedLayer {
                        name: layer.name.clone(),
                        dict,
                    })
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::new(Stage::Parse, problems));
        }
        if let Some(prefix) = &self.env_prefix {
            figment = figment.merge(Env::prefixed(prefix).split("__"));
        }
        let config = figment.extract::<C>().map_err(|err| {
            ConfigError::new(Stage::Parse, extraction_problems(err, content, is_secret))
        })?;
        if !self.allow_unknown_keys {
            let unknown = unknown::ignored_keys::<C>(&figment);
            if !unknown.is_empty() {
                let env = self.env_prefix.as_deref();
                let problems = unknown::problems(&unknown, content, env, closest_key);
                return Err(ConfigError::new(Stage::Parse, problems));
            }
        }
        Ok(config)
    }
}

/// A layer already parsed, named so figment attributes its values (and errors) to it.
struct ParsedLayer {
    name: String,
    dict: Dict,
}

impl Provider for ParsedLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.clone()))
    }
}

fn extraction_problems(
    err: figment::Error,
    content: &SourceContent,
    is_secret: &dyn Fn(&[String]) -> bool,
) -> Vec<Problem> {
    err.into_iter()
        .map(|err| {
            let source = err.metadata.as_ref().map(|m| m.name.to_string());
            let layer = source
                .as_deref()
                .and_then(|name| content.layers.iter().find(|l| l.name == name));
            let line = layer.and_then(|l| locate_key(&l.text, l.format, &err.path));
            let key = (!err.path.is_empty()).then(|| clip(err.path.join(".")));
            let message = if !err.path.is_empty() && is_secret(&err.path) {
                describe_hiding_value(&err.kind)
            } else {
                err.kind.to_string()
            };
            Problem {
                source,
                line,
                column: None,
                key,
                message: clip(message),
            }
        })
        .collect()
}

/// What is wrong with a secret's value, without the value (figment's messages quote it).
fn describe_hiding_value(kind: &figment::error::Kind) -> String {
    use figment::error::{Actual, Kind};
    let what = |actual: &Actual| match actual {
        Actual::Bool(_) => "a boolean",
        Actual::Unsigned(_) | Actual::Signed(_) => "an integer",
        Actual::Float(_) => "a float",
        Actual::Char(_) => "a character",
        Actual::Str(_) => "a string",
        Actual::Bytes(_) => "bytes",
        Actual::Unit => "unit",
        Actual::Option => "an option",
        Actual::Seq => "a sequence",
        Actual::Map => "a map",
        _ => "a value",
    };
    match kind {
        Kind::InvalidType(actual, expected) => format!(
            "invalid type: found {} (not shown: the field is secret), expected {expected}",
            what(actual)
        ),
        Kind::InvalidValue(actual, expected) => format!(
            "invalid value: {} (not shown: the field is secret), expected {expected}",
            what(actual)
        ),
        Kind::MissingField(_) | Kind::UnknownField(..) | Kind::DuplicateField(_) => {
            kind.to_string()
        }
        // A `Secret`'s own refusal, which never quotes the value.
        Kind::Message(message) if message.ends_with(crate::secret::NOT_SHOWN) => message.clone(),
        Kind::InvalidLength(_, expected) => {
            format!("invalid length (not shown: the field is secret), expected {expected}")
        }
        _ => "invalid value (not shown: the field is secret)".to_string(),
    }
}
