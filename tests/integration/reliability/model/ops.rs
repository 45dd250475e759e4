//! The operations a run is made of, and the model of what the engine should hold after each.

use hotcfg::RestartPolicy;
use proptest::prelude::*;

use super::system::{Model, FAIL, PANIC, VETO};

#[derive(Clone, Debug)]
pub(super) enum Op {
    /// A valid hot edit.
    Valid { a: u32, b: u32 },
    /// Not TOML, not the type, or broken validation.
    Invalid(u8),
    /// `listen` changes (with hot changes).
    RestartOnly { a: u32, b: u32 },
    /// `b`'s handler vetoes, fails or panics.
    Handler { a: u32, b: u32 },
    /// A reload with no edit.
    Manual,
    /// Several valid edits while three threads trigger reloads.
    Burst(Vec<(u32, u32)>),
}

pub(super) fn op() -> impl Strategy<Value = Op> {
    let small = 0u32..6;
    prop_oneof![
        4 => (small.clone(), small.clone()).prop_map(|(a, b)| Op::Valid { a, b }),
        2 => (0u8..3).prop_map(Op::Invalid),
        2 => (small.clone(), small.clone()).prop_map(|(a, b)| Op::RestartOnly { a, b }),
        3 => (small.clone(), prop_oneof![Just(VETO), Just(FAIL), Just(PANIC)])
            .prop_map(|(a, b)| Op::Handler { a, b }),
        1 => Just(Op::Manual),
        2 => proptest::collection::vec((small.clone(), small), 2..6).prop_map(Op::Burst),
    ]
}

/// What the engine should hold.
#[derive(Clone, Debug)]
pub(super) struct Expected {
    pub(super) live: Model,
    pub(super) generation: u64,
    /// The text the live state reflects (the engine compares hashes of it).
    pub(super) last_text: String,
    pub(super) pending: bool,
}

impl Expected {
    /// The result of reloading `text` (`None`: does not parse or validate), updating the model.
    pub(super) fn reload(
        &mut self,
        text: &str,
        parsed: Option<Model>,
        policy: RestartPolicy,
    ) -> &'static str {
        if text == self.last_text {
            return "unchanged";
        }
        let Some(candidate) = parsed else {
            return "failed";
        };
        let restart = candidate.listen != self.live.listen;
        if restart && policy == RestartPolicy::Reject {
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
        self.last_text = text.to_string();
        self.pending = restart;
        "applied"
    }
}
