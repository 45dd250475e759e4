//! The text formats, and parsing one layer of text into a value tree (through
//! [`BoundedDict`](super::bounded::BoundedDict)), with the stack and time bounds each parser needs.

use std::fmt;
use std::path::Path;

use figment::value::Dict;

use super::bounded::{BoundedDict, Limits};
use super::error::{clip, Problem};
use super::locate::line_col;
use crate::source::Layer;

/// A configuration text format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// TOML.
    Toml,
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name's extension names, if any.
    ///
    /// ```
    /// use hotcfg::Format;
    /// assert_eq!(Format::from_path("a/b.yml".as_ref()), Some(Format::Yaml));
    /// assert_eq!(Format::from_path("a/b.ini".as_ref()), None);
    /// ```
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "toml" => Some(Format::Toml),
            "yaml" | "yml" => Some(Format::Yaml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Toml => "TOML",
            Format::Yaml => "YAML",
            Format::Json => "JSON",
        })
    }
}

pub(super) fn parse_layer(layer: &Layer, limits: Limits) -> Result<Dict, Problem> {
    let problem = |line: Option<usize>, column: Option<usize>, message: String| Problem {
        source: Some(layer.name.clone()),
        line,
        column,
        key: None,
        message: clip(message),
    };
    // Every format is parsed through `BoundedDict`, never straight into figment's `Dict`: it
    // refuses duplicate keys, nesting deeper than `max_depth` (the deserializers recurse once per
    // level: a deep document would overflow the stack) and more than `max_values` values (YAML
    // aliases expand: a few hundred bytes can describe billions of values).
    let seed = BoundedDict::new(limits, layer.format);
    match layer.format {
        Format::Toml => parse_toml(&layer.text, limits).map_err(|err| {
            let (line, column) = match err.span() {
                Some(span) => {
                    let (l, c) = line_col(&layer.text, span.start);
                    (Some(l), Some(c))
                }
                None => (None, None),
            };
            problem(line, column, toml_message(&err, &layer.text))
        }),
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(&layer.text);
            seed.deserialize(&mut de)
                .and_then(|dict| de.end().map(|()| dict))
                .map_err(|err| {
                    let message = format!("invalid JSON: {err}");
                    let message = match message.rfind(" at line ") {
                        Some(at) => message[..at].to_string(),
                        None => message,
                    };
                    problem(Some(err.line()), Some(err.column()), message)
                })
        }
        Format::Yaml => {
            if layer.text.trim().is_empty() {
                return Ok(Dict::new());
            }
            // libyaml takes time quadratic in the nesting of `[`/`{` (100,000 levels: a minute),
            // all of it before the first value reaches `BoundedDict`: count first.
            if let Some(offset) = flow_depth_exceeded(&layer.text, YAML_FLOW_SCAN_DEPTH) {
                let (line, column) = line_col(&layer.text, offset);
                return Err(problem(
                    Some(line),
                    Some(column),
                    format!(
                        "invalid YAML: `[`/`{{` nested deeper than {YAML_FLOW_SCAN_DEPTH} levels"
                    ),
                ));
            }
            seed.deserialize(serde_yaml_ng::Deserializer::from_str(&layer.text))
                .map_err(|err| {
                    let location = err.location();
                    let message = format!("invalid YAML: {err}");
                    let message = match message.rfind(" at line ") {
                        Some(at) => message[..at].to_string(),
                        None => message,
                    };
                    problem(
                        location.as_ref().map(|l| l.line()),
                        location.as_ref().map(|l| l.column()),
                        message,
                    )
                })
        }
    }
}

/// Stack for the thread that parses TOML. toml 1.x bounds nesting (80 levels of arrays and
/// inline tables, 80 segments per dotted key) but the two multiply: `x = { a.a.(78 more) = { ...`
/// builds a document 6,400 levels deep. `BoundedDict` refuses it at `max_depth` while reading,
/// but toml builds the whole tree first, and dropping it recurses once per level, which
/// overflows a 2 MiB thread stack (an abort, not an error). The deepest document toml accepts
/// needs 4-4.5 MiB in a debug build (measured: it overflows 4 MiB, not 4.5 MiB); 64 MiB leaves a
/// wide margin.
/// Only the pages used are committed.
const TOML_PARSER_STACK: usize = 64 * 1024 * 1024;

/// Documents whose nesting could exceed this are parsed on a thread with
/// [`TOML_PARSER_STACK`]; below it (every configuration written by a person) the caller's stack
/// is ample: 0.5-0.75 MiB at this depth in a debug build (measured), where the smallest stacks hotcfg
/// runs on (test and tokio blocking threads) have 2 MiB. Starting the thread costs ~100 µs, a
/// third of the parse of a 20 KB file, so it is paid only when needed.
const TOML_INLINE_NESTING: usize = 1024;

/// An upper bound on how deep a TOML document can nest: every level needs its own `[`, `{` or
/// `.` token (a table header, an array or inline table, a dotted key segment).
fn toml_nesting_bound(text: &str) -> usize {
    text.bytes()
        .filter(|b| matches!(b, b'[' | b'{' | b'.'))
        .count()
}

/// Whether `text` is certain to nest shallow enough to parse on the caller's stack.
pub(super) fn toml_fits_inline(text: &str) -> bool {
    toml_nesting_bound(text) <= TOML_INLINE_NESTING
}

/// Parses TOML, on a thread of its own with a stack large enough for the deepest document
/// toml accepts when the text could nest that deep.
fn parse_toml(text: &str, limits: Limits) -> Result<Dict, toml::de::Error> {
    use serde::de::Error as _;
    let parse = || {
        let document = toml::Deserializer::parse(text)?;
        BoundedDict::new(limits, Format::Toml).deserialize(document)
    };
    if toml_fits_inline(text) {
        return parse();
    }
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("hotcfg-toml".into())
            .stack_size(TOML_PARSER_STACK)
            .spawn_scoped(scope, parse)
            .map_err(|err| toml::de::Error::custom(format!("cannot start the parser: {err}")))?;
        parser.join().unwrap_or_else(|panic| {
            Err(toml::de::Error::custom(format!(
                "the parser panicked: {}",
                crate::handlers::panic_message(panic.as_ref())
            )))
        })
    })
}

/// toml's message, naming the key when it is a duplicate: toml 1.x says only "duplicate key" and
/// points its span at the key as written.
fn toml_message(err: &toml::de::Error, text: &str) -> String {
    let key = err
        .span()
        .filter(|_| err.message() == "duplicate key")
        .and_then(|span| text.get(span));
    match key {
        Some(key) => format!("invalid TOML: duplicate key `{}`", key.trim()),
        None => format!("invalid TOML: {}", err.message()),
    }
}

/// Nesting of `[`/`{` in YAML text refused before parsing. Far above [`DEFAULT_MAX_DEPTH`], which
/// still applies while deserializing: this count also sees brackets inside strings and comments,
/// so it is set where libyaml is still fast (a few milliseconds) and a false alarm would need a
/// thousand unclosed brackets in strings.
const YAML_FLOW_SCAN_DEPTH: usize = 1000;

/// The byte offset where `[`/`{` first nest deeper than `max` in `text`, if they do. Counts every
/// bracket, quoted or not.
fn flow_depth_exceeded(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (offset, byte) in text.bytes().enumerate() {
        match byte {
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(offset);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `[t.t.(79 dots)]` then `x = ` and `levels` inline tables keyed by 80-segment dotted keys:
    /// toml's worst case, `levels * 80 + 81` levels deep.
    fn inline_times_dotted(levels: usize) -> String {
        let key = vec!["k"; 80].join(".");
        let mut text = format!("[{}]\nx = ", vec!["t"; 80].join("."));
        for _ in 0..levels {
            text.push_str(&format!("{{ {key} = "));
        }
        text.push('1');
        text.push_str(&" }".repeat(levels));
        text
    }

    #[test]
    fn the_deepest_document_parsed_inline_fits_a_two_mib_stack() {
        // The largest input that stays on the caller's stack, on the smallest stack hotcfg runs on.
        let levels = (1..)
            .take_while(|n| toml_nesting_bound(&inline_times_dotted(*n)) <= TOML_INLINE_NESTING)
            .last()
            .unwrap();
        let text = inline_times_dotted(levels);
        assert!(
            toml_nesting_bound(&text) > 900,
            "the case must be near the bound"
        );
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || parse_toml(&text, Limits::default()).map(|_| ()))
            .unwrap()
            .join()
            .expect("parsing on a 2 MiB stack must not overflow it");
        let err = result.unwrap_err().to_string();
        assert!(err.contains("nested deeper than"), "{err}");
    }

    #[test]
    fn a_duplicate_toml_key_is_named_as_written() {
        for (text, key) in [
            ("a = 1\na = 2\n", "`a`"),
            ("[t]\n\"b c\" = 1\n\"b c\" = 2\n", "`\"b c\"`"),
            ("[t]\nx = 1\n[t]\n", "`t`"),
        ] {
            let err = parse_toml(text, Limits::default()).unwrap_err();
            let message = toml_message(&err, text);
            assert_eq!(message, format!("invalid TOML: duplicate key {key}"));
        }
        let err = parse_toml("a = ", Limits::default()).unwrap_err();
        assert!(toml_message(&err, "a = ").starts_with("invalid TOML: "));
    }

    #[test]
    fn the_nesting_bound_counts_every_token_that_opens_a_level() {
        assert_eq!(toml_nesting_bound("a = 1\nb = \"x\"\n"), 0);
        assert_eq!(toml_nesting_bound("[a.b]\nc.d = { e = [1.5] }\n"), 6);
    }
}
