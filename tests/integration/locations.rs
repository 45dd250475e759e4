//! Errors about list elements are located (issue 14): a violation keyed `routes.1.upstream` got
//! no line from TOML `[[routes]]`, a line 7 off in JSON and the `routes:` line in YAML, and
//! `routes.upstream` "worked" by pointing at the first route.

use hotcfg::{FileSource, HotReload, ReloadResult, Reloader, Violations};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Route {
    name: String,
    upstream: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Gateway {
    #[reload(scope = "limits")]
    #[serde(default)]
    burst: u32,
    #[reload(nested)]
    routes: Vec<Route>,
}

/// How a validator spells the key of element `i`'s upstream.
type KeyOf = fn(usize) -> String;

/// Refuses every upstream that is not http, keyed as `key` spells element `i`.
fn refuse_non_http(key: KeyOf) -> impl Fn(&Gateway, &mut Violations) {
    move |config, v| {
        for (i, route) in config.routes.iter().enumerate() {
            v.check(
                route.upstream.starts_with("http"),
                key(i),
                "must be an http URL",
            );
        }
    }
}

/// The second route's upstream is bad; the line it is on.
const FILES: [(&str, &str, usize); 5] = [
    (
        "tables.toml",
        "burst = 1\n\n[[routes]]\nname = \"a\"\nupstream = \"http://a\"\n\n\
         [[routes]]\nname = \"b\"\nupstream = \"ftp://b\"\n",
        9,
    ),
    (
        "inline.toml",
        "routes = [\n  { name = \"a\", upstream = \"http://a\" },\n  \
         { name = \"b\", upstream = \"ftp://b\" },\n]\n",
        3,
    ),
    (
        "routes.json",
        "{\n  \"burst\": 1,\n  \"routes\": [\n    {\n      \"name\": \"a\",\n      \
         \"upstream\": \"http://a\"\n    },\n    {\n      \"name\": \"b\",\n      \
         \"upstream\": \"ftp://b\"\n    }\n  ]\n}\n",
        10,
    ),
    (
        "routes.yaml",
        "burst: 1\nroutes:\n  - name: a\n    upstream: http://a\n  - name: b\n    \
         upstream: ftp://b\n",
        6,
    ),
    (
        "flow.yaml",
        "routes: [{name: a, upstream: 'http://a'},\n  {name: b, upstream: 'ftp://b'}]\n",
        2,
    ),
];

#[test]
fn a_violation_in_a_list_element_names_its_line_in_each_format() {
    let spellings: [(&str, KeyOf); 2] = [
        ("routes.1.upstream", |i| format!("routes.{i}.upstream")),
        ("routes[1].upstream", |i| format!("routes[{i}].upstream")),
    ];
    for (spelled, key) in spellings {
        for (name, text, line) in FILES {
            let sandbox = Sandbox::new();
            let path = sandbox.write(name, text);
            let err = Reloader::<Gateway>::builder(FileSource::new(&path))
                .validator(refuse_non_http(key))
                .build()
                .unwrap_err()
                .to_string();
            let expected = format!("{name}:{line}: `{spelled}`: must be an http URL");
            assert!(
                err.contains(&expected),
                "{name}: expected {expected}, got {err}"
            );
        }
    }
}

#[test]
fn an_element_key_without_its_index_is_not_located_at_the_first_element() {
    let sandbox = Sandbox::new();
    let (name, text, _) = FILES[3];
    let path = sandbox.write(name, text);
    let err = Reloader::<Gateway>::builder(FileSource::new(&path))
        .validator(|_: &Gateway, v: &mut Violations| v.push("routes.upstream", "bad"))
        .build()
        .unwrap_err()
        .to_string();
    // No line: the key names no value in the file.
    assert!(
        err.contains(&format!("{name}: `routes.upstream`: bad")),
        "{err}"
    );
}

#[test]
fn the_diff_and_the_location_spell_an_element_alike() {
    let sandbox = Sandbox::new();
    let ok = FILES[0].1.replace("ftp://b", "http://b");
    let path = sandbox.write("gw.toml", &ok);
    let reloader = Reloader::<Gateway>::builder(FileSource::new(&path))
        .validator(refuse_non_http(|i| format!("routes.{i}.upstream")))
        .build()
        .unwrap();
    sandbox.write("gw.toml", &ok.replace("http://b", "http://c"));
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event:?}"
    );
    let paths: Vec<&str> = event.changes.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["routes.1.upstream"]);
    sandbox.write("gw.toml", &ok.replace("http://b", "ftp://c"));
    let event = reloader.reload_now();
    let ReloadResult::Failed { error, .. } = &event.result else {
        panic!("{event:?}")
    };
    assert!(
        error
            .to_string()
            .contains("gw.toml:9: `routes.1.upstream`: must be an http URL"),
        "{error}"
    );
}
