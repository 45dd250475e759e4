//! Turning configuration text into a typed value: parse each layer (`format`, within the limits
//! of `bounded`), merge the layers with figment, extract. Errors (`error`) name the source (file
//! or key), the key path, and where the text shows it (`locate`), the line and column.

mod bounded;
mod env;
mod error;
mod format;
mod locate;
mod straight;
mod unknown;

use std::cell::Cell;
use std::fmt;

use figment::providers::Serialized;
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

use crate::schema::FieldInfo;
use crate::source::{sha256_hex, SourceContent};
use bounded::Limits;
use env::{Overlay, Placed};
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
    ignore_unmatched_env: bool,
}

impl<C> fmt::Debug for Loader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("defaults", &self.defaults.is_some())
            .field("env_prefix", &self.env_prefix)
            .field("max_depth", &self.limits.max_depth)
            .field("max_values", &self.limits.max_values)
            .field("allow_unknown_keys", &self.allow_unknown_keys)
            .field("ignore_unmatched_env", &self.ignore_unmatched_env)
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
            ignore_unmatched_env: self.ignore_unmatched_env,
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
            ignore_unmatched_env: false,
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
    ///
    /// Each segment of a variable's name is matched against the keys serde reads, whatever
    /// their `rename` or `rename_all`, with `-` and `_` alike and letter case ignored: with a
    /// kebab-case configuration, `APP_RATE_LIMITS__BURST` sets `rate-limits.burst`. Map keys and
    /// the fields of plain (non-deriving) structs are matched against the keys the files
    /// already have, else taken in lower case. A variable with the prefix that names no field
    /// is refused (see [`ignore_unmatched_env`](Loader::ignore_unmatched_env)). The variables
    /// are read at every reload and are part of the content's identity: a reload after one
    /// changed applies it, though the files did not change.
    ///
    /// ```
    /// use hotcfg::{Format, HotReload, Loader, MemorySource, ReloadResult, Reloader, Secret};
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// #[serde(rename_all = "kebab-case")]
    /// struct Gateway {
    ///     #[reload(nested)]
    ///     rate_limits: RateLimits,
    ///     #[reload(scope = "auth")]
    ///     admin_password: Secret<String>,
    /// }
    ///
    /// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
    /// #[serde(rename_all = "kebab-case")]
    /// #[reload(scope = "limits")]
    /// struct RateLimits {
    ///     requests_per_second: u32,
    ///     burst: u32,
    /// }
    ///
    /// let file = "admin-password = \"change-me\"\n\
    ///             [rate-limits]\nrequests-per-second = 50\nburst = 100\n";
    /// std::env::set_var("GW_RATE_LIMITS__BURST", "777");
    /// std::env::set_var("GW_ADMIN_PASSWORD", "from-the-vault");
    /// let reloader = Reloader::<Gateway>::builder(MemorySource::new("gw.toml", Format::Toml, file))
    ///     .loader(Loader::new().env_prefix("GW_"))
    ///     .build()?;
    /// let live = reloader.handle().load();
    /// assert_eq!(live.rate_limits.burst, 777);
    /// assert!(live.admin_password.matches("from-the-vault"));
    ///
    /// // The same file with another value in the environment: applied.
    /// std::env::set_var("GW_RATE_LIMITS__BURST", "800");
    /// assert!(matches!(reloader.reload_now().result, ReloadResult::Applied { .. }));
    /// assert_eq!(reloader.handle().load().rate_limits.burst, 800);
    ///
    /// // A variable that names no field is refused, by its name.
    /// std::env::set_var("GW_RATE_LIMITS__BRUST", "1");
    /// let event = reloader.reload_now();
    /// let ReloadResult::Failed { error, .. } = &event.result else { panic!("{event:?}") };
    /// assert!(
    ///     error.to_string().contains(
    ///         "environment (GW_*): `GW_RATE_LIMITS__BRUST`: names no field, did you mean \
    ///          `GW_RATE_LIMITS__BURST`?"
    ///     ),
    ///     "{error}"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn env_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.env_prefix = Some(prefix.into());
        self
    }

    /// Ignores environment variables with the prefix that name no field, instead of refusing
    /// the configuration: for a prefix other programs' variables share.
    ///
    /// ```
    /// use hotcfg::{Format, Loader, SourceContent};
    ///
    /// #[derive(Debug, serde::Serialize, serde::Deserialize)]
    /// struct Config { workers: u32 }
    ///
    /// let content = SourceContent::single("app.toml", Format::Toml, "workers = 4\n");
    /// std::env::set_var("SHARED_HOME", "/home/shared");
    /// let strict = Loader::<Config>::new().env_prefix("SHARED_");
    /// assert!(strict.parse(&content).unwrap_err().to_string().contains("`SHARED_HOME`"));
    /// let lenient = strict.ignore_unmatched_env();
    /// assert_eq!(lenient.parse(&content).unwrap().workers, 4);
    /// ```
    pub fn ignore_unmatched_env(mut self) -> Self {
        self.ignore_unmatched_env = true;
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
        let hints = Hints {
            schema: &[],
            is_secret: &|_| false,
            closest_key: &|_| None,
        };
        self.parse_with(content, &hints)
    }

    /// What identifies the content `parse` would read: the sources' hash, and the environment
    /// overlay's variables when there is one (a reload after an environment change is not
    /// "unchanged" though the files are).
    pub(crate) fn content_key(&self, content: &SourceContent) -> String {
        match &self.env_prefix {
            None => content.identity.sha256.clone(),
            Some(prefix) => {
                let env = Overlay::read(prefix).fingerprint();
                sha256_hex(format!("{}\0{env}", content.identity.sha256).as_bytes())
            }
        }
    }

    /// [`parse`](Loader::parse), with what the configuration type tells about its keys.
    pub(crate) fn parse_with(
        &self,
        content: &SourceContent,
        hints: &Hints<'_>,
    ) -> Result<C, ConfigError> {
        if let Some(config) = self.read_straight(content) {
            return Ok(config);
        }
        self.parse_merged(content, hints)
    }

    /// `C` read straight from the text when there is one TOML layer and nothing to merge it with
    /// (see `straight`); `None` sends the content through [`parse_merged`](Loader::parse_merged).
    fn read_straight(&self, content: &SourceContent) -> Option<C> {
        match (content.layers.as_slice(), &self.defaults, &self.env_prefix) {
            ([layer], None, None) if layer.format == Format::Toml => {
                straight::read_toml(&layer.text, self.limits, self.allow_unknown_keys)
            }
            _ => None,
        }
    }

    /// Every layer parsed within the limits, merged by figment over the defaults, with the
    /// environment overlay, and `C` extracted noting unknown keys: the path that names every
    /// problem.
    fn parse_merged(&self, content: &SourceContent, hints: &Hints<'_>) -> Result<C, ConfigError> {
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
                        dict: Cell::new(dict),
                    })
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::new(Stage::Parse, problems));
        }
        let mut env = None;
        if let Some(prefix) = &self.env_prefix {
            let (with_env, placed) = self.overlay(figment, prefix, hints)?;
            figment = with_env;
            env = Some(EnvPlaced { prefix, placed });
        }
        let extracted = if self.allow_unknown_keys {
            figment.extract::<C>().map(|config| (config, Vec::new()))
        } else {
            (figment.extract::<unknown::NotingIgnored<C>>()).map(|c| (c.value, c.ignored))
        };
        let (config, mut unknown) = extracted.map_err(|err| {
            ConfigError::new(
                Stage::Parse,
                extraction_problems(err, content, env.as_ref(), hints.is_secret),
            )
        })?;
        if self.ignore_unmatched_env {
            if let Some(env) = &env {
                unknown.retain(|path| env.variable_for(path).is_none());
            }
        }
        if !unknown.is_empty() {
            let problems = unknown::problems(&unknown, content, env.as_ref(), hints.closest_key);
            return Err(ConfigError::new(Stage::Parse, problems));
        }
        Ok(config)
    }

    /// `figment` with the environment overlay merged on top, and where each variable went.
    /// Variables that name no field are refused here (unless ignored).
    fn overlay(
        &self,
        figment: Figment,
        prefix: &str,
        hints: &Hints<'_>,
    ) -> Result<(Figment, Vec<Placed>), ConfigError> {
        let overlay = Overlay::read(prefix);
        if overlay.is_empty() {
            return Ok((figment, Vec::new()));
        }
        let files = figment.extract::<Dict>().unwrap_or_default();
        let resolved = overlay.resolve(hints.schema, &files);
        if !resolved.unmatched.is_empty() && !self.ignore_unmatched_env {
            let problems = env::unmatched_problems(prefix, &resolved.unmatched, hints.closest_key);
            return Err(ConfigError::new(Stage::Parse, problems));
        }
        let layer = ParsedLayer {
            name: Overlay::source_name(prefix),
            dict: Cell::new(resolved.dict),
        };
        Ok((figment.merge(layer), resolved.placed))
    }
}

/// What the configuration type tells the loader about its keys (nothing, for [`Loader::parse`]).
pub(crate) struct Hints<'a> {
    /// Every field, for the environment overlay's names.
    pub schema: &'a [FieldInfo],
    /// Whether an error about this key could quote a secret.
    pub is_secret: &'a dyn Fn(&[String]) -> bool,
    /// The known key closest to an unknown one.
    pub closest_key: &'a dyn Fn(&[String]) -> Option<String>,
}

/// The environment overlay's variables, and the key each one set.
pub(crate) struct EnvPlaced<'a> {
    pub prefix: &'a str,
    pub placed: Vec<Placed>,
}

impl EnvPlaced<'_> {
    /// The variable that set `path` or a key under it (or, set to a table, the key's parent).
    pub(crate) fn variable_for(&self, path: &[String]) -> Option<&str> {
        self.placed
            .iter()
            .find(|p| p.path.starts_with(path) || path.starts_with(&p.path))
            .map(|p| p.variable.as_str())
    }
}

/// A layer already parsed (or the environment overlay), named so figment attributes its values
/// (and errors) to it.
struct ParsedLayer {
    name: String,
    /// Handed over, not cloned: figment asks for the data once, when the layer is merged.
    dict: Cell<Dict>,
}

impl Provider for ParsedLayer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.name.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.dict.take()))
    }
}

fn extraction_problems(
    err: figment::Error,
    content: &SourceContent,
    env: Option<&EnvPlaced<'_>>,
    is_secret: &dyn Fn(&[String]) -> bool,
) -> Vec<Problem> {
    err.into_iter()
        .map(|err| {
            let source = err.metadata.as_ref().map(|m| m.name.to_string());
            let layer = source
                .as_deref()
                .and_then(|name| content.layers.iter().find(|l| l.name == name));
            let line = layer.and_then(|l| locate_key(&l.text, l.format, &err.path));
            // A value from the environment is named by its variable.
            let variable = env
                .filter(|env| source.as_deref() == Some(&*Overlay::source_name(env.prefix)))
                .and_then(|env| env.variable_for(&err.path));
            let key = match variable {
                Some(variable) => Some(variable.to_string()),
                None => (!err.path.is_empty()).then(|| clip(err.path.join("."))),
            };
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
