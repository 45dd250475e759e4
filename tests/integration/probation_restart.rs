//! An automatic revert of a change that also held restart-only settings: what the revert's event
//! says waits for a restart is the restored version's (found by the model-based stress test:
//! it listed the reverted change's pending restarts, while `pending_restart()` was right).

use std::time::Duration;

use hotcfg::{
    Format, Health, HotReload, MemorySource, ProbationStatus, Probe, ReloadResult, Reloader,
    RestartPolicy,
};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(restart)]
    listen: String,
    #[reload(scope = "pool")]
    workers: u32,
}

fn needs_workers(probe: &Probe<Config>) -> Health {
    match probe.new.workers {
        0 => Health::unhealthy("no workers"),
        _ => Health::Healthy,
    }
}

fn pending_paths(result: &ReloadResult) -> Vec<String> {
    result
        .pending_restart()
        .iter()
        .map(|c| c.path.clone())
        .collect()
}

#[test]
fn a_reverted_changes_pending_restarts_go_with_it() {
    let source = MemorySource::new("app.toml", Format::Toml, "listen = \"a:1\"\nworkers = 4");
    let reloader = Reloader::<Config>::builder(source.clone())
        .policy(RestartPolicy::Defer)
        .on_apply("pool", |_| Ok(()))
        .probation_interval(Duration::from_millis(5))
        .probation(Duration::from_secs(60), needs_workers)
        .build()
        .unwrap();
    source.set("listen = \"b:2\"\nworkers = 0");
    let applied = reloader.reload_now();
    assert_eq!(pending_paths(&applied.result), ["listen"], "{applied}");

    let status = reloader.wait_probation(Duration::from_secs(30));
    assert!(
        matches!(status, ProbationStatus::Reverted { live: 3, .. }),
        "{status:?}"
    );
    let revert = reloader.last_event();
    assert!(
        matches!(revert.result, ReloadResult::Applied { .. }),
        "{revert}"
    );
    assert_eq!(
        pending_paths(&revert.result),
        Vec::<String>::new(),
        "the restored version (generation 1) waits for no restart: {revert}"
    );
    assert!(reloader.pending_restart().is_empty());
    assert_eq!(reloader.handle().load().workers, 4);
}
