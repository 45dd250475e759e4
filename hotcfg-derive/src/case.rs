//! serde's `rename_all` rules, applied to field names so diff paths match the file's keys.

/// A `#[serde(rename_all = "...")]` rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    /// The rule serde calls `name`; `None` for a name serde does not know (serde reports it).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// Renames a field the way serde does (fields are assumed to be written in snake_case).
    pub fn apply_to_field(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_string(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => {
                let mut out = String::with_capacity(field.len());
                let mut capitalize = true;
                for ch in field.chars() {
                    if ch == '_' {
                        capitalize = true;
                    } else if capitalize {
                        out.push(ch.to_ascii_uppercase());
                        capitalize = false;
                    } else {
                        out.push(ch);
                    }
                }
                out
            }
            RenameRule::Camel => {
                let pascal = RenameRule::Pascal.apply_to_field(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RenameRule;

    #[test]
    fn renames_like_serde() {
        let cases = [
            ("lowercase", "max_concurrent", "max_concurrent"),
            ("UPPERCASE", "max_concurrent", "MAX_CONCURRENT"),
            ("PascalCase", "max_concurrent", "MaxConcurrent"),
            ("camelCase", "max_concurrent", "maxConcurrent"),
            ("snake_case", "max_concurrent", "max_concurrent"),
            ("SCREAMING_SNAKE_CASE", "max_concurrent", "MAX_CONCURRENT"),
            ("kebab-case", "max_concurrent", "max-concurrent"),
            ("SCREAMING-KEBAB-CASE", "max_concurrent", "MAX-CONCURRENT"),
            ("camelCase", "listen", "listen"),
            ("PascalCase", "listen", "Listen"),
        ];
        for (rule, field, expected) in cases {
            let rule = RenameRule::from_name(rule).unwrap();
            assert_eq!(rule.apply_to_field(field), expected, "{rule:?}");
        }
        assert_eq!(RenameRule::from_name("Title Case"), None);
    }
}
