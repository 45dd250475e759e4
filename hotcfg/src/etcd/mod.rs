//! Fleets: configuration from etcd, with every node's reload result reported back (feature
//! `etcd`).
//!
//! One machine reads its configuration from a file; a fleet reads it from etcd. Each node runs an
//! ordinary [`Reloader`](crate::Reloader) on an [`EtcdSource`] and an [`EtcdFollower`]:
//!
//! 1. at start the follower reads the key, then watches it from the revision read, so no write in
//!    between is missed;
//! 2. every change triggers a reload ([`Trigger::Remote`](crate::Trigger::Remote)); the engine
//!    validates, diffs, applies or refuses exactly as for a file;
//! 3. the node writes its result for that revision as a JSON [`NodeStatus`] under
//!    `<key>/status/<node id>`, bound to a lease it keeps alive: applied, unchanged, rejected
//!    (with the reason) or failed (with the error), the pending-restart settings, its
//!    generation. A node that dies leaves the status view when its lease expires.
//!
//! Operators write with the `push` command of [`cli`](crate::cli) (the same check and plan as
//! for a file, against the value in etcd, then a compare-and-swap on the revision planned
//! against) and read [`FleetStatus`] with `fleet-status`.
//!
//! ```no_run
//! use std::time::Duration;
//! use hotcfg::etcd::{EtcdClient, EtcdFollower, EtcdSource, FleetStatus, FollowerOptions};
//! use hotcfg::{HotReload, Reloader};
//!
//! #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
//! struct Config {
//!     /// Moving it needs a restart.
//!     #[reload(restart)]
//!     listen: String,
//!     /// Applied live.
//!     #[reload(scope = "workers")]
//!     workers: usize,
//! }
//!
//! let client = EtcdClient::new(["127.0.0.1:2379"])?;
//! let source = EtcdSource::new(client.clone(), "apps/billing/config.toml");
//! let reloader = Reloader::<Config>::builder(source.clone())
//!     .on_apply("workers", |cx| { println!("workers -> {}", cx.new.workers); Ok(()) })
//!     .build()?;
//! let follower = EtcdFollower::start(&reloader, &source, FollowerOptions::new("billing-1"));
//!
//! // Elsewhere, an operator's view of the fleet:
//! let fleet = FleetStatus::read(&client, source.key(), &source.default_status_prefix())?;
//! println!("{fleet}");
//! # drop(follower);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Guarantees
//!
//! - **etcd down or unreachable.** A node keeps serving its live configuration: an unreachable
//!   store is never a reason to drop, reset or reload it. The follower retries with exponential
//!   backoff (jitter below each step; no delay above the cap, 5 s by default) and, once
//!   reconnected, resumes the watch from the last revision it saw, so changes made meanwhile
//!   arrive in order. The delays start again from the shortest only once a new watch has
//!   delivered and handled a response (or stayed up for the cap). A reload asked for while etcd
//!   is down (SIGHUP, an admin command) fails and is recorded as such; the live configuration
//!   stays.
//! - **What a node reports while its watch is down.** Every status report carries the watch's
//!   [`WatchHealth`]: `watching`, `reconnecting` since when with the last error (etcd
//!   unreachable, a refused watch, a response too large), or `paused`; so do the metrics
//!   ([`ETCD_WATCHING`], [`ETCD_WATCH_STATE_SINCE_SECONDS`], [`ETCD_WATCH_FAILURES_TOTAL`],
//!   [`ETCD_REVISION`]). The report is rewritten when the state changes and etcd can be written
//!   (while etcd is unreachable, nothing can be: the report keeps its last content until its
//!   lease expires). [`FleetStatus`] never counts a node that is not watching as converged,
//!   whatever revision it runs: it would miss the next change.
//! - **Size limits.** etcd refuses a value above its `--max-request-bytes` (1.5 MiB by default).
//!   The client accepts responses up to [`EtcdOptions::max_response`] (64 MiB by default, not
//!   gRPC's 4 MiB) and asks for watch responses in fragments, so a node that missed any amount
//!   of changes catches up; a prefix read carries all of a prefix's values in one response, so
//!   the limit bounds their total. A catch-up that is still too large is not asked for again:
//!   the follower reads the newest value afresh instead. A read that is too large is an
//!   [`EtcdError::TooLarge`] naming both sizes; the engine also refuses any single value above
//!   [`EtcdSource::max_bytes`] (4 MiB by default).
//! - **Compaction.** When the revision to resume from has been compacted away, the follower reads
//!   the key afresh and watches from there: the node converges on the newest value.
//! - **Ordering.** Each node handles revisions in etcd's order and never goes back to an older
//!   value: every reload does a linearizable read of the newest value, so changes that arrive
//!   during a reload, or a backlog of them after a reconnection, coalesce into one reload
//!   (intermediate revisions may be skipped, never reordered; one already covered by a read is
//!   not read again). Nodes are independent: there is no fleet-wide atomic switch, and at a given
//!   moment nodes may run different revisions; their status keys tell which.
//! - **Status upkeep.** A node's status key is bound to its lease: it disappears at most the
//!   lease's time to live after the node dies. A report deleted while the node lives is written
//!   again at once, and a lease that expired while etcd was up (the node could not renew it in
//!   time) is reported as that, and replaced.
//! - **Membership.** `fleet-status` (and [`FleetStatus::expecting`]) can be told which nodes,
//!   or how many, should report ([`Expected`]): a node that is missing (never started, crashed,
//!   or paused long enough for its lease to expire) is then listed as missing and the fleet is
//!   not converged. Without it, the fleet is whoever reports.
//! - **Bad values.** An invalid value (syntax, types, validation, a deleted key) is refused by
//!   every node, which keeps its configuration and reports the error; the next good value is
//!   applied.
//! - **Concurrent operators.** `push` writes only if the key is still at the revision its plan was
//!   made against; otherwise nothing is written and it says so.
//!
//! Network calls wait at most [`EtcdOptions::request`].
//!
//! ## Who and why
//!
//! `push --reason TEXT [--author NAME]` ([`PreparedPush::with_change`]) writes a
//! [`ChangeNote`](crate::ChangeNote) (author, default `USER@HOST`, and reason) as JSON under
//! `<key>/change` in the same transaction as the value, so both have the same mod revision. A
//! node reads the note with the value (one transaction of reads) and keeps it only when the
//! revisions match: a value written by other means (`etcdctl put`) has no author rather than the
//! previous push's. The note is in the read's [`SourceIdentity::change`](crate::SourceIdentity),
//! so it is in every node's audit record (`"source": {..., "change": {"author", "reason"}}`), in
//! its [`NodeStatus::change`], and `fleet-status` shows the key's current one in its first line.
//! An author or reason longer than 1 KiB or holding control characters is refused by `push`, and
//! ignored by nodes.
//!
//! ## Per-node overrides
//!
//! A node started with [`EtcdSource::node_override`] layers its own key, `<key>/nodes/<node id>`,
//! over the shared value, through the same loader and validation as a file's overlay: say, the one
//! node that listens elsewhere. `push --node ID FILE` ([`PreparedPush::prepare_for_node`]) checks
//! FILE merged over the shared value and plans against what that node reads now. The follower
//! then watches every key that starts with the key and ignores all but the key and its own
//! override (status reports of other nodes wake it without a reload). A node with an override
//! reports the newer of the two revisions; `fleet-status` lists the nodes with an override and
//! counts such a node current when it runs that revision. Overrides are for a key, not a prefix.
//! Inside a prefix, a key below another key (`<key>/change`, `<key>/nodes/...`) is that key's,
//! and is not read as a fragment.
//!
//! ## A secured etcd
//!
//! [`EtcdClient::with_security`] takes an [`EtcdSecurity`]: [`EtcdTls`] (the CA that signed
//! etcd's certificate, and a client certificate for an etcd started with `--client-cert-auth`)
//! and/or a user and password (etcd's `auth enable`), both through `etcd-client`'s own support
//! (rustls on ring; only the CA given is trusted, never the system's roots). The operator
//! commands and the task daemon take the same as flags ([`cli::EtcdAccess`](crate::cli::EtcdAccess)).
//!
//! - With TLS, endpoints are `https://host:port` or `host:port`; an `http://` endpoint with TLS,
//!   or an `https://` one without it, is an [`EtcdError::Setup`] before anything connects.
//! - A handshake that fails is [`EtcdError::Unreachable`] (the follower keeps retrying: a
//!   certificate may be renewed), its message saying what the failure means: etcd's certificate
//!   not signed by the CA given, not naming the endpoint, expired; etcd closing the connection to
//!   a client without a certificate.
//! - A wrong user or password is [`EtcdError::Refused`] (`etcd refused the user name or password
//!   (...)`), and so is a missing one when etcd requires authentication. The client renews its
//!   token when etcd expires it (etcd's `--auth-token-ttl`, 5 minutes by default).

mod backoff;
mod beside;
mod client;
mod fleet_table;
mod follow;
mod follower;
mod health;
mod node_probation;
mod push;
mod reporter;
mod rollout;
mod rollout_run;
mod source;
mod status;

pub use client::{
    split_endpoints, Entry, EtcdClient, EtcdError, EtcdOptions, EtcdSecurity, EtcdTls, Listing,
    Swap, DEFAULT_MAX_RESPONSE_BYTES,
};
pub use follower::{EtcdFollower, FollowerOptions, FollowerStats};
pub use health::{
    WatchHealth, WatchState, ETCD_REVISION, ETCD_WATCHING, ETCD_WATCH_FAILURES_TOTAL,
    ETCD_WATCH_STATE_SINCE_SECONDS,
};
pub use node_probation::NodeProbation;
pub use push::{PreparedPush, PushError};
pub use rollout::{
    NodeOutcome, Rollout, RolloutOutcome, RolloutPhase, RolloutProgress, RolloutState, WaveSize,
};
pub use source::EtcdSource;
pub use status::{Expected, FleetStatus, NodeResult, NodeStatus};
