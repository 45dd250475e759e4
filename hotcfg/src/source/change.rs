//! [`ChangeNote`]: who made a change and why, when the source keeps that beside the value (etcd:
//! `push --reason`), carried in the [`SourceIdentity`](super::SourceIdentity) into every audit
//! record and status report.

use std::fmt;

/// The longest author or reason accepted, in bytes: a note is a line for people, not a document.
pub const MAX_NOTE_BYTES: usize = 1024;

/// Who made a change and why.
///
/// ```
/// use hotcfg::ChangeNote;
///
/// let note = ChangeNote::new("alice@ops-1").reason("raise workers for the sale");
/// assert_eq!(note.to_string(), "alice@ops-1: raise workers for the sale");
/// assert!(ChangeNote::new("bob").reason("two\nlines").check().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct ChangeNote {
    /// Who made it (`user@host` by default for `push`).
    pub author: String,
    /// Why, as the author said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ChangeNote {
    /// A note by `author`, without a reason.
    pub fn new(author: impl Into<String>) -> Self {
        ChangeNote {
            author: author.into(),
            reason: None,
        }
    }

    /// With this reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// A note by the user running this program: `$USER@host` (`LOGNAME` when `USER` is unset,
    /// `unknown` when neither is; the host from the kernel, else `HOSTNAME`, else `localhost`).
    pub fn by_current_user() -> Self {
        let user = ["USER", "LOGNAME"]
            .iter()
            .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "unknown".to_string());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".to_string());
        ChangeNote::new(format!("{}@{host}", user.trim()))
    }

    /// Refuses an empty author, and an author or reason that is longer than
    /// 1 KiB or holds control characters (a line break would forge table rows).
    pub fn check(&self) -> Result<(), String> {
        if self.author.trim().is_empty() {
            return Err("the author is empty".into());
        }
        let fields = [
            ("author", Some(&self.author)),
            ("reason", self.reason.as_ref()),
        ];
        for (what, text) in fields {
            let Some(text) = text else { continue };
            if text.len() > MAX_NOTE_BYTES {
                return Err(format!(
                    "the {what} is {} bytes, above the limit of {MAX_NOTE_BYTES}",
                    text.len()
                ));
            }
            if text.chars().any(char::is_control) {
                return Err(format!(
                    "the {what} holds a control character (a line break, a tab, ...)"
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for ChangeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.author)?;
        if let Some(reason) = &self.reason {
            write!(f, ": {reason}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_is_refused_when_empty_too_long_or_holding_control_characters() {
        assert!(ChangeNote::new("a@b").reason("why").check().is_ok());
        assert_eq!(
            ChangeNote::new(" ").check().unwrap_err(),
            "the author is empty"
        );
        let long = "x".repeat(MAX_NOTE_BYTES + 1);
        let err = ChangeNote::new("a").reason(long).check().unwrap_err();
        assert!(err.starts_with("the reason is 1025 bytes"), "{err}");
        let err = ChangeNote::new("a\tb").check().unwrap_err();
        assert!(
            err.starts_with("the author holds a control character"),
            "{err}"
        );
    }

    #[test]
    fn the_current_user_note_names_a_user_and_a_host() {
        let note = ChangeNote::by_current_user();
        let (user, host) = note.author.split_once('@').expect("user@host");
        assert!(!user.is_empty() && !host.is_empty(), "{note}");
        assert!(note.check().is_ok());
    }
}
