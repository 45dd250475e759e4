//! Integration tests of hotcfg.
mod engine;
