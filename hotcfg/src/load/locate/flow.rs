//! Finding a value in flow syntax: a JSON document, a TOML inline array or table, a YAML flow
//! collection. One scanner serves the three; they differ in the key-value separator, comments
//! and quoting. It never recurses (a deep document cannot overflow the stack), moves forward on
//! every step, and gives up (`None`) on text it does not understand.

/// Which syntax the scanner reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialect {
    Json,
    Toml,
    Yaml,
}

/// A position in the text.
pub(super) struct Cursor<'t> {
    text: &'t [u8],
    pub pos: usize,
    dialect: Dialect,
}

impl<'t> Cursor<'t> {
    pub fn new(text: &'t str, pos: usize, dialect: Dialect) -> Self {
        Cursor {
            text: text.as_bytes(),
            pos,
            dialect,
        }
    }

    pub fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn at(&self, prefix: &str) -> bool {
        self.text[self.pos.min(self.text.len())..].starts_with(prefix.as_bytes())
    }

    /// Skips to the end of the line (before its newline).
    pub fn skip_line(&mut self) {
        while !matches!(self.peek(), None | Some(b'\n')) {
            self.pos += 1;
        }
    }

    /// Skips spaces, tabs and (in TOML and YAML) comments, staying on the line.
    pub fn skip_inline_blank(&mut self) {
        loop {
            match self.peek() {
                Some(b' ' | b'\t' | b'\r') => self.pos += 1,
                Some(b'#') if self.dialect != Dialect::Json => self.skip_line(),
                _ => return,
            }
        }
    }

    /// Skips whitespace, newlines and comments.
    pub fn skip_blank(&mut self) {
        loop {
            self.skip_inline_blank();
            if self.peek() != Some(b'\n') {
                return;
            }
            self.pos += 1;
        }
    }

    /// Skips one value (a string, a scalar or a whole collection); stays put at a closing
    /// bracket (the end of the enclosing collection).
    pub fn skip_value(&mut self) {
        let mut depth = 0usize;
        loop {
            self.skip_blank();
            let Some(byte) = self.peek() else { return };
            match byte {
                b'[' | b'{' => {
                    depth += 1;
                    self.pos += 1;
                    continue;
                }
                b']' | b'}' => {
                    if depth == 0 {
                        return;
                    }
                    depth -= 1;
                    self.pos += 1;
                }
                b',' | b':' | b'=' if depth > 0 => self.pos += 1,
                b'"' | b'\'' => {
                    self.read_string();
                }
                _ => self.skip_scalar(),
            }
            if depth == 0 {
                return;
            }
        }
    }

    /// Skips an unquoted scalar (or, inside a TOML inline table, a bare key).
    fn skip_scalar(&mut self) {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            let stop = match byte {
                b',' | b']' | b'}' | b'[' | b'{' | b'\n' => true,
                b'"' | b'\'' => self.dialect != Dialect::Yaml,
                b'=' => self.dialect == Dialect::Toml,
                b':' => self.dialect == Dialect::Json || (self.yaml_indicator()),
                b'#' => match self.dialect {
                    Dialect::Json => false,
                    Dialect::Toml => true,
                    Dialect::Yaml => self.pos > 0 && self.text[self.pos - 1].is_ascii_whitespace(),
                },
                _ => false,
            };
            if stop {
                break;
            }
            self.pos += 1;
        }
        if self.pos == start {
            // Always move on, even over a character no rule above expects.
            self.pos += 1;
        }
    }

    /// A YAML `:` that ends a key: followed by a space, a line end or a flow indicator.
    fn yaml_indicator(&self) -> bool {
        self.dialect == Dialect::Yaml
            && matches!(
                self.text.get(self.pos + 1),
                None | Some(b' ' | b'\t' | b'\r' | b'\n' | b',' | b']' | b'}')
            )
    }

    /// Reads a quoted string at the cursor (decoding the escapes keys use), leaving the cursor
    /// after its closing quote.
    pub fn read_string(&mut self) -> String {
        let toml = self.dialect == Dialect::Toml;
        if toml && (self.at("\"\"\"") || self.at("'''")) {
            let close = if self.at("\"\"\"") { "\"\"\"" } else { "'''" };
            self.pos += 3;
            let start = self.pos;
            while self.peek().is_some() && !self.at(close) {
                self.pos += if close == "\"\"\"" && self.peek() == Some(b'\\') {
                    2
                } else {
                    1
                };
            }
            let end = self.pos.min(self.text.len());
            self.pos = (self.pos + 3).min(self.text.len());
            return String::from_utf8_lossy(&self.text[start..end]).into_owned();
        }
        let quote = self.peek().unwrap_or(b'"');
        self.pos += 1;
        let mut out = Vec::new();
        while let Some(byte) = self.peek() {
            self.pos += 1;
            match byte {
                b'\\' if quote == b'"' => {
                    let escaped = self.peek().unwrap_or(b'\\');
                    self.pos += 1;
                    out.extend_from_slice(&unescape(escaped));
                }
                // YAML's single-quoted strings write a quote twice.
                b'\''
                    if quote == b'\''
                        && self.dialect == Dialect::Yaml
                        && self.peek() == Some(b'\'') =>
                {
                    self.pos += 1;
                    out.push(b'\'');
                }
                _ if byte == quote => break,
                _ => out.push(byte),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Reads a key (TOML: dotted, so possibly several segments), leaving the cursor after it.
    pub fn read_key(&mut self) -> Option<Vec<String>> {
        let mut segments = Vec::new();
        loop {
            self.skip_inline_blank();
            let segment = match self.peek()? {
                b'"' | b'\'' => self.read_string(),
                _ if self.dialect == Dialect::Json => return None,
                _ => {
                    let start = self.pos;
                    while let Some(byte) = self.peek() {
                        let ends = match self.dialect {
                            Dialect::Toml => {
                                !(byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
                            }
                            _ => {
                                matches!(byte, b',' | b'[' | b']' | b'{' | b'}' | b'\n')
                                    || (byte == b':' && self.yaml_indicator())
                            }
                        };
                        if ends {
                            break;
                        }
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return None;
                    }
                    let raw = String::from_utf8_lossy(&self.text[start..self.pos]);
                    raw.trim().to_string()
                }
            };
            segments.push(segment);
            self.skip_inline_blank();
            if self.dialect == Dialect::Toml && self.peek() == Some(b'.') {
                self.pos += 1;
                continue;
            }
            return Some(segments);
        }
    }

    /// Consumes the key-value separator (`:` or `=`).
    pub fn separator(&mut self) -> Option<()> {
        self.skip_inline_blank();
        let wanted = if self.dialect == Dialect::Toml {
            b'='
        } else {
            b':'
        };
        (self.peek() == Some(wanted)).then(|| self.pos += 1)
    }
}

fn unescape(escaped: u8) -> Vec<u8> {
    match escaped {
        b'n' => vec![b'\n'],
        b't' => vec![b'\t'],
        b'r' => vec![b'\r'],
        // `\uXXXX` and the like are left as written: keys rarely use them.
        b'u' | b'U' | b'x' => vec![b'\\', escaped],
        other => vec![other],
    }
}

/// The offset where the value at `path` begins, inside the value at the cursor.
pub(super) fn find(cursor: &mut Cursor<'_>, path: &[String]) -> Option<usize> {
    let mut matched = 0;
    loop {
        cursor.skip_blank();
        if matched == path.len() {
            return Some(cursor.pos);
        }
        match cursor.peek()? {
            b'{' => {
                cursor.pos += 1;
                matched += enter_table(cursor, &path[matched..])?;
            }
            b'[' => {
                cursor.pos += 1;
                let index: usize = path[matched].parse().ok()?;
                enter_element(cursor, index)?;
                matched += 1;
            }
            _ => return None,
        }
    }
}

/// Inside a table, moves to the value of the entry whose key starts `path`; how many segments
/// that key has (a TOML dotted key may have several). A dotted key that goes deeper than `path`
/// is the place `path` is written: the cursor is left at its start, with all of `path` matched.
fn enter_table(cursor: &mut Cursor<'_>, path: &[String]) -> Option<usize> {
    loop {
        cursor.skip_blank();
        match cursor.peek()? {
            b'}' => return None,
            b',' => {
                cursor.pos += 1;
                continue;
            }
            _ => {}
        }
        let start = cursor.pos;
        let key = cursor.read_key()?;
        cursor.separator()?;
        if path.starts_with(&key) {
            return Some(key.len());
        }
        if key.starts_with(path) {
            cursor.pos = start;
            return Some(path.len());
        }
        let before = cursor.pos;
        cursor.skip_value();
        if cursor.pos == before {
            return None;
        }
    }
}

/// Inside an array, moves to element `index`.
fn enter_element(cursor: &mut Cursor<'_>, index: usize) -> Option<()> {
    let mut at = 0;
    loop {
        cursor.skip_blank();
        match cursor.peek()? {
            b']' => return None,
            b',' => {
                cursor.pos += 1;
                continue;
            }
            _ if at == index => return Some(()),
            _ => {}
        }
        let before = cursor.pos;
        cursor.skip_value();
        if cursor.pos == before {
            return None;
        }
        at += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_of(text: &str, dialect: Dialect, path: &str) -> Option<usize> {
        let find: fn(&str, &[String]) -> Option<usize> = match dialect {
            Dialect::Json => |t, p| find(&mut Cursor::new(t, 0, Dialect::Json), p),
            Dialect::Toml => |t, p| find(&mut Cursor::new(t, 0, Dialect::Toml), p),
            Dialect::Yaml => |t, p| find(&mut Cursor::new(t, 0, Dialect::Yaml), p),
        };
        super::super::line_found(text, path, find)
    }

    #[test]
    fn json_elements_and_keys() {
        let text = "{\n \"a\": \"x,]}\",\n \"routes\": [\n  {\"name\": \"r0\",\n   \"upstream\": \"u0\"},\n  {\"name\": \"r1\",\n   \"upstream\": \"u1\"}\n ]\n}\n";
        assert_eq!(line_of(text, Dialect::Json, "routes.1.upstream"), Some(7));
        assert_eq!(line_of(text, Dialect::Json, "routes.1"), Some(6));
        assert_eq!(line_of(text, Dialect::Json, "routes.0.upstream"), Some(5));
        assert_eq!(line_of(text, Dialect::Json, "routes.2"), None);
        assert_eq!(line_of(text, Dialect::Json, "routes.upstream"), None);
        assert_eq!(line_of(text, Dialect::Json, "a.b"), None);
    }

    #[test]
    fn toml_inline_values_with_dotted_keys_and_strings() {
        let text = "[\n { name = \"a]\", up.host = 'h' }, # c ]\n { name = \"\"\"b\n}\"\"\", up = { host = \"i\" } },\n]";
        assert_eq!(line_of(text, Dialect::Toml, "1.up.host"), Some(4));
        assert_eq!(line_of(text, Dialect::Toml, "0.up.host"), Some(2));
        assert_eq!(line_of(text, Dialect::Toml, "0.up"), Some(2));
    }

    #[test]
    fn yaml_flow_plain_scalars() {
        let text = "[{url: http://a:1, n: don't}, {url: 'it''s', n: 2}]";
        let path = ["1".to_string(), "n".to_string()];
        let found = find(&mut Cursor::new(text, 0, Dialect::Yaml), &path);
        assert_eq!(found, text.find("2}"));
    }

    #[test]
    fn nonsense_ends_without_a_match() {
        for text in [
            "[1, }",
            "{\"a\" 1}",
            "[[[[",
            "{,,,",
            "]",
            "{\"a\": [1, 2, }",
        ] {
            let path = vec!["a".to_string(), "99999999".to_string()];
            for dialect in [Dialect::Json, Dialect::Toml, Dialect::Yaml] {
                assert_eq!(
                    find(&mut Cursor::new(text, 0, dialect), &path),
                    None,
                    "{text}"
                );
                assert_eq!(
                    find(&mut Cursor::new(text, 0, dialect), &path[1..]),
                    None,
                    "{text}"
                );
            }
        }
    }
}
