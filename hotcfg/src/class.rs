//! What a change to a field needs: a named scope's handlers, or a restart.

use std::fmt;

/// The classification of a configuration field, fixed at compile time by `#[reload(...)]`.
///
/// A field either belongs to a named *scope* (its changes are applied live by the handlers
/// registered for that scope) or is *restart-only* (its changes cannot be applied to a running
/// program).
///
/// ```
/// use hotcfg::Class;
///
/// assert!(Class::Restart.is_restart());
/// assert_eq!(Class::Scope("limits").scope(), Some("limits"));
/// assert_eq!(Class::Scope("limits").to_string(), "limits");
/// assert_eq!(Class::Restart.to_string(), "restart");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// A change needs the program to restart.
    Restart,
    /// A change is applied live by the handlers of this scope.
    Scope(&'static str),
}

impl Class {
    /// `true` for [`Class::Restart`].
    pub fn is_restart(&self) -> bool {
        matches!(self, Class::Restart)
    }

    /// The scope name of a hot field, `None` for a restart-only one.
    pub fn scope(&self) -> Option<&'static str> {
        match self {
            Class::Restart => None,
            Class::Scope(name) => Some(name),
        }
    }

    /// The name used in audit records and tables: the scope name, or `restart`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Class::Restart => "restart",
            Class::Scope(name) => name,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Class {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Checks a scope name: non-empty, lowercase ASCII letters, digits, `_` and `-`, not `restart`.
///
/// The derive applies the same rule at compile time; the runtime applies it to names given to
/// handler registration so a typo is caught at start-up.
pub(crate) fn validate_scope_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("scope name is empty".to_string());
    }
    if name == "restart" {
        return Err("`restart` is reserved and cannot name a scope".to_string());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "scope name `{name}` contains {bad:?}; use lowercase letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate_scope_name;

    #[test]
    fn scope_names_follow_the_derive_rule() {
        assert!(validate_scope_name("limits").is_ok());
        assert!(validate_scope_name("rate_limit-2").is_ok());
        assert!(validate_scope_name("Limits").is_err());
        assert!(validate_scope_name("").is_err());
        assert!(validate_scope_name("restart").is_err());
    }
}
