//! Compile-fail cases: each `tests/ui/*.rs` is a misuse of `#[derive(HotReload)]` and its
//! `.stderr` the error users see.
#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
