//! Turning configuration text into a typed value: parse each layer, merge with figment, extract.
//!
//! Errors name the source (file or key), the key path, and where the text shows it, the line and
//! column.

use std::cell::Cell;
use std::fmt;
use std::path::Path;

use figment::providers::{Env, Serialized};
use figment::value::{Dict, Empty, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::de::{self, DeserializeOwned};

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
    limits: Limits,
}

impl<C> fmt::Debug for Loader<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loader")
            .field("defaults", &self.defaults.is_some())
            .field("env_prefix", &self.env_prefix)
            .field("max_depth", &self.limits.max_depth)
            .field("max_values", &self.limits.max_values)
            .finish()
    }
}

impl<C> Default for Loader<C> {
    fn default() -> Self {
        Loader {
            defaults: None,
            env_prefix: None,
            limits: Limits::default(),
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

    /// Parses and merges the layers of `content`.
    pub fn parse(&self, content: &SourceContent) -> Result<C, ConfigError> {
        self.parse_hiding(content, &|_| false)
    }

    /// [`parse`](Loader::parse), with the values of keys for which `is_secret` holds left out of
    /// error messages ("invalid type: found string \"hunter2\"" would print a secret).
    pub(crate) fn parse_hiding(
        &self,
        content: &SourceContent,
        is_secret: &dyn Fn(&[String]) -> bool,
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
        figment.extract::<C>().map_err(|err| {
            ConfigError::new(Stage::Parse, extraction_problems(err, content, is_secret))
        })
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

fn parse_layer(layer: &Layer, limits: Limits) -> Result<Dict, Problem> {
    let problem = |line: Option<usize>, column: Option<usize>, message: String| Problem {
        source: Some(layer.name.clone()),
        line,
        column,
        key: None,
        message: clip(message),
    };
    // Every format is parsed through `BoundedDict`, never straight into figment's `Dict`: it
    // refuses duplicate keys, nesting deeper than `max_depth` (the deserializers recurse once per
    // level: a deep document would overflow the stack) and more than `max_values` values (YAML
    // aliases expand: a few hundred bytes can describe billions of values).
    let seed = BoundedDict::new(limits, layer.format);
    match layer.format {
        Format::Toml => parse_toml(&layer.text, limits).map_err(|err| {
            let (line, column) = match err.span() {
                Some(span) => {
                    let (l, c) = line_col(&layer.text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            problem(line, column, format!("invalid TOML: {}", err.message()))
        }),
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(&layer.text);
            seed.deserialize(&mut de)
                .and_then(|dict| de.end().map(|()| dict))
                .map_err(|err| {
                    let message = format!("invalid JSON: {err}");
                    let message = match message.rfind(" at line ") {
                        Some(at) => message[..at].to_string(),
                        None => message,
                    };
                    problem(Some(err.line()), Some(err.column()), message)
                })
        }
        Format::Yaml => {
            if layer.text.trim().is_empty() {
                return Ok(Dict::new());
            }
            // libyaml takes time quadratic in the nesting of `[`/`{` (100,000 levels: a minute),
            // all of it before the first value reaches `BoundedDict`: count first.
            if let Some(offset) = flow_depth_exceeded(&layer.text, YAML_FLOW_SCAN_DEPTH) {
                let (line, column) = line_col(&layer.text, offset);
                return Err(problem(
                    Some(line),
                    Some(column),
                    format!(
                        "invalid YAML: `[`/`{{` nested deeper than {YAML_FLOW_SCAN_DEPTH} levels"
                    ),
                ));
            }
            seed.deserialize(serde_yaml::Deserializer::from_str(&layer.text))
                .map_err(|err| {
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

/// Stack for the thread that parses TOML. toml_edit bounds nesting (79 levels of arrays and
/// inline tables, 79 segments per dotted key) but the two multiply: `x = { a.a.(77 more) = { ...`
/// builds a document 6,300 levels deep, and dropping it recurses once per level, which overflows
/// a 2 MiB thread stack (an abort, not an error). The deepest document toml_edit accepts needs
/// about 4 MiB in a debug build; 64 MiB leaves a wide margin. Only the pages used are committed.
const TOML_PARSER_STACK: usize = 64 * 1024 * 1024;

/// Documents whose nesting could exceed this are parsed on a thread with
/// [`TOML_PARSER_STACK`]; below it (every configuration written by a person) the caller's stack
/// is ample: about 0.7 MiB at this depth in a debug build, where the smallest stacks hotcfg runs
/// on (test and tokio blocking threads) have 2 MiB. Starting the thread costs ~100 µs, ten times
/// the parse of a small file, so it is paid only when needed.
const TOML_INLINE_NESTING: usize = 1024;

/// An upper bound on how deep a TOML document can nest: every level needs its own `[`, `{` or
/// `.` token (a table header, an array or inline table, a dotted key segment).
fn toml_nesting_bound(text: &str) -> usize {
    text.bytes()
        .filter(|b| matches!(b, b'[' | b'{' | b'.'))
        .count()
}

/// Parses TOML, on a thread of its own with a stack large enough for the deepest document
/// toml_edit accepts when the text could nest that deep.
fn parse_toml(text: &str, limits: Limits) -> Result<Dict, toml::de::Error> {
    use serde::de::Error as _;
    if toml_nesting_bound(text) <= TOML_INLINE_NESTING {
        return BoundedDict::new(limits, Format::Toml).deserialize(toml::Deserializer::new(text));
    }
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("hotcfg-toml".into())
            .stack_size(TOML_PARSER_STACK)
            .spawn_scoped(scope, || {
                BoundedDict::new(limits, Format::Toml).deserialize(toml::Deserializer::new(text))
            })
            .map_err(|err| toml::de::Error::custom(format!("cannot start the parser: {err}")))?;
        parser.join().unwrap_or_else(|panic| {
            Err(toml::de::Error::custom(format!(
                "the parser panicked: {}",
                crate::handlers::panic_message(panic.as_ref())
            )))
        })
    })
}

/// Nesting of `[`/`{` in YAML text refused before parsing. Far above [`DEFAULT_MAX_DEPTH`], which
/// still applies while deserializing: this count also sees brackets inside strings and comments,
/// so it is set where libyaml is still fast (a few milliseconds) and a false alarm would need a
/// thousand unclosed brackets in strings.
const YAML_FLOW_SCAN_DEPTH: usize = 1000;

/// The byte offset where `[`/`{` first nest deeper than `max` in `text`, if they do. Counts every
/// bracket, quoted or not.
fn flow_depth_exceeded(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, byte) in text.bytes().enumerate() {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(offset);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Nesting allowed in one document unless [`Loader::max_depth`] says otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Values allowed in one document unless [`Loader::max_values`] says otherwise.
pub const DEFAULT_MAX_VALUES: usize = 100_000;

/// What one parsed document may hold.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_depth: usize,
    max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_values: DEFAULT_MAX_VALUES,
        }
    }
}

/// Deserializes a document into figment's [`Dict`] like `Dict::deserialize` does, but within
/// [`Limits`] and refusing a key written twice in one table (serde_json and serde_yaml would keep
/// the last one silently; TOML already refuses).
struct BoundedDict {
    limits: Limits,
    /// Levels that may still be opened, and values that may still be read.
    left: Cell<(usize, usize)>,
    /// Keys of the tables being read, to name a duplicate key in full.
    path: std::cell::RefCell<Vec<String>>,
    yaml: bool,
}

impl BoundedDict {
    fn new(limits: Limits, format: Format) -> Self {
        BoundedDict {
            limits,
            left: Cell::new((limits.max_depth, limits.max_values)),
            path: std::cell::RefCell::new(Vec::new()),
            yaml: format == Format::Yaml,
        }
    }

    fn deserialize<'de, D: de::Deserializer<'de>>(&self, de: D) -> Result<Dict, D::Error> {
        // `deserialize_any`, not `deserialize_map`: a deserializer asked for a map reports any
        // other value itself, quoting it ("invalid type: string \"hunter2\""). Here the visitor
        // reports it, without the value.
        let value = de.deserialize_any(Bounded {
            doc: self,
            top: true,
        })?;
        match value {
            Value::Dict(_, dict) => Ok(dict),
            // An empty YAML document (`~`, `---`): no settings.
            _ => Ok(Dict::new()),
        }
    }

    fn count<E: de::Error>(&self) -> Result<(), E> {
        let (depth, values) = self.left.get();
        if values == 0 {
            let note = if self.yaml {
                " (an alias counts once per use)"
            } else {
                ""
            };
            return Err(E::custom(format_args!(
                "more than {} values{note}",
                self.limits.max_values
            )));
        }
        self.left.set((depth, values - 1));
        Ok(())
    }

    /// Runs `inside` one level deeper, or fails when that is too deep.
    fn nested<T, E: de::Error>(&self, inside: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.count()?;
        let (depth, values) = self.left.get();
        if depth == 0 {
            return Err(E::custom(format_args!(
                "nested deeper than {} levels",
                self.limits.max_depth
            )));
        }
        self.left.set((depth - 1, values));
        let result = inside();
        let (depth, values) = self.left.get();
        self.left.set((depth + 1, values));
        result
    }
}

/// One value of a document (a [`de::DeserializeSeed`] and its visitor).
#[derive(Clone, Copy)]
struct Bounded<'a> {
    doc: &'a BoundedDict,
    /// The whole document, which must be a table.
    top: bool,
}

impl Bounded<'_> {
    fn child(self) -> Self {
        Bounded {
            doc: self.doc,
            top: false,
        }
    }

    fn scalar<E: de::Error>(self, value: impl Into<Value>) -> Result<Value, E> {
        if self.top {
            // The value itself is never shown: a file holding only a secret would print it.
            return Err(E::custom(
                "expected a table of settings, found a single value",
            ));
        }
        self.doc.count()?;
        Ok(value.into())
    }
}

impl<'de> de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

macro_rules! visit_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Value, E> {
            self.scalar(v)
        }
    )*};
}

impl<'de> de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.top {
            "a table of settings"
        } else {
            "a value"
        })
    }

    visit_scalars!(
        visit_bool: bool, visit_char: char, visit_str: &str, visit_string: String,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128,
        visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_f32: f32, visit_f64: f64,
    );

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        if self.top {
            return Ok(Value::from(Dict::new())); // an empty YAML document
        }
        self.scalar(Empty::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.top {
            return Ok(Value::from(Dict::new()));
        }
        self.scalar(Empty::Unit)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.top {
            return Err(de::Error::custom(
                "expected a table of settings, found a list",
            ));
        }
        self.doc.nested(|| {
            // No `size_hint` preallocation: the hint is the attacker's number.
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self.child())? {
                items.push(item);
            }
            Ok(Value::from(items))
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.doc.nested(|| {
            let mut dict = Dict::new();
            while let Some(key) = map.next_key::<String>()? {
                if dict.contains_key(&key) {
                    let mut path = self.doc.path.borrow().join(".");
                    if !path.is_empty() {
                        path.push('.');
                    }
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{path}{key}`"
                    )));
                }
                self.doc.path.borrow_mut().push(key.clone());
                let value = map.next_value_seed(self.child());
                self.doc.path.borrow_mut().pop();
                dict.insert(key, value?);
            }
            Ok(Value::from(dict))
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A YAML tag (`!name value`): figment nests the value under the tag's name.
        use de::VariantAccess;
        let (tag, variant) = data.variant::<String>()?;
        let value = self
            .doc
            .nested(|| variant.newtype_variant_seed(self.child()))?;
        Ok(figment::util::nest(&tag, value))
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

/// Longest problem message or key kept, in characters. Messages quote values ("invalid type:
/// found string \"...\"") and keys, either of which can be megabytes long; the whole message goes
/// to the audit log and the logs on every attempt.
const MAX_MESSAGE_CHARS: usize = 300;

pub(crate) fn clip(mut text: String) -> String {
    if let Some((at, _)) = text.char_indices().nth(MAX_MESSAGE_CHARS) {
        let rest = text.len() - at;
        text.truncate(at);
        text.push_str(&format!("... ({rest} more bytes)"));
    }
    text
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `[t.t.(78 dots)]` then `x = ` and `levels` inline tables keyed by 79-segment dotted keys:
    /// toml_edit's worst case, `levels * 79 + 79` levels deep.
    fn inline_times_dotted(levels: usize) -> String {
        let key = vec!["k"; 79].join(".");
        let mut text = format!("[{}]\nx = ", vec!["t"; 79].join("."));
        for _ in 0..levels {
            text.push_str(&format!("{{ {key} = "));
        }
        text.push('1');
        text.push_str(&" }".repeat(levels));
        text
    }

    #[test]
    fn the_deepest_document_parsed_inline_fits_a_two_mib_stack() {
        // The largest input that stays on the caller's stack, on the smallest stack hotcfg runs on.
        let levels = (1..)
            .take_while(|n| toml_nesting_bound(&inline_times_dotted(*n)) <= TOML_INLINE_NESTING)
            .last()
            .unwrap();
        let text = inline_times_dotted(levels);
        assert!(
            toml_nesting_bound(&text) > 900,
            "the case must be near the bound"
        );
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || parse_toml(&text, Limits::default()).map(|_| ()))
            .unwrap()
            .join()
            .expect("parsing on a 2 MiB stack must not overflow it");
        let err = result.unwrap_err().to_string();
        assert!(err.contains("nested deeper than"), "{err}");
    }

    #[test]
    fn the_nesting_bound_counts_every_token_that_opens_a_level() {
        assert_eq!(toml_nesting_bound("a = 1\nb = \"x\"\n"), 0);
        assert_eq!(toml_nesting_bound("[a.b]\nc.d = { e = [1.5] }\n"), 6);
    }
}
