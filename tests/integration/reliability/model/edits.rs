//! The operations that edit the file (or not) and reload: one edit and its reload, or a burst
//! of edits while threads trigger reloads.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hotcfg::{ReloadEvent, ReloadResult, Rollback};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::checks::distinct_applied_generations;
use super::ops::Op;
use super::run::Run;
use super::system::{render, Model, INVALID_A, LISTEN, OTHER_LISTEN};
use crate::reliability::write_atomically;

impl Run {
    /// A valid, invalid, restart-only or handler-refused edit, or a reload with no edit.
    pub(super) fn edit(&mut self, op: &Op, at: &str) -> Result<Arc<ReloadEvent>, TestCaseError> {
        let (text, parsed) = match op {
            Op::Valid { a, b } | Op::Handler { a, b } => typed(LISTEN, *a, *b),
            Op::RestartOnly { a, b } => typed(OTHER_LISTEN, *a, *b),
            Op::Invalid(0) => ("listen = = 7000\n".to_string(), None),
            Op::Invalid(1) => (format!("listen = {LISTEN}\na = \"many\"\nb = 0\n"), None),
            Op::Invalid(_) => typed(LISTEN, INVALID_A, 0),
            Op::Manual => self.current.clone(),
            _ => unreachable!("not an edit: {op:?}"),
        };
        if !matches!(op, Op::Manual) {
            self.write(&text, parsed.clone());
        }
        let quarantined = self.expected.quarantined.contains(&text);
        let want = self.expected.reload(&text, parsed);
        let event = self.reloader.reload_now();
        prop_assert_eq!(event.result.kind(), want, "{}: {}", at, event);
        if let ReloadResult::Failed { rollback, .. } = &event.result {
            // Every rollback here succeeds; a candidate that does not load reaches no handler.
            prop_assert!(!matches!(rollback, Rollback::Incomplete { .. }), "{}", at);
            if matches!(op, Op::Invalid(_)) {
                prop_assert_eq!(rollback, &Rollback::NotNeeded, "{}", at);
            }
        }
        if quarantined {
            let said = matches!(&event.result,
                ReloadResult::Rejected { reason, .. } if reason.contains("is quarantined"));
            prop_assert!(said, "{}: quarantined text: {}", at, event);
        }
        self.probation_settled(at)?;
        Ok(event)
    }

    /// Several valid edits while three threads trigger reloads, then one more reload: the last
    /// edit wins; every reload that applied something took the next generation (coalesced
    /// callers share one event).
    pub(super) fn burst(
        &mut self,
        edits: &[(u32, u32)],
        at: &str,
    ) -> Result<Vec<Arc<ReloadEvent>>, TestCaseError> {
        let before = self.expected.generation;
        let go = Arc::new(AtomicBool::new(true));
        let triggers: Vec<_> = (0..3)
            .map(|_| {
                let (reloader, go) = (self.reloader.clone(), go.clone());
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while go.load(Ordering::Relaxed) {
                        got.push(reloader.reload_now());
                    }
                    got
                })
            })
            .collect();
        let mut written = Vec::new();
        for (a, b) in edits {
            // Only valid edits: a value today's validation forbids is moved off it.
            let a = if Some(*a) == self.expected.forbidden {
                (a + 1) % 6
            } else {
                *a
            };
            let (text, parsed) = typed(LISTEN, a, *b);
            write_atomically(&self.path, &text);
            written.push((text, parsed.unwrap()));
            std::thread::sleep(Duration::from_micros(300));
        }
        go.store(false, Ordering::Relaxed);
        let mut returned = Vec::new();
        for t in triggers {
            returned.extend(t.join().unwrap());
        }
        let settle = self.reloader.reload_now();
        prop_assert!(settle.result.is_ok(), "{at}: {settle}");
        returned.push(settle);
        let (text, last) = written.last().cloned().unwrap();
        self.current = (text.clone(), Some(last.clone()));
        let expected = &mut self.expected;
        expected.live = last;
        expected.last_text = text;
        expected.pending = false;
        let applied = distinct_applied_generations(&returned);
        let want: Vec<u64> = (before + 1..=before + applied.len() as u64).collect();
        prop_assert_eq!(&applied, &want, "{}: generations of applied reloads", at);
        expected.generation = before + applied.len() as u64;
        if !applied.is_empty() {
            expected.awaiting = Some(expected.generation);
        }
        // Each of those generations keeps the snapshot of the edit it read.
        for event in returned.iter().filter(|e| applied.contains(&e.generation)) {
            let sha = event.source.as_ref().map(|s| s.sha256.as_str());
            let edit = written
                .iter()
                .find(|(text, _)| Some(hotcfg_tests::sha256_hex(text.as_bytes()).as_str()) == sha);
            let edit = edit.ok_or_else(|| {
                TestCaseError::fail(format!("{at}: an applied event read no edit: {event}"))
            })?;
            expected.kept.insert(event.generation, edit.clone());
        }
        self.probation_settled(at)?;
        Ok(returned)
    }

    /// Writes `text` to the file (`parsed`: what it deserializes to).
    pub(super) fn write(&mut self, text: &str, parsed: Option<Model>) {
        write_atomically(&self.path, text);
        self.current = (text.to_string(), parsed);
    }
}

/// The text of a configuration with these values, and the configuration.
pub(super) fn typed(listen: u32, a: u32, b: u32) -> (String, Option<Model>) {
    let m = Model { listen, a, b };
    (render(&m), Some(m))
}
