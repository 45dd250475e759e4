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
//! - **Starting while etcd is down.** By default a node that cannot read its key at start does
//!   not start. With [`ReloaderBuilder::last_known_good`](crate::ReloaderBuilder::last_known_good)
//!   (and an audit log) it starts from the newest version its audit log says it applied for this
//!   key (its own override included, not another node's; a rollout's candidate it ran counts),
//!   that probation never reverted, whose snapshot verifies; today's validation still judges it.
//!   It is *stale* ([`Reloader::stale`](crate::Reloader::stale), [`NodeStatus::stale`], the
//!   `hotcfg_config_stale` gauge, `stale: ...` in `fleet-status`, never counted as converged:
//!   its report names no revision) until the follower's first read answers, which applies the
//!   key's value or finds it unchanged (recorded either way). Only an unreachable etcd allows it:
//!   a key that does not exist or a refused login still fails. Without a usable version the
//!   start fails with the read's error and why none could be used (none recorded, another key's
//!   only, a snapshot missing or corrupt, naming the file, another node's override, refused
//!   now).
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
//! ignored by nodes. A revert ([`Reloader::revert_to`](crate::Reloader::revert_to)) writes the
//! old value back with its own note (the current user, `revert to generation N`) in the same
//! compare-and-swap.
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
//! ## Staged rollouts
//!
//! `push --waves 1,25%,100% FILE` ([`Rollout`]) sends a candidate value to the fleet wave by
//! wave instead of to every node at once; each wave must apply it and stay healthy through its
//! probation before the next is admitted, and any refusal, revert or timeout halts the rollout
//! and returns its nodes to the stable value. `fleet-status` shows its progress
//! ([`RolloutProgress`]).
//!
//! ### Design
//!
//! A rollout of the key `K` is two keys beside it, written by the pusher ([`Rollout`]) and read by
//! every node:
//!
//! - `K/rollout/candidate`: the value rolled out. Its mod revision (the *candidate revision*)
//!   names it: a node that runs it reports that revision.
//! - `K/rollout`: the state, JSON ([`RolloutState`]): an id, the *stable revision* (the mod
//!   revision of `K` the rollout was planned against), the candidate's SHA-256, the waves (node
//!   ids, fixed at start from the nodes reporting under the status prefix), the current wave, the
//!   phase (`running`, `halted`, `aborted`), who and why ([`ChangeNote`](crate::ChangeNote)), and after a halt why
//!   and each node's outcome.
//!
//! A node takes part when its source names it ([`EtcdSource::for_node`]):
//! it reads `K`, its override and both rollout keys in one transaction of reads, and runs the
//! candidate **iff** the rollout is running and the node is in the current wave or an earlier one
//! (it is *admitted*); otherwise it runs `K` (the stable value). Its override still layers on
//! top. Its follower watches every key that starts with `K`, so any write of the rollout state
//! makes it read again: admitted, it takes the candidate; no longer admitted, it returns to the
//! stable value. A node that re-reads the same bytes records nothing (no new generation). A node
//! returning to the stable value makes a change like any other: with probation, it gets a window
//! too.
//!
//! The pusher ([`Rollout::start`], `push --waves 1,25%,100%`):
//!
//! 1. checks and plans the file as any push, then creates both keys in one transaction that
//!    requires `K` still at the stable revision and no running rollout: of two pushers, one
//!    starts, the other is refused; the first wave is admitted by that write;
//! 2. waits for every node of the wave to report the candidate revision applied (or unchanged)
//!    and, on a node with probation, its probation passed for that revision;
//! 3. any refusal (a NACK: the node's validation or a handler refused the candidate), a probation
//!    revert, or no such report within the wave timeout **halts** the rollout: it writes the
//!    phase `halted` with each node's outcome, so every admitted node returns to the stable
//!    value, and `push` exits non-zero with a table (node, wave, result, reason);
//! 4. otherwise it admits the next wave (a write of the state, guarded by its mod revision);
//! 5. after the last wave, one transaction (guarded by the stable revision and the state's mod
//!    revision) writes the candidate as `K`'s value with its note and deletes both rollout keys.
//!    Every node then reads `K`: the same content as the candidate it runs, so the reload finds it
//!    unchanged (reported as `unchanged` at `K`'s new revision; no handler runs).
//!
//! ### Guarantees
//!
//! - **What each node runs.** At every moment a node runs the stable value, or the candidate if
//!   it is admitted and the rollout running, each layered with its override; never a third value.
//!   Nodes move when they see the write (etcd's order); between the write and their reload they
//!   run what they ran before, as for any change.
//! - **The pusher dies mid-rollout.** The state stays in etcd: admitted nodes keep the candidate,
//!   the others the stable value, until another pusher acts. `push --resume` (by anyone)
//!   continues from the current wave (its timeout starts again); `push --abort` writes the phase
//!   `aborted`, returning admitted nodes to the stable value. While a rollout runs, a plain push
//!   of `K` is refused, naming both options; a plain push after a halted or aborted rollout
//!   replaces it (and deletes its keys in the same transaction).
//! - **etcd restarts.** Nothing of a rollout is held in memory only: nodes reconnect and read
//!   the keys again; a pusher waiting on a wave retries its reads until the wave times out. A
//!   write the pusher cannot make (the next wave, the halt, the end) ends `push` with exit 5 and
//!   leaves the rollout as it was, to resume or abort.
//! - **A node's own failures.** A node that cannot read etcd keeps what it runs; the pusher
//!   counts it as waiting, so a wave cannot pass without it.
//! - **Membership.** The node set is fixed at start: a node that starts later runs the stable
//!   value until the rollout is done; a node that stops during its wave halts the rollout by
//!   timeout. A node whose source does not name it does not take part (it stays on the stable
//!   value and its wave times out): name every node.
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
