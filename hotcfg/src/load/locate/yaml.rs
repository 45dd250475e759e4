//! Where a key path is written in a YAML document: block mappings and sequences by their
//! indentation (`- ` items, including a sequence written at its key's own indentation), flow
//! collections (`[...]`, `{...}`) by the flow scanner.

use super::flow::{self, Cursor, Dialect};

/// A line with content (blank lines, comments and document markers left out).
#[derive(Clone, Copy, Debug)]
struct Line {
    /// Columns before the content.
    indent: usize,
    /// Offset of the content.
    at: usize,
    /// Offset of the line's end.
    end: usize,
}

/// A block node: its first line (possibly the part of an item's line after `- `) and the
/// lines after it that belong to it (indented more than `floor`, or at `floor` and starting with
/// `-` when the node is a sequence written at its key's indentation).
struct Node {
    first: Line,
    next: usize,
    floor: Option<usize>,
    dash_at_floor: bool,
}

/// The offset where `path` is written.
pub(super) fn locate(text: &str, path: &[String]) -> Option<usize> {
    let lines = content_lines(text);
    let mut node = Node {
        first: *lines.first()?,
        next: 1,
        floor: None,
        dash_at_floor: false,
    };
    let mut matched = 0;
    loop {
        let first = node.first;
        if matches!(text.as_bytes()[first.at], b'[' | b'{') {
            return flow::find(
                &mut Cursor::new(text, first.at, Dialect::Yaml),
                &path[matched..],
            );
        }
        let entries = entries(text, &lines, &node);
        let (entry, value) = if is_item(text, first) {
            let index: usize = path[matched].parse().ok()?;
            let entry = entries.filter(|l| is_item(text, *l)).nth(index)?;
            (entry, after_dash(text, entry))
        } else {
            let entry = entries
                .filter(|l| !is_item(text, *l))
                .find(|l| key_of(text, *l).is_some_and(|(key, _)| key == path[matched]))?;
            (entry, key_of(text, entry)?.1)
        };
        matched += 1;
        if matched == path.len() {
            return Some(entry.at);
        }
        node = child(text, &lines, entry, value)?;
    }
}

/// The node a key's value or an item's content starts at `value` (an offset in `entry`'s line).
fn child(text: &str, lines: &[Line], entry: Line, value: usize) -> Option<Node> {
    // The real line holding the entry (an item's content starts inside its line).
    let index = lines.iter().rposition(|l| l.at <= entry.at)?;
    let rest = text[value..entry.end].trim_end();
    if rest.is_empty() || rest.starts_with('#') {
        // The value is on the following lines.
        let next = *lines.get(index + 1)?;
        let dash_at_floor = next.indent == entry.indent && is_item(text, next);
        if next.indent <= entry.indent && !dash_at_floor {
            return None;
        }
        return Some(Node {
            first: next,
            next: index + 2,
            floor: Some(entry.indent),
            dash_at_floor,
        });
    }
    // Content on the entry's own line: `- name: a` (a mapping in an item), or a flow value.
    let first = Line {
        indent: value - (entry.at - entry.indent),
        at: value,
        end: entry.end,
    };
    Some(Node {
        first,
        next: index + 1,
        floor: Some(entry.indent),
        dash_at_floor: false,
    })
}

/// The lines at the node's own indentation, from its first.
fn entries<'a>(
    text: &'a str,
    lines: &'a [Line],
    node: &'a Node,
) -> impl Iterator<Item = Line> + 'a {
    let indent = node.first.indent;
    let belongs = move |line: &Line| match node.floor {
        None => true,
        Some(floor) => {
            line.indent > floor
                || (node.dash_at_floor && line.indent == floor && is_item(text, *line))
        }
    };
    std::iter::once(node.first)
        .chain(
            lines[node.next.min(lines.len())..]
                .iter()
                .copied()
                .take_while(belongs),
        )
        .filter(move |line| line.indent == indent)
}

fn is_item(text: &str, line: Line) -> bool {
    let content = &text.as_bytes()[line.at..line.end];
    content.first() == Some(&b'-') && matches!(content.get(1), None | Some(b' ' | b'\t' | b'\r'))
}

/// The offset of an item's content, after `- `.
fn after_dash(text: &str, line: Line) -> usize {
    let bytes = text.as_bytes();
    let mut at = line.at + 1;
    while at < line.end && matches!(bytes[at], b' ' | b'\t') {
        at += 1;
    }
    at
}

/// A mapping entry's key, and the offset of its value (anchors and tags skipped).
fn key_of(text: &str, line: Line) -> Option<(String, usize)> {
    let mut cursor = Cursor::new(&text[..line.end], line.at, Dialect::Yaml);
    let key = cursor.read_key()?;
    cursor.separator()?;
    let [key] = <[String; 1]>::try_from(key).ok()?;
    let bytes = text.as_bytes();
    let mut at = cursor.pos;
    loop {
        while at < line.end && matches!(bytes[at], b' ' | b'\t') {
            at += 1;
        }
        if at < line.end && matches!(bytes[at], b'&' | b'!') {
            while at < line.end && !matches!(bytes[at], b' ' | b'\t') {
                at += 1;
            }
            continue;
        }
        return Some((key, at));
    }
}

fn content_lines(text: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let mut start = 0;
    for raw in text.split_inclusive('\n') {
        let end = start + raw.trim_end_matches(['\n', '\r']).len();
        let indent = raw.len() - raw.trim_start_matches(' ').len();
        let content = raw[indent..].trim_end();
        let marker = indent == 0 && (content.starts_with("---") || content.starts_with("..."));
        if !content.is_empty() && !content.starts_with('#') && !marker {
            lines.push(Line {
                indent,
                at: start + indent,
                end,
            });
        }
        start += raw.len();
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(text: &str, path: &str) -> Option<usize> {
        super::super::line_found(text, path, locate)
    }

    const DOC: &str = "\
---
# routes
routes:
  - name: a
    upstream: u0
  -
    name: b
    upstream: u1
    hops: [h0, {via: h1}]
limits: &base
  max: 1
flat:
- x
- y: 2
  z: 3
\"quoted key\": 1
";

    #[test]
    fn sequences_and_mappings() {
        assert_eq!(line_of(DOC, "routes.0.upstream"), Some(5));
        assert_eq!(line_of(DOC, "routes.1"), Some(6));
        assert_eq!(line_of(DOC, "routes.1.upstream"), Some(8));
        assert_eq!(line_of(DOC, "routes.1.hops.1.via"), Some(9));
        assert_eq!(line_of(DOC, "limits.max"), Some(11));
        assert_eq!(line_of(DOC, "flat.1.z"), Some(15));
        assert_eq!(line_of(DOC, "flat.0"), Some(13));
        assert_eq!(line_of(DOC, "quoted key"), Some(16));
        assert_eq!(line_of(DOC, "routes.upstream"), None);
        assert_eq!(line_of(DOC, "routes.2"), None);
        assert_eq!(line_of(DOC, "limits.max.deeper"), None);
    }

    #[test]
    fn a_flow_document() {
        assert_eq!(line_of("{\"a\": [1,\n 2]}", "a.1"), Some(2));
    }
}
