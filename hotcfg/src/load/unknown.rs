//! Unknown keys. A key that no field reads is most often a typo or a key in the wrong section
//! (`api_tokn`, or `api_token` under `[daemon]`), and silently dropping it runs the program
//! without the setting. So it is an error by default, located in the layer that sets it, with
//! the closest known key: "unknown key `api_tokn`; did you mean `api_token`?". Configurations
//! that want to tolerate extra keys opt out on the [`Loader`](crate::Loader).
//!
//! Found while extracting: figment's deserializer is wrapped in `serde_ignored`, which notes each
//! key the target type skips, so keys inside plain (non-deriving) structs, optional sections and
//! list elements are seen too, in the same pass. Keys under a `#[serde(flatten)]` field are not:
//! serde hands them all to the flattened type.

use serde::{Deserialize, Deserializer};

use super::env::Overlay;
use super::error::{clip, Problem};
use super::locate::locate_key;
use super::EnvPlaced;
use crate::source::SourceContent;
use crate::HotReload;

/// Problems reported for one attempt; the rest are counted in the last one.
const MAX_REPORTED: usize = 20;

/// One problem per unknown key, located in the last layer whose text has it (else attributed
/// to the environment overlay, when there is one).
pub(crate) fn problems(
    unknown: &[Vec<String>],
    content: &SourceContent,
    env: Option<&EnvPlaced<'_>>,
    closest_key: &dyn Fn(&[String]) -> Option<String>,
) -> Vec<Problem> {
    let mut problems: Vec<Problem> = unknown
        .iter()
        .take(MAX_REPORTED)
        .map(|path| {
            let located = content.layers.iter().rev().find_map(|layer| {
                locate_key(&layer.text, layer.format, path).map(|line| (layer.name.clone(), line))
            });
            let (source, line) = match (located, env) {
                (Some((name, line)), _) => (Some(name), Some(line)),
                (None, Some(env)) => (Some(Overlay::source_name(env.prefix)), None),
                (None, None) => (Some(content.identity.path.clone()), None),
            };
            let message = match closest_key(path) {
                Some(known) => format!("unknown key, did you mean `{known}`?"),
                None => "unknown key: no field reads it".to_string(),
            };
            // A key from the environment is named by its variable.
            let variable = match (line, env) {
                (None, Some(env)) => env.variable_for(path),
                _ => None,
            };
            let key = variable.map_or_else(|| path.join("."), str::to_string);
            Problem {
                source,
                line,
                column: None,
                key: Some(clip(key)),
                message,
            }
        })
        .collect();
    if unknown.len() > MAX_REPORTED {
        problems.push(Problem {
            source: Some(content.identity.path.clone()),
            line: None,
            column: None,
            key: None,
            message: format!("{} more unknown keys", unknown.len() - MAX_REPORTED),
        });
    }
    problems
}

/// `C`, deserialized through `serde_ignored` around whatever deserializer reads it (figment's, in
/// `figment.extract::<NotingIgnored<C>>()`: one pass, errors are figment's own, with their
/// sources), with every key that deserializing `C` ignored, as path segments.
pub(crate) struct NotingIgnored<C> {
    pub(crate) value: C,
    pub(crate) ignored: Vec<Vec<String>>,
}

impl<'de, C: Deserialize<'de>> Deserialize<'de> for NotingIgnored<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut ignored = Vec::new();
        let value = serde_ignored::deserialize(deserializer, |path| ignored.push(segments(&path)))?;
        Ok(NotingIgnored { value, ignored })
    }
}

fn segments(path: &serde_ignored::Path<'_>) -> Vec<String> {
    use serde_ignored::Path;
    match path {
        Path::Root => Vec::new(),
        Path::Seq { parent, index } => {
            let mut out = segments(parent);
            out.push(index.to_string());
            out
        }
        Path::Map { parent, key } => {
            let mut out = segments(parent);
            out.push(key.clone());
            out
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => segments(parent),
    }
}

/// The known key closest to the last segment of `path`, among the fields of the same parent in
/// `C`'s schema, when it is close enough to be a likely typo.
pub(crate) fn closest_key<C: HotReload>(path: &[String]) -> Option<String> {
    let (name, parent) = path.split_last()?;
    let siblings = C::schema().iter().filter_map(|field| {
        let schema: Vec<&str> = field.path.split('.').collect();
        let (last, schema_parent) = schema.split_last()?;
        let same_parent = schema_parent.len() == parent.len()
            && schema_parent
                .iter()
                .zip(parent)
                .all(|(s, k)| *s == "*" || s.trim_matches('"') == k);
        (same_parent && *last != "*").then(|| last.trim_matches('"').to_string())
    });
    let close_enough = (name.chars().count() / 3).max(2);
    siblings
        .map(|known| (normalized_distance(name, &known), known))
        .filter(|(distance, _)| *distance <= close_enough)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

/// Edit distance, with `-` and `_` and letter case counting as the same.
fn normalized_distance(a: &str, b: &str) -> usize {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    strsim::levenshtein(&norm(a), &norm(b))
}

#[cfg(test)]
mod tests {
    use figment::providers::{Format, Toml};
    use figment::Figment;
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Plain {
        burst: u32,
    }

    #[derive(Deserialize)]
    #[allow(dead_code)]
    struct Config {
        api_token: Option<String>,
        limits: Plain,
        routes: Vec<Plain>,
        #[serde(default)]
        extra: Option<Plain>,
    }

    #[test]
    fn ignored_keys_are_found_at_every_depth() {
        let toml = "api_tokn = \"x\"\n[limits]\nburst = 1\nbrust = 2\n[[routes]]\nburst = 1\n\
                    [[routes]]\nburst = 2\nbust = 3\n[extra]\nburst = 3\nmore = 1\n";
        let figment = Figment::new().merge(Toml::string(toml));
        let mut found = figment.extract::<NotingIgnored<Config>>().unwrap().ignored;
        found.sort();
        assert_eq!(
            found,
            [
                vec!["api_tokn"],
                vec!["extra", "more"],
                vec!["limits", "brust"],
                vec!["routes", "1", "bust"],
            ]
        );
    }

    #[test]
    fn distance_treats_dash_and_underscore_alike() {
        assert_eq!(normalized_distance("rate-limits", "rate_limits"), 0);
        assert_eq!(normalized_distance("api_tokn", "api_token"), 1);
    }
}
