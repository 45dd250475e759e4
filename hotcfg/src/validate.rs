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
