//! Who uses each loop type, so that a reload never removes a type an acknowledged job needs.
//!
//! Every job holds a [`Claim`] on its loop type from the moment its submit passes the type check
//! until it finishes (or the daemon stops): while it is being committed, queued, handed to the
//! dispatcher, running or parked. The count is the one source of truth for "in use".
//!
//! A reload that removes a type checks the count twice: its `prepare` vetoes with a message (a
//! dry run does the same and changes nothing), and its `apply` [`close`](TypeUsers::close)s the
//! type, under the lock that every new claim also takes. So either a submit claimed the type
//! first and the apply fails (the reload rolls back), or the type is closed first and the
//! submit is refused: no submit can slip between the check and the store of the new
//! configuration. A rolled-back reload [`reopen`](TypeUsers::reopen)s its types.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

#[derive(Default)]
struct Inner {
    /// Claims held, by loop type (no entry at zero).
    claims: BTreeMap<String, usize>,
    /// Types a reload is removing: new submits of them are refused.
    closing: BTreeSet<String>,
}

/// The claims on every loop type.
#[derive(Default)]
pub struct TypeUsers {
    inner: Mutex<Inner>,
}

/// Why a new claim was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimRefused {
    /// The live configuration does not define the type.
    Unknown,
    /// A reload that removes the type is under way.
    Closing,
}

/// One job's hold on its loop type; given back on drop.
pub struct Claim {
    users: Arc<TypeUsers>,
    loop_type: String,
}

impl Claim {
    /// The loop type claimed.
    pub fn loop_type(&self) -> &str {
        &self.loop_type
    }
}

impl std::fmt::Debug for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Claim").field(&self.loop_type).finish()
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let mut inner = self.users.lock();
        if let Some(count) = inner.claims.get_mut(&self.loop_type) {
            *count -= 1;
            if *count == 0 {
                inner.claims.remove(&self.loop_type);
            }
        }
    }
}

impl TypeUsers {
    /// No claims, nothing closing.
    pub fn new() -> Arc<Self> {
        Arc::new(TypeUsers::default())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Claims `loop_type` for a new submit if `defined` (asked under the lock) says the live
    /// configuration has it and no reload is removing it.
    pub fn claim_new(
        self: &Arc<Self>,
        loop_type: &str,
        defined: impl FnOnce() -> bool,
    ) -> Result<Claim, ClaimRefused> {
        let mut inner = self.lock();
        if inner.closing.contains(loop_type) {
            return Err(ClaimRefused::Closing);
        }
        if !defined() {
            return Err(ClaimRefused::Unknown);
        }
        Ok(self.add(&mut inner, loop_type))
    }

    /// Claims `loop_type` for a job acknowledged earlier (restored at start), whether or not the
    /// type is defined now: it stays in use until the job finishes.
    pub fn claim_existing(self: &Arc<Self>, loop_type: &str) -> Claim {
        let mut inner = self.lock();
        self.add(&mut inner, loop_type)
    }

    fn add(self: &Arc<Self>, inner: &mut Inner, loop_type: &str) -> Claim {
        *inner.claims.entry(loop_type.to_string()).or_default() += 1;
        Claim {
            users: Arc::clone(self),
            loop_type: loop_type.to_string(),
        }
    }

    /// Claims held on `loop_type`.
    pub fn count(&self, loop_type: &str) -> usize {
        self.lock().claims.get(loop_type).copied().unwrap_or(0)
    }

    /// Closes `removed` to new submits if none of them is claimed; otherwise changes nothing and
    /// names the first type in use with its claim count. Replaces what an earlier reload closed
    /// (those types are no longer in the live configuration, so refusing them changes nothing).
    pub fn close(&self, removed: &[&str]) -> Result<(), (String, usize)> {
        let mut inner = self.lock();
        if let Some((name, count)) = removed
            .iter()
            .find_map(|name| inner.claims.get(*name).map(|count| (*name, *count)))
        {
            return Err((name.to_string(), count));
        }
        inner.closing = removed.iter().map(|name| name.to_string()).collect();
        Ok(())
    }

    /// Opens every closed type again (the reload that closed them was rolled back).
    pub fn reopen(&self) {
        self.lock().closing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_type_cannot_be_closed_until_its_last_claim_ends() {
        let users = TypeUsers::new();
        let first = users.claim_new("build", || true).unwrap();
        let second = users.claim_existing("build");
        assert_eq!(users.count("build"), 2);
        assert_eq!(
            users.close(&["report", "build"]),
            Err(("build".to_string(), 2))
        );
        drop(first);
        assert_eq!(users.close(&["build"]), Err(("build".to_string(), 1)));
        drop(second);
        assert_eq!(users.count("build"), 0);
        assert_eq!(users.close(&["build"]), Ok(()));
    }

    #[test]
    fn a_closed_type_refuses_new_claims_until_reopened() {
        let users = TypeUsers::new();
        users.close(&["build"]).unwrap();
        assert_eq!(
            users.claim_new("build", || true).unwrap_err(),
            ClaimRefused::Closing
        );
        assert_eq!(
            users.claim_new("report", || false).unwrap_err(),
            ClaimRefused::Unknown
        );
        users.reopen();
        let claim = users.claim_new("build", || true).unwrap();
        assert_eq!(claim.loop_type(), "build");
        // A failed close leaves what was open, open.
        assert!(users.close(&["build"]).is_err());
        assert!(users.claim_new("build", || true).is_ok());
    }
}
