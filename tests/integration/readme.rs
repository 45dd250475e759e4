//! The README's code that is built elsewhere stays the same as the code that is built.

use std::path::Path;

fn read(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The lines between `// README: begin` and `// README: end` markers, each region without the
/// markers' indentation, regions separated by a blank line.
fn marked_regions(source: &str) -> String {
    let mut regions = Vec::new();
    let mut region: Option<(usize, Vec<&str>)> = None;
    for line in source.lines() {
        let indent = line.len() - line.trim_start().len();
        match (line.trim(), &mut region) {
            ("// README: begin", None) => region = Some((indent, Vec::new())),
            ("// README: end", Some((_, lines))) => {
                regions.push(lines.join("\n"));
                region = None;
            }
            (_, Some((indent, lines))) => lines.push(line.get(*indent..).unwrap_or("")),
            _ => {}
        }
    }
    assert!(region.is_none(), "a `// README: begin` without its end");
    regions.join("\n\n")
}

/// The README's `rust` block that follows `heading` (a bold paragraph heading).
fn readme_block(readme: &str, heading: &str) -> String {
    let after = readme
        .split_once(heading)
        .unwrap_or_else(|| panic!("the README has no {heading}"))
        .1;
    let block = after
        .split_once("```rust\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .unwrap_or_else(|| panic!("no rust block after {heading}"));
    block.0.to_string()
}

#[test]
fn the_readme_tokio_example_is_the_code_of_examples_tokio_service() {
    let example = marked_regions(&read("examples/tokio_service.rs"));
    assert!(example.contains("ConfigWatcher::spawn_on"), "{example}");
    let readme = readme_block(&read("README.md"), "**Async (tokio).**");
    assert_eq!(
        readme, example,
        "README's tokio example differs from the marked code of examples/tokio_service.rs"
    );
}
