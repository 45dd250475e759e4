//! The common case read straight into `C`: one TOML layer, no defaults, no environment overlay.
//!
//! There is nothing to merge then, so building figment's value tree, tagging it, cloning it and
//! deserializing `C` from it is work without a purpose: about half of a 21 KB file's load
//! (`peers_load`). Here toml's own document is checked against the same [`Limits`] and `C` is
//! deserialized from it directly, noting unknown keys.
//!
//! Only success is taken from here. Whatever fails (a limit, a type, an unknown key) returns
//! `None` and the caller runs the full path, which produces the error: so every error, its
//! location, key path and secret hiding, is exactly what the full path says, and this path never
//! refuses a file the full path accepts. The limits are checked at least as strictly as
//! [`BoundedDict`](super::bounded::BoundedDict) does, so it never accepts one the full path
//! refuses for its size or depth either.
//!
//! One difference remains on success: a `C` holding toml's own types that need toml's
//! deserializer (`toml::Spanned`) reads here and not through figment.

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use super::bounded::Limits;
use super::format::toml_fits_inline;

/// `C` from one TOML text, when it reads without any error or unknown key within `limits`.
pub(super) fn read_toml<C: DeserializeOwned>(
    text: &str,
    limits: Limits,
    allow_unknown_keys: bool,
) -> Option<C> {
    // Text that could nest deep enough to need the parser's big stack takes the full path.
    if !toml_fits_inline(text) {
        return None;
    }
    let document = DeTable::parse(text).ok()?;
    let mut values_left = limits.max_values;
    if !table_within(document.get_ref(), limits.max_depth, &mut values_left) {
        return None;
    }
    let deserializer = toml::Deserializer::from(document);
    if allow_unknown_keys {
        return C::deserialize(deserializer).ok();
    }
    let mut unknown = false;
    let config = serde_ignored::deserialize(deserializer, |_| unknown = true).ok()?;
    (!unknown).then_some(config)
}

/// Whether a table fits in `levels` levels (itself included) and the values left, counting as
/// `BoundedDict` does: every table, array and scalar is one value, every table or array one level.
fn table_within(table: &DeTable<'_>, levels: usize, values_left: &mut usize) -> bool {
    take_one(values_left)
        && levels > 0
        && table
            .values()
            .all(|value| value_within(value.get_ref(), levels - 1, values_left))
}

fn value_within(value: &DeValue<'_>, levels: usize, values_left: &mut usize) -> bool {
    match value {
        DeValue::Table(table) => table_within(table, levels, values_left),
        DeValue::Array(array) => {
            take_one(values_left)
                && levels > 0
                && array
                    .into_iter()
                    .all(|item| value_within(item.get_ref(), levels - 1, values_left))
        }
        // toml hands a datetime to serde as a table of one string: two values, one level.
        DeValue::Datetime(_) => levels > 0 && take_one(values_left) && take_one(values_left),
        DeValue::String(_) | DeValue::Integer(_) | DeValue::Float(_) | DeValue::Boolean(_) => {
            take_one(values_left)
        }
    }
}

fn take_one(values_left: &mut usize) -> bool {
    match values_left.checked_sub(1) {
        Some(left) => {
            *values_left = left;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use super::*;
    use crate::load::{Format, Hints, Loader};
    use crate::source::SourceContent;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Mode {
        Fast,
        Careful,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Shape {
        Circle { radius: f64 },
        Label(String),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Server {
        host: String,
        port: u16,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Config {
        name: String,
        ratio: f64,
        count: u32,
        on: bool,
        initial: char,
        when: Option<toml::value::Datetime>,
        mode: Mode,
        shape: Option<Shape>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        limits: BTreeMap<String, i64>,
        #[serde(default)]
        servers: Vec<Server>,
        #[serde(default)]
        primary: Option<Server>,
    }

    const FULL: &str = r#"
name = "svc"
ratio = 2
count = 7
on = true
initial = "x"
when = 2026-11-30T08:00:00Z
mode = "Careful"
shape = { Circle = { radius = 1.5 } }
tags = ["a", "b"]
limits.cpu = -3
limits.mem = 4096
[primary]
host = "h"
port = 80
[[servers]]
host = "a"
port = 1
[[servers]]
host = "b"
port = 2
"#;

    /// What the full path says about `text`, and what the straight path says.
    fn both(loader: &Loader<Config>, text: &str) -> (Result<Config, String>, Option<Config>) {
        let content = SourceContent::single("c.toml", Format::Toml, text);
        let hints = Hints {
            schema: &[],
            is_secret: &|_| false,
            closest_key: &|_| None,
        };
        let merged = loader
            .parse_merged(&content, &hints)
            .map_err(|err| err.to_string());
        let straight = read_toml(text, loader.limits, loader.allow_unknown_keys);
        (merged, straight)
    }

    /// The straight path agrees with the full path whenever it answers, and answers whenever the
    /// full path succeeds.
    fn assert_agree(loader: &Loader<Config>, text: &str) -> Result<Config, String> {
        let (merged, straight) = both(loader, text);
        match (&merged, straight) {
            (Ok(config), Some(read)) => assert_eq!(config, &read, "{text}"),
            (Ok(_), None) => panic!("the straight path refused what the full path read:\n{text}"),
            (Err(err), Some(read)) => {
                panic!("the straight path read {read:?}, the full path: {err}")
            }
            (Err(_), None) => {}
        }
        merged
    }

    #[test]
    fn every_kind_of_value_reads_the_same_as_through_figment() {
        let loader = Loader::new();
        let config = assert_agree(&loader, FULL).unwrap();
        assert_eq!(config.ratio, 2.0);
        assert_eq!(config.servers.len(), 2);
        let label = FULL.replace("{ Circle = { radius = 1.5 } }", "{ Label = \"l\" }");
        assert_agree(&loader, &label).unwrap();
        let unit = FULL.replace("mode = \"Careful\"", "mode = \"Fast\"");
        assert_agree(&loader, &unit).unwrap();
    }

    #[test]
    fn every_error_is_left_to_the_full_path() {
        let loader = Loader::new();
        for (from, to, error) in [
            ("count = 7", "count = -7", "invalid value"),
            ("count = 7", "count = \"7\"", "invalid type"),
            ("name = \"svc\"", "", "missing field `name`"),
            ("mode = \"Careful\"", "mode = \"Slow\"", "unknown variant"),
            ("port = 80", "port = 80\nprot = 1", "unknown key"),
            ("count = 7", "count = 7\ncount = 8", "duplicate key"),
            ("initial = \"x\"", "initial = \"xy\"", "invalid value"),
        ] {
            let text = FULL.replacen(from, to, 1);
            let err = assert_agree(&loader, &text).unwrap_err();
            assert!(err.contains(error), "{err}");
        }
    }

    #[test]
    fn unknown_keys_allowed_read_straight() {
        let text = FULL.replace("port = 80", "port = 80\nprot = 1");
        let loader = Loader::new().allow_unknown_keys();
        assert_agree(&loader, &text).unwrap();
        assert!(read_toml::<Config>(&text, loader.limits, true).is_some());
    }

    #[test]
    fn the_limits_hold_exactly_where_the_full_path_puts_them() {
        // The full document and its deepest part (a datetime: a table of one string to serde).
        for depth in 1..6 {
            for values in (0..40).chain([usize::MAX]) {
                let loader = Loader::new().max_depth(depth).max_values(values);
                let (merged, straight) = both(&loader, FULL);
                assert_eq!(
                    merged.is_ok(),
                    straight.is_some(),
                    "depth {depth}, values {values}: {merged:?}"
                );
            }
        }
        let deep = format!("name = {}1{}\n", "[".repeat(70), "]".repeat(70));
        assert!(read_toml::<Config>(&deep, Loader::<Config>::new().limits, false).is_none());
    }
}
