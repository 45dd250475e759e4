//! A wrapper that keeps a secret out of `Debug` and `Display` output.

use std::fmt;
use std::ops::Deref;

use crate::REDACTED;

/// A value that must never be printed: `Debug` and `Display` show [`REDACTED`].
///
/// `#[reload(secret)]` keeps a field's value out of everything hotcfg renders (diffs, plans,
/// events, the audit log, [`redacted_json`](crate::redacted_json)), but a configuration's own
/// `#[derive(Debug)]` still prints it, and so does every `{:?}` of a value that holds the
/// configuration (a [`Snapshot`](crate::Snapshot), an [`ApplyContext`](crate::ApplyContext)).
/// Wrapping the field's type closes that hole; use both:
///
/// ```
/// use hotcfg::{HotReload, Secret};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "auth", secret)]
///     token: Secret<String>,
/// }
///
/// let config: Config = toml::from_str("token = \"hunter2\"").unwrap();
/// assert_eq!(format!("{config:?}"), "Config { token: <redacted> }");
/// assert_eq!(config.token.expose(), "hunter2");
/// assert!(config.token.matches("hunter2"));
/// ```
///
/// Serialization is transparent (the value itself, so files round-trip and the engine can compare
/// and store it): do not serialize a configuration for display, use
/// [`redacted_json`](crate::redacted_json).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub const fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value, for the code that uses it (named so that a reader sees where it is exposed).
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The value, unwrapped.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T: AsRef<[u8]>> Secret<T> {
    /// Whether `candidate` equals the secret, in time that depends on their lengths only, not on
    /// where they first differ (comparing a token with `==` tells an attacker, by timing, how
    /// much of a guess was right).
    pub fn matches(&self, candidate: impl AsRef<[u8]>) -> bool {
        let (secret, candidate) = (self.0.as_ref(), candidate.as_ref());
        if secret.len() != candidate.len() {
            return false;
        }
        let difference = secret
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl<T> Deref for Secret<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}
