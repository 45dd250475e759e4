//! The model: what the engine should hold after each operation.

use std::collections::{BTreeMap, BTreeSet};

use hotcfg::RestartPolicy;

use super::system::{render, Model, FAIL, INVALID_A, PANIC, VETO};

/// What the engine should hold.
#[derive(Clone, Debug)]
pub(super) struct Expected {
    pub(super) policy: RestartPolicy,
    pub(super) live: Model,
    pub(super) generation: u64,
    /// The text the live state reflects (the engine compares hashes of it).
    pub(super) last_text: String,
    pub(super) pending: bool,
    /// The value of `a` today's validation refuses, if any.
    pub(super) forbidden: Option<u32>,
    /// Texts probation reverted: refused whenever the source holds them (issue 17).
    pub(super) quarantined: BTreeSet<String>,
    /// The text (and what it parses to) of each generation whose snapshot is kept: every
    /// commit of a read source (the startup, a reload, a `revert_to`), not probation's reverts
    /// (they restore a version without reading the source).
    pub(super) kept: BTreeMap<u64, (String, Model)>,
    /// Commit-confirmed: the generation awaiting confirmation.
    pub(super) awaiting: Option<u64>,
    /// The last probation that ended was a revert: of which generation, and the live one then.
    pub(super) reverted: Option<(u64, u64)>,
}

/// What `confirm()` answers.
#[derive(Debug, PartialEq)]
pub(super) enum Confirmed {
    /// This generation was awaiting confirmation.
    Yes(u64),
    /// Too late: probation reverted this generation; the other one is live.
    TooLate { reverted: u64, live: u64 },
    /// Nothing awaits confirmation; this generation is live.
    NothingPending(u64),
}

impl Expected {
    pub(super) fn new(initial: &Model, policy: RestartPolicy) -> Self {
        Expected {
            policy,
            live: initial.clone(),
            generation: 1,
            last_text: render(initial),
            pending: false,
            forbidden: None,
            quarantined: BTreeSet::new(),
            kept: BTreeMap::from([(1, (render(initial), initial.clone()))]),
            awaiting: None,
            reverted: None,
        }
    }

    /// Whether today's validation accepts `m`.
    pub(super) fn valid(&self, m: &Model) -> bool {
        m.a < INVALID_A && Some(m.a) != self.forbidden
    }

    /// The result of reloading `text` (`parsed`: what it deserializes to, `None` if it does
    /// not), updating the model.
    pub(super) fn reload(&mut self, text: &str, parsed: Option<Model>) -> &'static str {
        // Quarantine is checked before anything else, the unchanged bytes before validation.
        if self.quarantined.contains(text) {
            return "rejected";
        }
        if text == self.last_text {
            return "unchanged";
        }
        let Some(candidate) = parsed.filter(|m| self.valid(m)) else {
            return "failed";
        };
        let restart = candidate.listen != self.live.listen;
        if restart && self.policy == RestartPolicy::Reject {
            return "rejected";
        }
        let effective = Model {
            listen: self.live.listen,
            ..candidate.clone()
        };
        if candidate == self.live {
            self.last_text = text.to_string();
            self.pending = false;
            return "unchanged";
        }
        if effective == self.live {
            self.last_text = text.to_string();
            self.pending = true;
            return "applied";
        }
        match effective.b {
            VETO => return "rejected",
            FAIL | PANIC => return "failed",
            _ => {}
        }
        self.live = effective;
        self.generation += 1;
        self.kept
            .insert(self.generation, (text.to_string(), candidate));
        self.awaiting = Some(self.generation);
        self.last_text = text.to_string();
        self.pending = restart;
        "applied"
    }

    /// The result of reloading `text` when the health check judges it unhealthy: applied, then
    /// reverted to `self` as it was (the last trusted version: every step waits for probation to
    /// end) as the next generation, the text quarantined.
    pub(super) fn reload_sick(&mut self, text: &str, parsed: Model) -> &'static str {
        let trusted = self.clone();
        let result = self.reload(text, Some(parsed));
        if result == "applied" && self.generation > trusted.generation {
            self.quarantined.insert(text.to_string());
            self.live = trusted.live;
            self.last_text = trusted.last_text;
            self.pending = trusted.pending;
            self.generation += 1;
            self.awaiting = None;
            self.reverted = Some((trusted.generation + 1, self.generation));
        }
        result
    }

    /// What `confirm()` answers (commit-confirmed), updating the model: a change confirmed (and
    /// healthy: the check judges at once) passes its probation.
    pub(super) fn confirm(&mut self) -> Confirmed {
        if let Some(generation) = self.awaiting.take() {
            self.reverted = None;
            return Confirmed::Yes(generation);
        }
        match self.reverted {
            Some((reverted, live)) => Confirmed::TooLate { reverted, live },
            None => Confirmed::NothingPending(self.generation),
        }
    }

    /// The generation `pick` names: 1 to the live one.
    pub(super) fn pick(&self, pick: u64) -> u64 {
        pick % self.generation + 1
    }

    /// What `revert_to(generation)` does: `None` when its snapshot is not kept; else the result
    /// of its attempt, the model updated when it is live (the source then holds its text).
    pub(super) fn revert_to(&mut self, generation: u64) -> Option<(String, &'static str)> {
        let (text, parsed) = self.kept.get(&generation).cloned()?;
        let result = self.reload(&text, Some(parsed));
        Some((text, result))
    }

    /// The decision `plan_revert(generation)` reports (`None`: its snapshot is not kept). The
    /// dry run compares configurations: no quarantine, no hash, no handler asked.
    pub(super) fn plan_revert(&self, generation: u64) -> Option<&'static str> {
        let (_, candidate) = self.kept.get(&generation)?;
        let restart = candidate.listen != self.live.listen;
        let effective = Model {
            listen: self.live.listen,
            ..candidate.clone()
        };
        Some(if !self.valid(candidate) {
            "invalid"
        } else if *candidate == self.live {
            "unchanged"
        } else if restart && self.policy == RestartPolicy::Reject {
            "reject"
        } else if effective == self.live {
            "defer"
        } else {
            "apply"
        })
    }
}
