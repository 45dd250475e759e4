//! Floats JSON cannot hold. The diff renders values as JSON, where NaN and the infinities become
//! `null`: an `f64` going from 1.5 to NaN would read `1.5 -> null`, and a NaN that did not
//! change (NaN != NaN, so `PartialEq` calls it a change) would read `null -> null`. Values are
//! looked at again through YAML, which keeps them (and where one NaN equals another), with each
//! non-finite float as a marker that renders as `NaN`, `inf` or `-inf`.

use crate::secret::with_fingerprints;

/// Starts the marker that stands for a non-finite float.
const MARKER: &str = "\u{1}hotcfg-float:";

/// `value` as the diff walks it, with non-finite floats kept as markers (and secrets as
/// fingerprints); `None` when it cannot be represented.
pub(crate) fn float_aware<T: serde::Serialize + ?Sized>(value: &T) -> Option<serde_json::Value> {
    let yaml = with_fingerprints(|| serde_yaml_ng::to_value(value)).ok()?;
    Some(convert(yaml))
}

fn convert(value: serde_yaml_ng::Value) -> serde_json::Value {
    use serde_json::Value as J;
    use serde_yaml_ng::Value as Y;
    match value {
        Y::Null => J::Null,
        Y::Bool(b) => J::Bool(b),
        Y::Number(n) => number(&n),
        Y::String(s) => J::String(s),
        Y::Sequence(items) => J::Array(items.into_iter().map(convert).collect()),
        Y::Mapping(map) => J::Object(
            map.into_iter()
                .map(|(key, value)| (key_text(key), convert(value)))
                .collect(),
        ),
        // An enum variant with data: JSON spells it `{"Variant": data}`.
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!').to_string();
            J::Object([(name, convert(tagged.value))].into_iter().collect())
        }
    }
}

fn number(n: &serde_yaml_ng::Number) -> serde_json::Value {
    if let Some(u) = n.as_u64() {
        return u.into();
    }
    if let Some(i) = n.as_i64() {
        return i.into();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    match serde_json::Number::from_f64(f) {
        Some(finite) => serde_json::Value::Number(finite),
        None => serde_json::Value::String(format!("{MARKER}{}", spelling(f))),
    }
}

fn spelling(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

fn key_text(key: serde_yaml_ng::Value) -> String {
    match key {
        serde_yaml_ng::Value::String(s) => s,
        serde_yaml_ng::Value::Number(n) => n.to_string(),
        serde_yaml_ng::Value::Bool(b) => b.to_string(),
        other => serde_yaml_ng::to_string(&other)
            .map(|text| text.trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// `text` (rendered JSON) with each marker shown as the float it stands for: `NaN`, not
/// `"\u0001hotcfg-float:NaN"`.
pub(crate) fn unmark(text: String) -> String {
    let escaped = "\"\\u0001hotcfg-float:";
    if !text.contains(escaped) {
        return text;
    }
    ["NaN", "inf", "-inf"].iter().fold(text, |text, name| {
        text.replace(&format!("{escaped}{name}\""), name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_floats_are_kept_and_rendered_by_name() {
        let value = float_aware(&(f64::NAN, f64::INFINITY, -f64::INFINITY, 1.5)).unwrap();
        assert_eq!(
            float_aware(&(f64::NAN, f64::INFINITY, -f64::INFINITY, 1.5)),
            Some(value.clone())
        );
        let text = crate::diff::render(&value);
        assert_eq!(unmark(text), "[NaN,inf,-inf,1.5]");
    }

    #[test]
    fn structures_convert_as_json_spells_them() {
        #[derive(serde::Serialize)]
        enum E {
            Unit,
            Data(u8),
        }
        let map: std::collections::BTreeMap<u32, E> = [(1, E::Unit), (2, E::Data(7))].into();
        assert_eq!(
            float_aware(&map),
            Some(serde_json::json!({"1": "Unit", "2": {"Data": 7}}))
        );
        assert_eq!(float_aware(&Some(-3i64)), Some(serde_json::json!(-3)));
    }
}
