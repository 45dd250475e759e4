//! Integration tests of hotcfg.
mod daemon;
mod derive;
mod derive_props;
mod engine;
mod fleet;
mod watcher;
