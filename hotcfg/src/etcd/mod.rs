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
//!   backoff (with jitter) and, once reconnected, resumes the watch from the last revision it saw,
//!   so changes made meanwhile arrive in order. A reload asked for while etcd is down (SIGHUP, an
//!   admin command) fails and is recorded as such; the live configuration stays.
//! - **Compaction.** When the revision to resume from has been compacted away, the follower reads
//!   the key afresh and watches from there: the node converges on the newest value.
//! - **Ordering.** Each node handles revisions in etcd's order and never goes back to an older
//!   value: every reload does a linearizable read of the newest value, so changes that arrive
//!   during a reload coalesce (intermediate revisions may be skipped, never reordered). Nodes are
//!   independent: there is no fleet-wide atomic switch, and at a given moment nodes may run
//!   different revisions; their status keys tell which.
//! - **Bad values.** An invalid value (syntax, types, validation, a deleted key) is refused by
//!   every node, which keeps its configuration and reports the error; the next good value is
//!   applied.
//! - **Concurrent operators.** `push` writes only if the key is still at the revision its plan was
//!   made against; otherwise nothing is written and it says so.
//!
//! Network calls wait at most [`EtcdOptions::request`]; TLS and authentication are not supported
//! by this build.

mod client;
mod follower;
mod source;
mod status;

pub use client::{split_endpoints, Entry, EtcdClient, EtcdError, EtcdOptions, Listing, Swap};
pub use follower::{EtcdFollower, FollowerOptions, FollowerStats};
pub use source::EtcdSource;
pub use status::{FleetStatus, NodeResult, NodeStatus};
