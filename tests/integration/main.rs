//! Integration tests of hotcfg.
