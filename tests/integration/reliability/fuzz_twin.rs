//! The fuzz target's twin: bytes through load, validate, diff and plan, as `fuzz/` does.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use crate::props::{self, env_number};

/// A valid configuration in each format (the first byte picks the format).
fn seeds() -> Vec<Vec<u8>> {
    let toml = hotcfg_tests::fuzz::LIVE.to_string();
    let json = r#"{"listen": "127.0.0.1:7000", "token": "t", "limits": {"max": 2, "queue": 3},
"templates": {"p": "x"}, "loops": {"a": {"iterations": 1, "template": "p"}},
"tls": {"cert": "c", "key": "k"}}"#;
    let yaml = "listen: 127.0.0.1:7000\nlimits: {max: 5, queue: 10}\ntemplates:\n  progress: x\nloops:\n  build: {iterations: 10, template: progress}\n";
    vec![
        [&[0u8][..], toml.as_bytes()].concat(),
        [&[100u8][..], toml.replace("max = 4", "max = 6").as_bytes()].concat(),
        [&[100u8][..], json.as_bytes()].concat(),
        [&[200u8][..], yaml.as_bytes()].concat(),
        [&[0u8][..], toml.replace("7000", "7001").as_bytes()].concat(),
    ]
}

/// Mutations of the seeds: bytes inserted, removed, duplicated, overwritten.
fn mutated() -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0usize..4,
        any::<usize>(),
        any::<usize>(),
        proptest::collection::vec(any::<u8>(), 0..8),
    );
    (0..seeds().len(), proptest::collection::vec(edit, 0..6)).prop_map(|(seed, edits)| {
        let mut data = seeds()[seed].clone();
        for (kind, at, len, bytes) in edits {
            let at = 1 + at % data.len().max(1);
            let at = at.min(data.len());
            let end = (at + len % 16).min(data.len());
            match kind {
                0 => {
                    data.splice(at..at, bytes);
                }
                1 => {
                    data.drain(at..end);
                }
                2 => {
                    let copy = data[at..end].to_vec();
                    data.splice(at..at, copy);
                }
                _ => {
                    for (i, byte) in bytes.into_iter().enumerate() {
                        if let Some(slot) = data.get_mut(at + i) {
                            *slot = byte;
                        }
                    }
                }
            }
        }
        data
    })
}

/// Structured hostile shapes: deep nesting, aliases, duplicates, long runs.
fn shaped() -> impl Strategy<Value = Vec<u8>> {
    (0u8..6, 1usize..200, any::<u8>()).prop_map(|(shape, n, format)| {
        let body = match shape {
            0 => format!("x = {}1{}", "[".repeat(n), "]".repeat(n)),
            1 => format!("{} = 1", vec!["k"; n].join(".")),
            2 => format!("x: {}1{}", "{a: ".repeat(n), "}".repeat(n)),
            3 => {
                let mut t = String::from("l0: &l0 [1,1,1]\n");
                for i in 1..(n % 12 + 1) {
                    t.push_str(&format!("l{i}: &l{i} [*l{p},*l{p},*l{p}]\n", p = i - 1));
                }
                t
            }
            4 => "limits = { max = 1, max = 2 }\n".repeat(n % 4 + 1),
            _ => format!("{{\"listen\": \"{}\"}}", "\\u0000".repeat(n)),
        };
        [&[format][..], body.as_bytes()].concat()
    })
}

#[test]
fn fuzz_twin_bytes_through_load_validate_diff_and_plan() {
    let started = Instant::now();
    let outcomes = Mutex::new(BTreeMap::<String, u32>::new());
    let check = |data: &[u8]| -> Result<(), TestCaseError> {
        let begun = Instant::now();
        let outcome = hotcfg_tests::fuzz::config_bytes(data);
        prop_assert!(
            begun.elapsed() < Duration::from_secs(5),
            "{:?} for {} bytes",
            begun.elapsed(),
            data.len()
        );
        *outcomes
            .lock()
            .unwrap()
            .entry(format!("{outcome:?}"))
            .or_default() += 1;
        Ok(())
    };
    // Everything the fuzzer keeps (its seed corpus, and any crash found and fixed) runs here too.
    let fuzz_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for dir in ["seeds", "regressions"] {
        if let Ok(entries) = std::fs::read_dir(fuzz_dir.join(dir)) {
            for entry in entries.flatten().filter(|e| e.file_name() != ".gitkeep") {
                check(&std::fs::read(entry.path()).unwrap()).unwrap();
            }
        }
    }
    let cases = env_number("HOTCFG_FUZZ_CASES", 300) as u32;
    for (name, strategy) in [
        (
            "bytes",
            proptest::collection::vec(any::<u8>(), 0..256).boxed(),
        ),
        ("mutated", mutated().boxed()),
        ("shaped", shaped().boxed()),
    ] {
        props::check(name, "HOTCFG_FUZZ_CASES", cases, &strategy, |data| {
            check(&data)
        });
    }
    let outcomes = outcomes.into_inner().unwrap();
    eprintln!("fuzz twin: {outcomes:?} in {:?}", started.elapsed());
    for reached in ["Invalid", "Apply", "Unchanged", "Reject", "NotUtf8"] {
        assert!(
            outcomes.contains_key(reached),
            "no input reached {reached}: {outcomes:?}"
        );
    }
}
