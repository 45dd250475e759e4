//! Shared helpers for the hotcfg integration tests.
