//! Where a key path is written in a TOML document: table headers (`[a.b]`, and `[[routes]]`,
//! each one the next element of its array), `key = value` lines, and inside inline arrays and
//! tables.

use std::collections::HashMap;

use super::flow::{self, Cursor, Dialect};

/// The offset where `path` (or, for a table, the first thing under it) is written.
pub(super) fn locate(text: &str, path: &[String]) -> Option<usize> {
    let mut cursor = Cursor::new(text, 0, Dialect::Toml);
    let mut table: Vec<String> = Vec::new();
    let mut arrays = ArrayTables::default();
    loop {
        cursor.skip_blank();
        let start = cursor.pos;
        if cursor.peek()? == b'[' {
            cursor.pos += 1;
            let array = cursor.peek() == Some(b'[');
            if array {
                cursor.pos += 1;
            }
            let key = cursor.read_key()?;
            table = arrays.resolve(&key, array);
            if table.starts_with(path) {
                return Some(start);
            }
            cursor.skip_line();
            continue;
        }
        let key = cursor.read_key()?;
        cursor.separator()?;
        let full: Vec<String> = table.iter().chain(&key).cloned().collect();
        if full.starts_with(path) {
            return Some(start);
        }
        if path.starts_with(&full) {
            // Inside this value (an inline array or table): TOML defines a key once.
            return flow::find(&mut cursor, &path[full.len()..]);
        }
        cursor.skip_value();
        cursor.skip_line();
    }
}

/// The arrays of tables seen so far, by resolved path (element indexes included), with their
/// length: `[[routes]]` appends element `n` to `routes`, and a later `[routes.meta]` or
/// `[[routes.hops]]` is under that last element.
#[derive(Default)]
struct ArrayTables {
    lengths: HashMap<Vec<String>, usize>,
}

impl ArrayTables {
    /// The resolved path of a header's key; an array header appends a new element.
    fn resolve(&mut self, key: &[String], array: bool) -> Vec<String> {
        let mut resolved = Vec::with_capacity(key.len() + 2);
        for (i, segment) in key.iter().enumerate() {
            resolved.push(segment.clone());
            if array && i + 1 == key.len() {
                let length = self.lengths.entry(resolved.clone()).or_insert(0);
                resolved.push(length.to_string());
                *length += 1;
            } else if let Some(length) = self.lengths.get(&resolved) {
                resolved.push(length.saturating_sub(1).to_string());
            }
        }
        resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(text: &str, path: &str) -> Option<usize> {
        super::super::line_found(text, path, locate)
    }

    const ROUTES: &str = "\
title = \"\"\"
[[routes]]
not a header\"\"\"

[[routes]]
name = \"a\"
upstream = \"u0\"

[[routes]]
name = \"b\"
[routes.meta]
owner = \"x\"
[[routes.hops]]
via = \"h0\"
[[routes.hops]]
via = \"h1\"

[limits.inner]
max = 1
";

    #[test]
    fn array_of_tables_elements() {
        assert_eq!(line_of(ROUTES, "routes.0.upstream"), Some(7));
        assert_eq!(line_of(ROUTES, "routes.1"), Some(9));
        assert_eq!(line_of(ROUTES, "routes.1.name"), Some(10));
        assert_eq!(line_of(ROUTES, "routes.1.meta.owner"), Some(12));
        assert_eq!(line_of(ROUTES, "routes.1.hops.1.via"), Some(16));
        assert_eq!(line_of(ROUTES, "routes.1.upstream"), None);
        assert_eq!(line_of(ROUTES, "routes.upstream"), None);
        assert_eq!(line_of(ROUTES, "limits"), Some(18));
    }

    #[test]
    fn inline_arrays_and_dotted_keys() {
        let text = "[server]\nroutes = [\n  { name = \"a\", upstream = \"u0\" },\n  { name = \"b\",\n    upstream = \"u1\" },\n]\ntls.cert = \"c\"\n";
        assert_eq!(line_of(text, "server.routes.1.upstream"), Some(5));
        assert_eq!(line_of(text, "server.routes.0"), Some(3));
        assert_eq!(line_of(text, "server.tls"), Some(7));
        assert_eq!(line_of(text, "server.routes.2"), None);
    }
}
