//! Secrets by type: a [`Secret`] is redacted wherever a value is shown, whatever holds it.
//!
//! Every rendering hotcfg does (diffs, events, plans, the audit log, [`redacted_json`],
//! error messages) goes through `Serialize` or `Debug`, so the type itself decides: `Debug` and
//! `Display` print [`REDACTED`], and `Serialize` writes [`REDACTED`] unless the caller asked for
//! the values explicitly with [`with_secrets_exposed`]. A secret inside a plain struct, an
//! `Option`, a `Vec` or a map value is therefore never shown, with or without
//! `#[reload(secret)]`.
//!
//! [`redacted_json`]: crate::redacted_json

use std::cell::Cell;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, SecretBox};
use subtle::ConstantTimeEq;

use crate::REDACTED;

/// A value that must never be shown: `Debug`, `Display` and `Serialize` give [`REDACTED`].
///
/// Built on [`secrecy::SecretBox`]: the value lives on the heap and is zeroized when dropped, and
/// reading it is always an explicit [`expose_secret`](Secret::expose_secret) call (there is no
/// `Deref`). Unlike `SecretBox` it is `Clone` and `PartialEq`, as a configuration must be, so
/// a changed secret is still a change: `token [auth]: <redacted> -> <redacted>`.
///
/// ```
/// use hotcfg::{HotReload, Secret};
///
/// /// A plain struct: it need not derive `HotReload`, the type keeps the token hidden.
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct HealthCheck {
///     path: String,
///     auth_token: Option<Secret<String>>,
/// }
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "routing")]
///     health: HealthCheck,
/// }
///
/// let old: Config = toml::from_str("[health]\npath = \"/up\"\nauth_token = \"s3cr3t-1\"").unwrap();
/// let new: Config = toml::from_str("[health]\npath = \"/up\"\nauth_token = \"s3cr3t-2\"").unwrap();
/// assert_eq!(old.diff(&new).to_string(), "health.auth_token [routing]: <redacted> -> <redacted>");
/// assert!(!format!("{old:?}").contains("s3cr3t"));
/// assert_eq!(hotcfg::redacted_json(&old)["health"]["auth_token"], "<redacted>");
/// let token = old.health.auth_token.as_ref().unwrap();
/// assert_eq!(token.expose_secret(), "s3cr3t-1");
/// assert!(token.matches("s3cr3t-1"));
/// ```
///
/// # Writing a configuration back to a file
///
/// Reading a file is transparent: a `Secret<String>` is written in the file as a plain string.
/// Serializing is not: `toml::to_string(&config)` writes `"<redacted>"` where each secret was, so
/// a configuration printed or logged by accident shows nothing. To write the real values (saving
/// a configuration file), serialize inside [`with_secrets_exposed`]: the round trip is then exact.
///
/// ```
/// # use hotcfg::Secret;
/// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
/// struct Config { token: Secret<String> }
///
/// let config = Config { token: Secret::new("hunter2".to_string()) };
/// assert_eq!(toml::to_string(&config).unwrap(), "token = \"<redacted>\"\n");
/// let saved = hotcfg::secret::with_secrets_exposed(|| toml::to_string(&config)).unwrap();
/// assert_eq!(saved, "token = \"hunter2\"\n");
/// assert_eq!(toml::from_str::<Config>(&saved).unwrap(), config);
/// ```
pub struct Secret<T: Zeroize>(SecretBox<T>);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value` (moved to the heap, zeroized when the secret is dropped).
    pub fn new(value: T) -> Self {
        Secret(SecretBox::new(Box::new(value)))
    }

    /// The value, for the code that uses it (named so that a reader sees where it is exposed).
    pub fn expose_secret(&self) -> &T {
        self.0.expose_secret()
    }
}

impl<T: Zeroize + AsRef<[u8]>> Secret<T> {
    /// Whether `candidate` equals the secret, in time that depends on their lengths only, not on
    /// where they first differ (comparing a token with `==` tells an attacker, by timing, how
    /// much of a guess was right). The comparison is `subtle`'s.
    pub fn matches(&self, candidate: impl AsRef<[u8]>) -> bool {
        let secret: &[u8] = self.expose_secret().as_ref();
        secret.ct_eq(candidate.as_ref()).into()
    }
}

impl<T: Zeroize> ExposeSecret<T> for Secret<T> {
    fn expose_secret(&self) -> &T {
        self.0.expose_secret()
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        // `init_with` zeroizes the temporary copy it moves to the heap.
        Secret(SecretBox::init_with(|| self.expose_secret().clone()))
    }
}

impl<T: Zeroize + Default> Default for Secret<T> {
    fn default() -> Self {
        Secret(SecretBox::default())
    }
}

/// Equality of the values (a configuration's diff must see a rotated secret). Use
/// [`matches`](Secret::matches) to check a guess: it takes constant time.
impl<T: Zeroize + PartialEq> PartialEq for Secret<T> {
    fn eq(&self, other: &Self) -> bool {
        self.expose_secret() == other.expose_secret()
    }
}

impl<T: Zeroize + Eq> Eq for Secret<T> {}

impl<T: Zeroize> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret::new(value)
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T: Zeroize + serde::Serialize> serde::Serialize for Secret<T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match SHOWN.get() {
            Shown::Redacted => serializer.serialize_str(REDACTED),
            Shown::Exposed => self.expose_secret().serialize(serializer),
            Shown::Fingerprint => serializer.serialize_str(&fingerprint(self.expose_secret())),
        }
    }
}

/// Transparent: the file holds the value itself. A value of the wrong type is refused without
/// quoting it (serde's own message would: "invalid type: string \"hunter2\"").
impl<'de, T: Zeroize + serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match T::deserialize(deserializer) {
            Ok(value) => Ok(Secret::new(value)),
            Err(_) => Err(serde::de::Error::custom(format_args!(
                "invalid value, expected {} {NOT_SHOWN}",
                short_type_name::<T>()
            ))),
        }
    }
}

/// Ends the message of a refused secret (and tells the loader that it quotes nothing).
pub(crate) const NOT_SHOWN: &str = "(not shown: the value is secret)";

/// The type's name without module paths: `alloc::vec::Vec<alloc::string::String>` as
/// `Vec<String>`.
fn short_type_name<T>() -> String {
    let full = std::any::type_name::<T>();
    let mut out = String::with_capacity(full.len());
    let mut word = String::new();
    let mut chars = full.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            // What came before `::` was a module or crate name.
            chars.next();
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    out
}

/// How a [`Secret`] serializes on this thread.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// As [`REDACTED`]: the default, for everything shown to people.
    Redacted,
    /// As its value: asked for explicitly, to write a configuration file.
    Exposed,
    /// As a keyed hash, to tell inside a diff whether two secrets differ; never leaves it.
    Fingerprint,
}

thread_local! {
    static SHOWN: Cell<Shown> = const { Cell::new(Shown::Redacted) };
}

/// Restores the previous mode when dropped, so a panic inside does not leave secrets exposed.
struct Restore(Shown);

impl Drop for Restore {
    fn drop(&mut self) {
        SHOWN.set(self.0);
    }
}

fn with_shown<R>(mode: Shown, f: impl FnOnce() -> R) -> R {
    let _restore = Restore(SHOWN.replace(mode));
    f()
}

/// Runs `f` with every [`Secret`] serializing as its real value, on this thread only: for
/// writing a configuration back to a file. Everywhere else a secret serializes as
/// [`REDACTED`].
///
/// ```
/// let token = hotcfg::Secret::new("hunter2".to_string());
/// assert_eq!(serde_json::to_string(&token).unwrap(), "\"<redacted>\"");
/// let exposed = hotcfg::secret::with_secrets_exposed(|| serde_json::to_string(&token));
/// assert_eq!(exposed.unwrap(), "\"hunter2\"");
/// ```
pub fn with_secrets_exposed<R>(f: impl FnOnce() -> R) -> R {
    with_shown(Shown::Exposed, f)
}

/// Runs `f` with every [`Secret`] serializing as a fingerprint (see [`scrub`]).
pub(crate) fn with_fingerprints<R>(f: impl FnOnce() -> R) -> R {
    with_shown(Shown::Fingerprint, f)
}

/// Marks a fingerprint; a configuration value starting with it is not expected.
const FINGERPRINT: &str = "\u{1}hotcfg-secret:";

/// A hash of the value keyed per process: equal values give equal fingerprints, and nothing
/// about the value can be learnt from it without the key, which never leaves the process.
fn fingerprint<T: serde::Serialize>(value: &T) -> String {
    static KEY: OnceLock<std::collections::hash_map::RandomState> = OnceLock::new();
    let mut hasher = KEY.get_or_init(Default::default).build_hasher();
    let hashed = with_secrets_exposed(|| serde_json::to_writer(HashWriter(&mut hasher), value));
    if hashed.is_err() {
        return format!("{FINGERPRINT}unhashable");
    }
    format!("{FINGERPRINT}{:016x}", hasher.finish())
}

struct HashWriter<'a, H>(&'a mut H);

impl<H: Hasher> std::io::Write for HashWriter<'_, H> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.write(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Whether `value` (serialized under [`with_fingerprints`]) holds a secret anywhere.
pub(crate) fn holds_fingerprint(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.starts_with(FINGERPRINT),
        Value::Array(items) => items.iter().any(holds_fingerprint),
        Value::Object(map) => map.values().any(holds_fingerprint),
        _ => false,
    }
}

/// [`FINGERPRINT`] as JSON text escapes it.
const FINGERPRINT_IN_JSON: &str = "\\u0001hotcfg-secret:";

/// Whether JSON text rendered under [`with_fingerprints`] may hold a secret. Text that merely
/// looks like a fingerprint also says yes: the caller then takes the exact, slower path.
pub(crate) fn rendered_holds_fingerprint(json: &str) -> bool {
    json.contains(FINGERPRINT_IN_JSON)
}

/// Replaces every fingerprint in `value` by [`REDACTED`].
pub(crate) fn scrub(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) if text.starts_with(FINGERPRINT) => *text = REDACTED.to_string(),
        Value::Array(items) => items.iter_mut().for_each(scrub),
        Value::Object(map) => map.values_mut().for_each(scrub),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_redacted_unless_exposed() {
        let secret = Secret::new(42u64);
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
        let exposed = with_secrets_exposed(|| serde_json::to_string(&secret).unwrap());
        assert_eq!(exposed, "42");
        // The mode ends with the call, even when it panics.
        let _ = std::panic::catch_unwind(|| with_secrets_exposed(|| panic!("inside")));
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"<redacted>\"");
    }

    #[test]
    fn rendered_fingerprints_are_recognised() {
        let secret = Secret::new(7u8);
        let text = with_fingerprints(|| serde_json::to_string(&vec![secret]).unwrap());
        assert!(rendered_holds_fingerprint(&text), "{text}");
        assert!(rendered_holds_fingerprint(
            &serde_json::to_string(FINGERPRINT).unwrap()
        ));
        assert!(!rendered_holds_fingerprint("[\"<redacted>\",1]"));
    }

    #[test]
    fn fingerprints_tell_values_apart_and_scrub_away() {
        let (a, b) = (
            Secret::new("one".to_string()),
            Secret::new("two".to_string()),
        );
        let value = |s: &Secret<String>| with_fingerprints(|| serde_json::to_value(s).unwrap());
        assert_eq!(value(&a), value(&a.clone()));
        assert_ne!(value(&a), value(&b));
        let mut list = with_fingerprints(|| serde_json::to_value(vec![a, b]).unwrap());
        assert!(holds_fingerprint(&list));
        scrub(&mut list);
        assert_eq!(list, serde_json::json!(["<redacted>", "<redacted>"]));
        assert!(!holds_fingerprint(&list));
    }

    #[test]
    fn a_mistyped_secret_is_refused_without_quoting_it() {
        let err = serde_json::from_str::<Secret<u64>>("\"hunter2\"").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value, expected u64 (not shown: the value is secret)"
        );
        let err = serde_json::from_str::<Secret<Vec<String>>>("[1]").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("invalid value, expected Vec<String> ("));
    }

    #[test]
    fn matches_is_exact() {
        let secret = Secret::new("hunter2".to_string());
        assert!(secret.matches("hunter2"));
        assert!(!secret.matches("hunter3"));
        assert!(!secret.matches("hunter22"));
        assert!(!secret.matches(""));
    }
}
