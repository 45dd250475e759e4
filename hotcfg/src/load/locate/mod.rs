//! Where a key is written in configuration text: the line an error points at. Each format has
//! its own scanner (`toml`, `yaml`; JSON and the flow parts of the others in `flow`), so list
//! elements (`routes.1.upstream`) are found where they are written.

mod flow;
mod toml;
mod yaml;

use super::error::{clip, ConfigError, Problem, Stage};
use super::format::Format;
use crate::source::SourceContent;
use crate::validate::Violations;

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, column)
}

/// Best-effort: the 1-based line where `path` is written in `text`, for error messages. A list
/// element is one segment, its index (`["routes", "1", "upstream"]`); a table or section with no
/// line of its own is located at the first key under it.
pub fn locate_key(text: &str, format: Format, path: &[String]) -> Option<usize> {
    if path.is_empty() {
        return None;
    }
    let offset = match format {
        Format::Toml => toml::locate(text, path),
        Format::Yaml => yaml::locate(text, path),
        Format::Json => flow::find(&mut flow::Cursor::new(text, 0, flow::Dialect::Json), path),
    }?;
    Some(line_col(text, offset).0)
}

/// The segments of a dotted key as [`Violations`] and the diff write it: `routes.1.upstream`,
/// also `routes[1].upstream`, and `loops."my.loop".max` for a key holding a dot.
pub(crate) fn key_segments(key: &str) -> Vec<String> {
    let mut segments = Vec::new();
    let mut current = String::new();
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => current.extend(chars.next()),
                        '"' => break,
                        _ => current.push(c),
                    }
                }
            }
            '.' => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
            }
            '[' => {
                if !current.is_empty() {
                    segments.push(std::mem::take(&mut current));
                }
                let index: String = chars.by_ref().take_while(|c| *c != ']').collect();
                segments.push(index.trim().trim_matches('"').to_string());
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// Problems reported, and located in the text, for one failed validation. A validator that reports
/// one violation per entry of a huge map would otherwise make every reload scan the whole text
/// once per violation (minutes for a few megabytes) and write a line as long to the audit log.
const MAX_LOCATED_PROBLEMS: usize = 20;

/// Turns violations into problems located in the layer that sets each key (the first
/// [`MAX_LOCATED_PROBLEMS`], then one problem counting the rest).
pub(crate) fn locate_violations(violations: &Violations, content: &SourceContent) -> ConfigError {
    let mut problems: Vec<Problem> = violations
        .iter()
        .take(MAX_LOCATED_PROBLEMS)
        .map(|v| {
            let path = key_segments(&v.key);
            // The last layer that mentions the key is the one whose value is in force.
            let located = content.layers.iter().rev().find_map(|layer| {
                locate_key(&layer.text, layer.format, &path).map(|line| (layer.name.clone(), line))
            });
            let (source, line) = match located {
                Some((name, line)) => (Some(name), Some(line)),
                None => (Some(content.identity.path.clone()), None),
            };
            Problem {
                source,
                line,
                column: None,
                key: Some(clip(v.key.clone())),
                message: clip(v.message.clone()),
            }
        })
        .collect();
    if violations.len() > MAX_LOCATED_PROBLEMS {
        problems.push(Problem {
            source: Some(content.identity.path.clone()),
            line: None,
            column: None,
            key: None,
            message: format!(
                "and {} more problem(s) not listed",
                violations.len() - MAX_LOCATED_PROBLEMS
            ),
        });
    }
    ConfigError::new(Stage::Validate, problems)
}

/// The line where `find` locates a dotted `path` in `text`: what the scanners' tests compare.
#[cfg(test)]
fn line_found(text: &str, path: &str, find: fn(&str, &[String]) -> Option<usize>) -> Option<usize> {
    let path: Vec<String> = path.split('.').map(str::to_string).collect();
    find(text, &path).map(|offset| line_col(text, offset).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_elements_in_each_format() {
        let path = ["routes", "1", "upstream"].map(String::from);
        let toml = "[[routes]]\nupstream = \"a\"\n\n[[routes]]\nupstream = \"b\"\n";
        assert_eq!(locate_key(toml, Format::Toml, &path), Some(5));
        let yaml = "routes:\n  - upstream: a\n  - name: b\n    upstream: b\n";
        assert_eq!(locate_key(yaml, Format::Yaml, &path), Some(4));
        let json = "{\"routes\": [\n  {\"upstream\": \"a\"},\n  {\"upstream\": \"b\"}\n]}";
        assert_eq!(locate_key(json, Format::Json, &path), Some(3));
    }

    #[test]
    fn keys_split_into_segments() {
        let cases: [(&str, &[&str]); 5] = [
            ("routes.1.upstream", &["routes", "1", "upstream"]),
            ("routes[1].upstream", &["routes", "1", "upstream"]),
            ("grid[0][2]", &["grid", "0", "2"]),
            ("loops.\"my.loop\".max", &["loops", "my.loop", "max"]),
            ("plain", &["plain"]),
        ];
        for (key, segments) in cases {
            assert_eq!(key_segments(key), segments, "{key}");
        }
    }

    #[test]
    fn line_col_counts_characters_and_never_splits_one() {
        assert_eq!(line_col("ab\ncé d", 6), (2, 3));
        assert_eq!(line_col("é", 1), (1, 2));
        assert_eq!(line_col("x", 99), (1, 2));
    }
}
