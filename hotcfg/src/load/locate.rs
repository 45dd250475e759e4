//! Where a key is written in configuration text: the line an error points at.

use super::error::{clip, ConfigError, Problem, Stage};
use super::format::Format;
use crate::source::SourceContent;
use crate::validate::Violations;

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
            let path: Vec<String> = v.key.split('.').map(str::to_string).collect();
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
