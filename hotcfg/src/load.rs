//! Turning configuration text into a typed value: parse each layer, merge with figment, extract.
//!
//! Errors name the source (file or key), the key path, and where the text shows it, the line and
//! column.

use std::fmt;
use std::path::Path;

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::DeserializeOwned;

use crate::source::{Layer, SourceContent, SourceError};

/// A configuration text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name's extension names, if any.
    ///
    /// ```
    /// use hotcfg::Format;
    /// assert_eq!(Format::from_path("a/b.yml".as_ref()), Some(Format::Yaml));
    /// assert_eq!(Format::from_path("a/b.ini".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        })
    }
}

/// Which step found the problems in a [`ConfigError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// The bytes could not be read (missing, permissions, too large, not UTF-8...).
    Read,
    /// The text is not valid TOML/YAML/JSON, or does not fit the configuration type.
    Parse,
    /// The value broke a validation rule.
    Validate,
}

/// One problem with a configuration: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file or key the problem is in, when known.
    pub source: Option<String>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The dotted key path, when the problem is about a key.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut wrote = false;
        if let Some(source) = &self.source {
            f.write_str(source)?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
                if let Some(column) = self.column {
                    write!(f, ":{column}")?;
                }
            }
            wrote = true;
        }
        if let Some(key) = &self.key {
            if wrote {
                f.write_str(": ")?;
            }
            write!(f, "`{key}`")?;
            wrote = true;
        }
        if wrote {
            f.write_str(": ")?;
        }
        f.write_str(&self.message)
    }
}

/// A configuration that cannot be used: every problem found, each with its location.
///
/// ```
/// use hotcfg::{ConfigError, Problem, Stage};
///
/// let err = ConfigError::new(Stage::Validate, vec![Problem {
///     source: Some("app.toml".into()),
///     line: Some(3),
///     column: None,
///     key: Some("limits.max".into()),
///     message: "must be at least 1".into(),
/// }]);
/// assert_eq!(err.to_string(), "invalid configuration: app.toml:3: `limits.max`: must be at least 1");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ConfigError {
    /// The step that failed.
    pub stage: Stage,
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
}

impl ConfigError {
    /// An error with these problems.
    pub fn new(stage: Stage, problems: Vec<Problem>) -> Self {
        ConfigError { stage, problems }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.stage {
            Stage::Read => "cannot read configuration",
            Stage::Parse => "cannot parse configuration",
            Stage::Validate => "invalid configuration",
        })?;
        match self.problems.as_slice() {
            [one] => write!(f, ": {one}"),
            many => {
                write!(f, " ({} problems):", many.len())?;
                for problem in many {
                    write!(f, "\n  - {problem}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<SourceError> for ConfigError {
    fn from(err: SourceError) -> Self {
        ConfigError::new(
            Stage::Read,
            vec![Problem {
                source: Some(err.name),
                line: None,
                column: None,
                key: None,
                message: err.problem,
            }],
        )
    }
}

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
}

impl<C> fmt::Debug for Loader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("defaults", &self.defaults.is_some())
            .field("env_prefix", &self.env_prefix)
            .finish()
    }
}

impl<C> Default for Loader<C> {
    fn default() -> Self {
        Loader {
            defaults: None,
            env_prefix: None,
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

    /// Parses and merges the layers of `content`.
    pub fn parse(&self, content: &SourceContent) -> Result<C, ConfigError> {
        let mut figment = Figment::new();
        if let Some(defaults) = &self.defaults {
            figment = figment.merge(Serialized::defaults(defaults));
        }
        let mut problems = Vec::new();
        for layer in &content.layers {
            match parse_layer(layer) {
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
        figment
            .extract::<C>()
            .map_err(|err| ConfigError::new(Stage::Parse, extraction_problems(err, content)))
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

fn parse_layer(layer: &Layer) -> Result<Dict, Problem> {
    let problem = |line: Option<usize>, column: Option<usize>, message: String| Problem {
        source: Some(layer.name.clone()),
        line,
        column,
        key: None,
        message,
    };
    match layer.format {
        Format::Toml => toml::from_str::<Dict>(&layer.text).map_err(|err| {
            let (line, column) = match err.span() {
                Some(span) => {
                    let (l, c) = line_col(&layer.text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            problem(line, column, format!("invalid TOML: {}", err.message()))
        }),
        Format::Json => serde_json::from_str::<Dict>(&layer.text).map_err(|err| {
            let message = format!("invalid JSON: {err}");
            let message = match message.rfind(" at line ") {
                Some(at) => message[..at].to_string(),
                None => message,
            };
            problem(Some(err.line()), Some(err.column()), message)
        }),
        Format::Yaml => {
            if layer.text.trim().is_empty() {
                return Ok(Dict::new());
            }
            serde_yaml::from_str::<Dict>(&layer.text).map_err(|err| {
                let location = err.location();
                let message = format!("invalid YAML: {err}");
                let message = match message.rfind(" at line ") {
                    Some(at) => message[..at].to_string(),
                    None => message,
                };
                problem(
                    location.as_ref().map(|l| l.line()),
                    location.as_ref().map(|l| l.column()),
                    message,
                )
            })
        }
    }
}

fn extraction_problems(err: figment::Error, content: &SourceContent) -> Vec<Problem> {
    err.into_iter()
        .map(|err| {
            let source = err.metadata.as_ref().map(|m| m.name.to_string());
            let layer = source
                .as_deref()
                .and_then(|name| content.layers.iter().find(|l| l.name == name));
            let line = layer.and_then(|l| locate_key(&l.text, l.format, &err.path));
            let key = (!err.path.is_empty()).then(|| err.path.join("."));
            Problem {
                source,
                line,
                column: None,
                key,
                message: err.kind.to_string(),
            }
        })
        .collect()
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Best-effort: the 1-based line where `path` is written in `text`, for error messages.
pub fn locate_key(text: &str, format: Format, path: &[String]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    match format {
        Format::Toml => locate_toml(text, path),
        Format::Yaml | Format::Json => locate_nested(text, path),
    }
}

fn locate_toml(text: &str, path: &[String]) -> Option<usize> {
    let mut table: Vec<String> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.starts_with('[') {
            let inner = line.trim_start_matches('[');
            let inner = inner.split(']').next().unwrap_or("");
            table = split_dotted(inner);
            if table == path {
                return Some(index + 1);
            }
            continue;
        }
        let Some((key, _)) = line.split_once('=') else {
            continue;
        };
        let mut full = table.clone();
        full.extend(split_dotted(key));
        if full == path || (full.len() > path.len() && full.starts_with(path)) {
            return Some(index + 1);
        }
    }
    None
}

fn split_dotted(key: &str) -> Vec<String> {
    key.split('.')
        .map(|s| s.trim().trim_matches('"').trim_matches('\'').to_string())
        .collect()
}

fn locate_nested(text: &str, path: &[String]) -> Option<usize> {
    let mut from = 0;
    let mut found = None;
    let lines: Vec<&str> = text.lines().collect();
    for segment in path {
        let quoted = format!("\"{segment}\"");
        let hit = lines.iter().enumerate().skip(from).find(|(_, line)| {
            let line = line.trim_start().trim_start_matches("- ");
            line.starts_with(&format!("{segment}:"))
                || line.starts_with(&format!("{quoted}:"))
                || line.starts_with(&format!("{quoted} :"))
        });
        match hit {
            Some((index, _)) => {
                found = Some(index + 1);
                from = index + 1;
            }
            None => break,
        }
    }
    found
}
