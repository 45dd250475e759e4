//! The demo's probation step: a change that passes validation but makes every loop iteration
//! fail is committed, judged unhealthy by the daemon's loop-failure check, and reverted
//! automatically, with the loops, the queue and the connections intact.

use std::time::Duration;

use hotcfg::{ProbationStatus, ReloadResult, Reloader, Trigger};
use serde_json::Value;

use super::{expect, loop_iterations, show, Client, Tour};
use crate::config::TaskDaemonConfig;

pub(super) async fn run(
    tour: &mut Tour,
    alice: &mut Client,
    bob: &mut Client,
    reloader: &Reloader<TaskDaemonConfig>,
) -> Result<(), String> {
    tour.title("probation: a valid change that makes every loop iteration fail is reverted");
    // The previous change finishes its probation first: a revert restores the last trusted
    // version, so this step reverts only its own change.
    let mut updates = reloader.probation_updates();
    tokio::time::timeout(
        Duration::from_secs(30),
        updates.wait_for(|s| !matches!(s, ProbationStatus::OnProbation { .. })),
    )
    .await
    .map_err(|_| "the previous change was still on probation after 30 s".to_string())?
    .map_err(|e| e.to_string())?;
    let queued = alice.post("/api/submit", r#"{"type": "build"}"#).await?;
    let id = queued["queued"].as_u64().ok_or("no job id")?;
    let before = running_job(bob, id).await?;
    let trusted = tour.read()?;
    let mut table = trusted.clone();
    // `{iterations}` for `{iteration}`: free text to validation, a broken line to every loop.
    table["templates"]["progress"] = "loop {id} ({type}): iteration {iterations} of {max}".into();
    tour.save_table(&table)?;
    let event = tour.next_event("a template with a typo").await?;
    show(&event);
    expect(
        matches!(event.result, ReloadResult::Applied { .. }),
        "it passes validation and is applied (on probation)",
    )?;
    let event = tour.next_event("the automatic revert").await?;
    show(&event);
    expect(
        matches!(event.trigger, Trigger::Probation(_))
            && matches!(event.result, ReloadResult::Applied { .. }),
        "loop iterations failed, so probation reverted it as a new generation",
    )?;
    let status = alice.get("/api/status").await?;
    let probation = &status["probation"];
    println!("   probation: {probation}");
    let after = loop_iterations(&status);
    expect(
        after.iter().any(|(job, n)| *job == id && *n >= before),
        "the loop kept running through the change and the revert",
    )?;
    expect(
        probation["state"] == "reverted"
            && probation["quarantined"]
                .as_array()
                .is_some_and(|q| q.len() == 1),
        "the reverted content is quarantined while the file holds it",
    )?;
    expect(
        status["connections"].as_u64() >= Some(2) && status["queue_capacity"].as_u64() > Some(0),
        "the queue and both client connections are intact",
    )?;
    // Back to the trusted text: the same bytes as the live version, so nothing to reload.
    tour.save_table(&trusted)?;
    Ok(())
}

/// Waits until job `id` runs; its iterations then.
async fn running_job(client: &mut Client, id: u64) -> Result<u64, String> {
    for _ in 0..500 {
        let status: Value = client.get("/api/status").await?;
        if let Some((_, n)) = loop_iterations(&status).into_iter().find(|(j, _)| *j == id) {
            return Ok(n);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Err(format!("job {id} did not start within 5 s"))
}
