//! Integration tests of hotcfg.
mod derive;
mod derive_props;
mod engine;
