//! The task daemon (being built).
fn main() {}
