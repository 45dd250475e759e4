//! What is wrong with a configuration, and where.

use std::fmt;

use crate::source::SourceError;

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
    /// The source's own error, when the configuration could not be read.
    /// Boxed: every `Result` carrying a `ConfigError` stays small.
    #[serde(skip)]
    read: Option<Box<SourceError>>,
}

impl ConfigError {
    /// An error with these problems.
    pub fn new(stage: Stage, problems: Vec<Problem>) -> Self {
        ConfigError {
            stage,
            problems,
            read: None,
        }
    }

    /// When the configuration could not be read (stage [`Stage::Read`]): the source's error,
    /// whose [`kind`](SourceError::kind) says whether a later read may succeed.
    ///
    /// ```
    /// use hotcfg::{ConfigError, FileSource, Source, SourceErrorKind, Stage};
    ///
    /// let err = ConfigError::from(FileSource::new("/nonexistent/app.toml").read().unwrap_err());
    /// assert_eq!(err.stage, Stage::Read);
    /// assert_eq!(err.read_error().unwrap().kind, SourceErrorKind::NotFound);
    /// ```
    pub fn read_error(&self) -> Option<&SourceError> {
        self.read.as_deref()
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
        let problem = Problem {
            source: Some(err.name.clone()),
            line: None,
            column: None,
            key: None,
            message: err.problem.clone(),
        };
        ConfigError {
            read: Some(Box::new(err)),
            ..ConfigError::new(Stage::Read, vec![problem])
        }
    }
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
