//! Shared pieces of the hotcfg examples.
