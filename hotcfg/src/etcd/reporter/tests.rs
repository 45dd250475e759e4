//! Unit tests of the reporter without etcd: the report of each kind of event on a real
//! `Reloader` over a `MemorySource`, the meaning of a keep-alive's answer, and the retry loop
//! against a loopback port that accepts connections but never speaks etcd.

use std::net::TcpListener;
use std::sync::mpsc;

use super::*;
use crate::etcd::client::{EtcdClient, EtcdOptions};
use crate::etcd::follower::remote_trigger;
use crate::etcd::health::WatchState;
use crate::event::RemoteCause;
use crate::plan::RestartPolicy;
use crate::{Format, MemorySource, SourceErrorKind};

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, crate::HotReload)]
struct Cfg {
    #[reload(restart)]
    listen: String,
    #[reload(scope = "main")]
    workers: u32,
}

/// How long a wait may last before the test fails.
const BOUND: Duration = Duration::from_secs(10);

/// A source, and a reloader of it that defers restart-only changes and runs probation (a
/// commit must be confirmed within a minute).
fn engine() -> (MemorySource, Reloader<Cfg>) {
    let source = MemorySource::new("app.toml", Format::Toml, "listen = 'a'\nworkers = 1");
    let reloader = Reloader::<Cfg>::builder(source.clone())
        .policy(RestartPolicy::Defer)
        .confirm_within(Duration::from_secs(60))
        .build()
        .unwrap();
    (source, reloader)
}

/// The reporter of node `web-1` for `reloader`, with a client of `endpoint` that gives up on a
/// request after half a second, and retries after 1 to 5 ms.
fn reporter(reloader: &Reloader<Cfg>, endpoint: &str) -> Reporter<Cfg> {
    let options = EtcdOptions::default().request_timeout(Duration::from_millis(500));
    let client = EtcdClient::with_options([endpoint], options).unwrap();
    Reporter {
        reloader: reloader.clone(),
        source: EtcdSource::new(client, "app/config"),
        shared: Arc::new(Shared::new()),
        node: "web-1".into(),
        key: "status/web-1".into(),
        ttl: Duration::from_secs(3),
        backoff: (Duration::from_millis(1), Duration::from_millis(5)),
        generations: Generations::default(),
    }
}

fn reconnecting() -> WatchHealth {
    WatchHealth {
        state: WatchState::Reconnecting,
        since: 42,
        last_error: Some("cannot reach etcd".into()),
    }
}

#[test]
fn a_report_says_what_was_applied_what_waits_for_a_restart_and_where_probation_stands() {
    let (source, reloader) = engine();
    let reporter = reporter(&reloader, "127.0.0.1:9");
    source.set("listen = 'b'\nworkers = 2");
    let event = reloader.reload_now();
    let status = reporter
        .status_of(&event, &reconnecting())
        .expect("a report");
    assert_eq!(status.node, "web-1");
    assert_eq!(status.result, NodeResult::Applied);
    assert_eq!(status.generation, 2);
    assert_eq!(status.pending_restart, ["listen"]);
    assert_eq!(status.watch, Some(reconnecting()));
    let probation = status.probation.expect("the node runs probation");
    assert_eq!(probation.state, "on_probation");
    assert_eq!(probation.generation, 2);
    assert!(probation.until_ms.is_some(), "{probation:?}");
    assert!(!status.stale);
}

#[test]
fn without_probation_or_pending_changes_a_report_has_neither() {
    let source = MemorySource::new("app.toml", Format::Toml, "listen = 'a'\nworkers = 1");
    let reloader = Reloader::<Cfg>::builder(source.clone()).build().unwrap();
    let reporter = reporter(&reloader, "127.0.0.1:9");
    source.set("listen = 'a'\nworkers = 2");
    let status = reporter
        .status_of(&reloader.reload_now(), &reconnecting())
        .expect("a report");
    assert_eq!(status.result, NodeResult::Applied);
    assert!(status.pending_restart.is_empty(), "{status:?}");
    assert_eq!(status.probation, None);
}

#[test]
fn a_deleted_key_is_reported_for_the_revision_that_triggered_the_reload() {
    let (source, reloader) = engine();
    let reporter = reporter(&reloader, "127.0.0.1:9");
    source.fail_reads(SourceErrorKind::NotFound, "the key does not exist in etcd");
    let deleted = reloader.trigger(remote_trigger("app/config", RemoteCause::Watched, 7));
    let status = reporter
        .status_of(&deleted, &reconnecting())
        .expect("a report");
    assert_eq!(status.result, NodeResult::Failed);
    assert_eq!(status.revision, Some(7));
    let error = status.error.expect("the reason");
    assert!(error.contains("the key does not exist in etcd"), "{error}");
    // A read that could not reach etcd says nothing about any revision: no report.
    source.fail_reads(SourceErrorKind::Unavailable, "cannot reach etcd");
    let unreachable = reloader.trigger(remote_trigger("app/config", RemoteCause::Watched, 8));
    assert_eq!(reporter.status_of(&unreachable, &reconnecting()), None);
}

#[test]
fn a_keep_alive_answer_with_time_left_renews_and_any_other_answer_is_an_error() {
    let (_, reloader) = engine();
    let reporter = reporter(&reloader, "127.0.0.1:9");
    assert_eq!(reporter.renewal(42, Some(Ok(Some(3)))), Ok(()));
    assert_eq!(reporter.renewal(42, Some(Ok(Some(1)))), Ok(()));
    // No time left: etcd is up but the lease expired; a refusal, not an unreachable etcd.
    let expired = reporter.renewal(42, Some(Ok(Some(0)))).unwrap_err();
    assert_eq!(
        expired.to_string(),
        "etcd at 127.0.0.1:9 refused to keep the status lease alive: lease 2a expired while etcd \
         was up (not renewed within its 3 s time to live); taking a new one"
    );
    assert!(!expired.is_unreachable());
    let closed = reporter.renewal(42, Some(Ok(None))).unwrap_err();
    assert_eq!(
        closed.to_string(),
        "cannot reach etcd at 127.0.0.1:9: the lease keep-alive stream closed"
    );
    let silent = reporter.renewal(42, None).unwrap_err();
    assert_eq!(
        silent.to_string(),
        "cannot reach etcd at 127.0.0.1:9: no answer to the lease keep-alive"
    );
    let denied = tonic::Status::permission_denied("no");
    let refused = reporter.renewal(42, Some(Err(etcd_client::Error::GRpcStatus(denied))));
    assert!(
        matches!(refused, Err(EtcdError::Refused { .. })),
        "{refused:?}"
    );
}

#[test]
fn the_lease_is_renewed_three_times_per_time_to_live() {
    assert_eq!(
        keep_alive_period(Duration::from_secs(3)),
        Duration::from_secs(1)
    );
    assert_eq!(
        keep_alive_period(Duration::from_secs(10)),
        Duration::from_nanos(3_333_333_333)
    );
}

#[test]
fn while_etcd_cannot_be_reached_the_reporter_retries_until_stopped() {
    // A loopback port that accepts each connection and closes it: etcd never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = listener.local_addr().unwrap().to_string();
    let (accepted, connections) = mpsc::channel();
    let acceptor = std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
            if accepted.send(()).is_err() {
                return;
            }
        }
    });
    let (_, reloader) = engine();
    let reporter = reporter(&reloader, &endpoint);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (stop, stopped) = watch::channel(false);
        let mut run = tokio::spawn(reporter.run(reloader.events(), stopped));
        // Three connections: the reporter tried, failed, backed off and tried again.
        let tried = tokio::task::spawn_blocking(move || {
            for n in 0..3 {
                if connections.recv_timeout(BOUND).is_err() {
                    return Err(n);
                }
            }
            Ok(connections)
        });
        let connections = tokio::select! {
            _ = &mut run => panic!("the reporter returned while etcd was unreachable, unstopped"),
            tried = tried => tried.unwrap().unwrap_or_else(|n| {
                panic!("{n} connections to the unreachable etcd within {BOUND:?}, not 3")
            }),
        };
        assert!(
            !run.is_finished(),
            "the reporter gave up before being stopped"
        );
        stop.send(true).unwrap();
        tokio::time::timeout(BOUND, run)
            .await
            .unwrap_or_else(|_| panic!("the reporter did not stop within {BOUND:?}"))
            .unwrap();
        // End the acceptor: it sees the receiver gone at its next connection.
        drop(connections);
    });
    let _ = std::net::TcpStream::connect(&endpoint);
    acceptor.join().unwrap();
}
