//! The operations a run is made of.

use proptest::prelude::*;

use super::system::{FAIL, PANIC, VETO};

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
    /// A valid hot edit that the probation health check judges unhealthy: applied, then
    /// reverted automatically to the last trusted version as a new generation, its text
    /// quarantined (issue 17).
    Sick { a: u32 },
    /// `revert_to` a generation picked among those so far (`pick` modulo the live generation,
    /// plus one): that version again, or the refusal the library defines (issue 17).
    Revert { pick: u64 },
    /// `plan_revert` of a generation picked the same way: its dry run, nothing changed.
    PlanRevert { pick: u64 },
    /// Today's validation refuses, from now on, the value of `a` of a generation picked the
    /// same way (so that reverting to it is refused).
    Forbid { pick: u64 },
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
        2 => proptest::collection::vec((small.clone(), small.clone()), 2..6).prop_map(Op::Burst),
        3 => small.clone().prop_map(|a| Op::Sick { a }),
        4 => any::<u64>().prop_map(|pick| Op::Revert { pick }),
        1 => any::<u64>().prop_map(|pick| Op::PlanRevert { pick }),
        1 => any::<u64>().prop_map(|pick| Op::Forbid { pick }),
    ]
}

impl Op {
    /// The operation's name, for the tally of outcomes.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Op::Valid { .. } => "valid",
            Op::Invalid(_) => "invalid",
            Op::RestartOnly { .. } => "restart-only",
            Op::Handler { .. } => "handler",
            Op::Manual => "manual",
            Op::Burst(_) => "burst",
            Op::Sick { .. } => "sick",
            Op::Revert { .. } => "revert",
            Op::PlanRevert { .. } => "plan_revert",
            Op::Forbid { .. } => "forbid",
        }
    }
}
