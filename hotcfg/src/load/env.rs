//! The environment overlay. `APP_RATE_LIMITS__BURST=777` sets `rate-limits.burst` when the
//! configuration spells its keys in kebab-case: no shell can set a variable named
//! `APP_RATE-LIMITS__BURST`, so each `__`-separated segment is matched against the names serde
//! reads (from the configuration's schema), with `-` and `_` alike and letter case ignored.
//! Segments the schema does not list (map keys, fields of plain structs) are matched against the
//! keys the files already have, else taken in lower case.
//!
//! The variables read are also part of the content's identity ([`Overlay::fingerprint`]): a
//! reload after an environment change applies it even though the files are the same bytes.

use figment::value::{Dict, Value};

use super::error::{clip, Problem};
use crate::schema::FieldInfo;
use crate::source::sha256_hex;

/// The variables with the prefix, as read at one moment.
#[derive(Debug)]
pub(crate) struct Overlay {
    prefix: String,
    /// `(name, value)`, sorted by name.
    vars: Vec<(String, String)>,
}

/// One variable placed in the value tree: the key path it sets.
#[derive(Debug)]
pub(crate) struct Placed {
    pub variable: String,
    pub path: Vec<String>,
}

/// A variable whose name matches no field: the key path up to the segment that matches none.
#[derive(Debug)]
pub(crate) struct Unmatched {
    pub variable: String,
    pub path: Vec<String>,
}

/// The overlay's value tree, and where each variable went. `unmatched` are variables whose name
/// matched no field of the schema (left out of the tree).
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub dict: Dict,
    pub placed: Vec<Placed>,
    pub unmatched: Vec<Unmatched>,
}

impl Overlay {
    /// The variables whose name starts with `prefix` (ASCII case ignored, as figment does).
    pub(crate) fn read(prefix: &str) -> Overlay {
        let mut vars: Vec<(String, String)> = std::env::vars_os()
            .filter_map(|(name, value)| {
                let name = name.into_string().ok()?;
                let starts = name.len() >= prefix.len()
                    && name.is_char_boundary(prefix.len())
                    && name[..prefix.len()].eq_ignore_ascii_case(prefix);
                starts.then(|| (name, value.to_string_lossy().into_owned()))
            })
            .collect();
        vars.sort();
        Overlay {
            prefix: prefix.to_string(),
            vars,
        }
    }

    /// No variable has the prefix.
    pub(crate) fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// The name under which figment attributes the overlay's values (and errors about them).
    pub(crate) fn source_name(prefix: &str) -> String {
        format!("environment ({prefix}*)")
    }

    /// A hash of every variable read: equal exactly when the overlay is the same.
    pub(crate) fn fingerprint(&self) -> String {
        let mut all = String::new();
        for (name, value) in &self.vars {
            all.push_str(name);
            all.push('\0');
            all.push_str(value);
            all.push('\0');
        }
        sha256_hex(all.as_bytes())
    }

    /// Places every variable under the key names serde reads. `schema` lists the fields (empty
    /// when unknown), `files` the merged files below the overlay.
    pub(crate) fn resolve(&self, schema: &[FieldInfo], files: &Dict) -> Resolved {
        let rows: Vec<Vec<&str>> = schema
            .iter()
            .map(|field| field.path.split('.').map(unquote).collect())
            .collect();
        let mut resolved = Resolved::default();
        for (variable, value) in &self.vars {
            let rest = &variable[self.prefix.len()..];
            let segments: Vec<&str> = rest.split("__").collect();
            match place(&rows, files, &segments) {
                Ok(path) => {
                    let value = value
                        .parse::<Value>()
                        .unwrap_or_else(|never| match never {});
                    insert_at(&mut resolved.dict, &path, value);
                    resolved.placed.push(Placed {
                        variable: variable.clone(),
                        path,
                    });
                }
                Err(path) => resolved.unmatched.push(Unmatched {
                    variable: variable.clone(),
                    path,
                }),
            }
        }
        resolved
    }
}

/// The key path `segments` names; or, when a segment is empty or the schema lists the fields at
/// its level and none of them matches, the path up to that segment (in lower case).
fn place(rows: &[Vec<&str>], files: &Dict, segments: &[&str]) -> Result<Vec<String>, Vec<String>> {
    let mut path: Vec<String> = Vec::with_capacity(segments.len());
    let mut below: Option<&Dict> = Some(files);
    for raw in segments {
        if raw.is_empty() {
            path.push(String::new());
            return Err(path);
        }
        let level: Vec<&str> = rows
            .iter()
            .filter(|row| row.len() == path.len() + 1 && under(row, &path))
            .map(|row| row[path.len()])
            .collect();
        let named = level
            .iter()
            .find(|name| **name != "*" && same_name(name, raw));
        let existing = below.and_then(|dict| dict.keys().find(|key| same_name(key, raw)));
        let name = match (named, existing) {
            (Some(name), _) => name.to_string(),
            (None, Some(key)) => key.clone(),
            // The schema lists this level's fields and none matches (no map or list here).
            (None, None) if !level.is_empty() && !level.contains(&"*") => {
                path.push(raw.to_ascii_lowercase());
                return Err(path);
            }
            (None, None) => raw.to_ascii_lowercase(),
        };
        below = below.and_then(|dict| match dict.get(&name) {
            Some(Value::Dict(_, child)) => Some(child),
            _ => None,
        });
        path.push(name);
    }
    Ok(path)
}

/// One problem per variable that names no field, with the variable it was likely meant to be.
pub(crate) fn unmatched_problems(
    prefix: &str,
    unmatched: &[Unmatched],
    closest_key: &dyn Fn(&[String]) -> Option<String>,
) -> Vec<Problem> {
    unmatched
        .iter()
        .map(|var| {
            let message = match closest_key(&var.path) {
                Some(known) => {
                    let mut segments: Vec<String> = var.variable[prefix.len()..]
                        .split("__")
                        .map(str::to_string)
                        .collect();
                    segments[var.path.len() - 1] = known.to_ascii_uppercase().replace('-', "_");
                    let meant = format!("{}{}", &var.variable[..prefix.len()], segments.join("__"));
                    format!("names no field, did you mean `{meant}`?")
                }
                None => "names no field".to_string(),
            };
            Problem {
                source: Some(Overlay::source_name(prefix)),
                line: None,
                column: None,
                key: Some(clip(var.variable.clone())),
                message,
            }
        })
        .collect()
}

/// Sets `path` in `dict` to `value`, making the tables on the way (a later variable for the
/// same key wins; one under a key set to a scalar replaces it).
fn insert_at(dict: &mut Dict, path: &[String], value: Value) {
    match path {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let mut child = match dict.remove(first) {
                Some(Value::Dict(_, child)) => child,
                _ => Dict::new(),
            };
            insert_at(&mut child, rest, value);
            dict.insert(first.clone(), Value::from(child));
        }
    }
}

/// Whether schema `row` lies under `parent` (`*` stands for any key).
fn under(row: &[&str], parent: &[String]) -> bool {
    row.iter()
        .zip(parent)
        .all(|(schema, key)| *schema == "*" || schema == key)
}

/// Names equal with `-` and `_` alike and ASCII case ignored.
fn same_name(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes().zip(b.bytes()).all(|(x, y)| {
            let fold = |c: u8| {
                if c == b'-' {
                    b'_'
                } else {
                    c.to_ascii_lowercase()
                }
            };
            fold(x) == fold(y)
        })
}

fn unquote(segment: &str) -> &str {
    segment.trim_matches('"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Class;

    fn field(path: &str) -> FieldInfo {
        FieldInfo {
            path: path.into(),
            class: Class::Restart,
            doc: "",
            secret: false,
            watch: false,
            type_name: "",
        }
    }

    fn overlay(vars: &[(&str, &str)]) -> Overlay {
        let mut vars: Vec<(String, String)> = vars
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        vars.sort();
        Overlay {
            prefix: "GW_".into(),
            vars,
        }
    }

    #[test]
    fn segments_follow_the_schema_names() {
        let schema = [
            field("rate-limits"),
            field("rate-limits.requests-per-second"),
            field("admin-password"),
            field("upstreams"),
            field("upstreams.*"),
            field("upstreams.*.url"),
        ];
        let mut files = Dict::new();
        let mut upstreams = Dict::new();
        upstreams.insert("api-v1".into(), Value::from(Dict::new()));
        files.insert("upstreams".into(), Value::from(upstreams));
        let resolved = overlay(&[
            ("GW_ADMIN_PASSWORD", "x"),
            ("GW_RATE_LIMITS__REQUESTS_PER_SECOND", "9"),
            ("GW_UPSTREAMS__API_V1__URL", "u"),
            ("GW_UPSTREAMS__NEW__URL", "n"),
            ("GW_RATE_LIMTS__BURST", "1"),
            ("GW_A____B", "1"),
        ])
        .resolve(&schema, &files);
        let placed: Vec<String> = resolved.placed.iter().map(|p| p.path.join(".")).collect();
        assert_eq!(
            placed,
            [
                "admin-password",
                "rate-limits.requests-per-second",
                "upstreams.api-v1.url",
                "upstreams.new.url"
            ]
        );
        let unmatched: Vec<(&str, String)> = resolved
            .unmatched
            .iter()
            .map(|p| (p.variable.as_str(), p.path.join(".")))
            .collect();
        assert_eq!(
            unmatched,
            [
                ("GW_A____B", "a".to_string()),
                ("GW_RATE_LIMTS__BURST", "rate_limts".to_string())
            ]
        );
    }

    #[test]
    fn without_a_schema_names_are_lower_case_or_the_files_own() {
        let mut files = Dict::new();
        files.insert("Mixed-Case".into(), Value::from(1));
        let resolved =
            overlay(&[("GW_MIXED_CASE", "2"), ("GW_OTHER__KEY", "3")]).resolve(&[], &files);
        let placed: Vec<String> = resolved.placed.iter().map(|p| p.path.join(".")).collect();
        assert_eq!(placed, ["Mixed-Case", "other.key"]);
    }

    #[test]
    fn the_fingerprint_changes_with_any_value() {
        let a = overlay(&[("GW_X", "1")]).fingerprint();
        assert_eq!(a, overlay(&[("GW_X", "1")]).fingerprint());
        assert_ne!(a, overlay(&[("GW_X", "2")]).fingerprint());
        assert_ne!(a, overlay(&[]).fingerprint());
    }
}
