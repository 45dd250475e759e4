//! The checker: one thread per reloader with probation. It waits for what is due (a health
//! check, an unconfirmed deadline), runs each check on a thread of its own so that a hung check
//! cannot stall it (it counts as unhealthy after the health timeout), and asks the engine to
//! revert. It holds the engine weakly and ends when the engine is dropped.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Weak};
use std::time::Duration;

use tokio::runtime::Handle as RuntimeHandle;

use super::probation::{Checker, Health, Probe, RevertReason};
use super::probation_cell::{Due, ProbationCell};
use super::{Inner, Reloader};
use crate::hot_reload::{HotConfig, HotReload};

/// Starts the checker of `reloader`'s probation (if it has one); async checks run on `runtime`.
pub(super) fn start<C: HotConfig>(reloader: &Reloader<C>, runtime: Option<RuntimeHandle>) {
    let Some(cell) = reloader.inner.probation.clone() else {
        return;
    };
    let engine = Arc::downgrade(&reloader.inner);
    let spawned = std::thread::Builder::new()
        .name("hotcfg-probation".into())
        .spawn(move || run(&engine, &cell, runtime.as_ref()));
    if let Err(error) = spawned {
        // Without the checker nothing would ever be judged or reverted: say so loudly.
        tracing::error!(%error, "cannot start the probation thread; changes will not be judged");
    }
}

fn run<C: HotConfig>(
    engine: &Weak<Inner<C>>,
    cell: &ProbationCell<C>,
    runtime: Option<&RuntimeHandle>,
) {
    while let Some(due) = cell.next_due() {
        let (id, reason) = match due {
            Due::Check { id, probe } => {
                let verdict = judge(cell, runtime, probe);
                cell.checked(id);
                match verdict {
                    Some(reason) => (id, reason),
                    None => continue,
                }
            }
            Due::Expired { id, after } => (id, RevertReason::Unconfirmed(after)),
        };
        let Some(inner) = engine.upgrade() else {
            return;
        };
        Reloader { inner }.revert_probation(id, reason);
    }
}

/// Runs the health check on a thread of its own, waiting at most the health timeout: the
/// reason to revert, or `None` when healthy.
fn judge<C: HotConfig>(
    cell: &ProbationCell<C>,
    runtime: Option<&RuntimeHandle>,
    probe: Probe<C>,
) -> Option<RevertReason> {
    let checker = cell.setup.check.clone()?;
    let timeout = cell.setup.timeout;
    let runtime = runtime.cloned();
    let (tx, rx) = mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("hotcfg-health".into())
        .spawn(move || {
            let verdict = catch_unwind(AssertUnwindSafe(|| check(&checker, runtime, &probe)));
            let _ = tx.send(verdict.map_err(|panic| crate::handlers::panic_message(&*panic)));
        });
    if let Err(error) = spawned {
        return Some(RevertReason::Unhealthy(format!(
            "cannot start the health check: {error}"
        )));
    }
    verdict(rx.recv_timeout(timeout), timeout)
}

fn check<C: HotReload>(
    checker: &Checker<C>,
    runtime: Option<RuntimeHandle>,
    probe: &Probe<C>,
) -> Health {
    match (checker, runtime) {
        (Checker::Sync(check), _) => check.check(probe),
        (Checker::Async(check), Some(runtime)) => runtime.block_on(check.check(probe)),
        (Checker::Async(_), None) => Health::unhealthy("no tokio runtime for the async check"),
    }
}

/// What a check's answer (or its absence) means.
fn verdict(
    answer: Result<Result<Health, String>, mpsc::RecvTimeoutError>,
    timeout: Duration,
) -> Option<RevertReason> {
    match answer {
        Ok(Ok(Health::Healthy)) => None,
        Ok(Ok(Health::Unhealthy(reason))) => Some(RevertReason::Unhealthy(reason)),
        Ok(Err(panic)) => Some(RevertReason::CheckPanicked(panic)),
        Err(mpsc::RecvTimeoutError::Timeout) => Some(RevertReason::CheckTimedOut(timeout)),
        Err(mpsc::RecvTimeoutError::Disconnected) => Some(RevertReason::CheckPanicked(
            "it ended without an answer".into(),
        )),
    }
}

impl<C: HotReload> Drop for Inner<C> {
    fn drop(&mut self) {
        if let Some(cell) = &self.probation {
            cell.shutdown();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_and_its_absence_has_a_meaning() {
        let t = Duration::from_millis(5);
        assert_eq!(verdict(Ok(Ok(Health::Healthy)), t), None);
        assert_eq!(
            verdict(Ok(Ok(Health::unhealthy("5xx"))), t),
            Some(RevertReason::Unhealthy("5xx".into()))
        );
        assert_eq!(
            verdict(Ok(Err("boom".into())), t),
            Some(RevertReason::CheckPanicked("boom".into()))
        );
        assert_eq!(
            verdict(Err(mpsc::RecvTimeoutError::Timeout), t),
            Some(RevertReason::CheckTimedOut(t))
        );
        assert!(matches!(
            verdict(Err(mpsc::RecvTimeoutError::Disconnected), t),
            Some(RevertReason::CheckPanicked(_))
        ));
    }
}
