//! Integration tests of hotcfg.
mod async_api;
mod audit_failure;
mod audit_trigger;
mod browser;
mod daemon;
mod daemon_probation;
mod derive;
mod derive_props;
mod durability;
mod engine;
mod environment;
#[cfg(feature = "etcd")]
mod fleet;
mod hostile;
mod http;
#[cfg(feature = "schemars")]
mod json_schema;
mod last_known_good;
mod lists;
mod locations;
mod plan_prepare;
mod probation;
mod probation_restart;
mod props;
mod readme;
mod reliability;
mod reloader_api;
mod revert;
mod rollback;
mod secrets;
mod startup;
mod unknown_keys;
mod watcher;
mod watcher_task;
