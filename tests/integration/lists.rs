//! Issue 14's derive items: `#[reload(nested)]` on `Vec`, `Option<Vec>` and `Box`, elements
//! matched by position or by a key field; non-finite floats; `watch` on optional lists of
//! paths; `redacted_json` on what a handle gives.

use std::path::PathBuf;

use hotcfg::{ChangeKind, Class, FileSource, HotReload, Reloader};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Route {
    name: String,
    upstream: String,
    #[reload(restart)]
    #[serde(default)]
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "tls")]
struct Tls {
    #[reload(watch)]
    #[serde(default)]
    ca_chain: Option<Vec<PathBuf>>,
    #[reload(watch)]
    #[serde(default)]
    client_ca: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Gateway {
    /// Matched by position.
    #[reload(nested)]
    #[serde(default)]
    routes: Vec<Route>,
    /// Matched by name.
    #[reload(nested, key = "name")]
    #[serde(default)]
    named: Vec<Route>,
    #[reload(nested, key = "name")]
    #[serde(default)]
    fallback: Option<Vec<Route>>,
    #[reload(nested)]
    tls: Box<Tls>,
    #[reload(scope = "limits")]
    #[serde(default)]
    ratio: f64,
}

fn route(name: &str, upstream: &str) -> Route {
    Route {
        name: name.into(),
        upstream: upstream.into(),
        port: 80,
    }
}

fn gateway() -> Gateway {
    Gateway {
        routes: vec![route("a", "http://a"), route("b", "http://b")],
        named: vec![route("a", "http://a"), route("b", "http://b")],
        fallback: None,
        tls: Box::new(Tls {
            ca_chain: None,
            client_ca: None,
        }),
        ratio: 0.5,
    }
}

#[test]
fn vec_elements_are_diffed_by_position() {
    let old = gateway();
    let mut new = old.clone();
    new.routes[1].upstream = "http://b2".into();
    new.routes.push(route("c", "http://c"));
    assert_eq!(
        old.diff(&new).to_string(),
        "routes.1.upstream [routing]: \"http://b\" -> \"http://b2\"\n\
         routes.2 [routing]: added {\"name\":\"c\",\"upstream\":\"http://c\",\"port\":80}"
    );
    let back = new.diff(&old);
    assert_eq!(back.changes()[1].path, "routes.2");
    assert_eq!(back.changes()[1].kind, ChangeKind::Removed);
}

#[test]
fn keyed_elements_are_matched_by_their_key() {
    let old = gateway();
    let mut new = old.clone();
    new.named.insert(0, route("first", "http://f"));
    new.named[2].upstream = "http://b2".into();
    let diff = old.diff(&new);
    assert_eq!(
        diff.to_string(),
        "named.b.upstream [routing]: \"http://b\" -> \"http://b2\"\n\
         named.first [routing]: added {\"name\":\"first\",\"upstream\":\"http://f\",\"port\":80}"
    );
    // By position the same edit changes every element.
    let mut by_position = old.clone();
    by_position.routes.insert(0, route("first", "http://f"));
    assert_eq!(
        old.diff(&by_position).len(),
        5,
        "{}",
        old.diff(&by_position)
    );
}

#[test]
fn optional_lists_appear_whole_and_diff_by_key() {
    let old = gateway();
    let mut new = old.clone();
    new.fallback = Some(vec![route("z", "http://z")]);
    let diff = old.diff(&new);
    assert_eq!(diff.len(), 1);
    assert_eq!(diff.changes()[0].path, "fallback");
    assert_eq!(diff.changes()[0].kind, ChangeKind::Added);
    let mut newer = new.clone();
    newer.fallback.as_mut().unwrap()[0].port = 81;
    assert_eq!(
        new.diff(&newer).to_string(),
        "fallback.z.port [restart]: 80 -> 81"
    );
}

#[test]
fn lists_merge_hot_fields_and_keep_restart_ones() {
    let old = gateway();
    let mut new = old.clone();
    new.named.reverse();
    new.named[0].upstream = "http://b2".into();
    new.named[0].port = 8080;
    let merged = old.merge_hot(&new);
    // New order and hot values, the running port.
    assert_eq!(merged.named[0].name, "b");
    assert_eq!(merged.named[0].upstream, "http://b2");
    assert_eq!(merged.named[0].port, 80);
    assert_eq!(merged.named.len(), 2);
}

#[test]
fn boxed_sections_nest_like_the_section() {
    let old = gateway();
    let mut new = old.clone();
    new.tls.client_ca = Some("ca.pem".into());
    assert_eq!(
        old.diff(&new).to_string(),
        "tls.client_ca [tls]: null -> \"ca.pem\""
    );
}

#[test]
fn schema_lists_elements_as_star() {
    let rows: Vec<(String, Class)> = Gateway::schema()
        .iter()
        .map(|f| (f.path.clone(), f.class))
        .collect();
    for path in [
        "routes.*",
        "routes.*.upstream",
        "named.*.port",
        "fallback.*.name",
        "tls.ca_chain",
    ] {
        assert!(rows.iter().any(|(p, _)| p == path), "{path} in {rows:?}");
    }
}

#[test]
fn an_unchanged_nan_is_no_change_and_a_nan_renders_as_nan() {
    let mut old = gateway();
    old.ratio = f64::NAN;
    let new = old.clone();
    assert!(old.diff(&new).is_empty(), "{}", old.diff(&new));
    let mut finite = old.clone();
    finite.ratio = 1.5;
    assert_eq!(old.diff(&finite).to_string(), "ratio [limits]: NaN -> 1.5");
    let mut infinite = old.clone();
    infinite.ratio = f64::NEG_INFINITY;
    assert_eq!(
        finite.diff(&infinite).to_string(),
        "ratio [limits]: 1.5 -> -inf"
    );
}

#[test]
fn watch_follows_optional_lists_of_paths() {
    let mut config = gateway();
    config.tls.ca_chain = Some(vec!["root.pem".into(), "mid.pem".into()]);
    config.tls.client_ca = Some("client.pem".into());
    let files: Vec<(String, PathBuf)> = config
        .watched_files()
        .into_iter()
        .map(|w| (w.field, w.file))
        .collect();
    assert_eq!(
        files,
        [
            ("tls.ca_chain".to_string(), PathBuf::from("root.pem")),
            ("tls.ca_chain".to_string(), PathBuf::from("mid.pem")),
            ("tls.client_ca".to_string(), PathBuf::from("client.pem")),
        ]
    );
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Users {
    #[reload(nested, key = "name")]
    users: Vec<User>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "auth")]
struct User {
    name: String,
    #[reload(secret)]
    password: String,
}

#[test]
fn redacted_json_takes_what_a_handle_gives_and_redacts_list_elements() {
    let sandbox = Sandbox::new();
    let path = sandbox.write(
        "users.toml",
        "[[users]]\nname = \"ann\"\npassword = \"pw-ROMEO-1\"\n",
    );
    let reloader = Reloader::<Users>::builder(FileSource::new(&path))
        .build()
        .unwrap();
    let handle = reloader.handle();
    for shown in [
        hotcfg::redacted_json(&handle.load()),
        hotcfg::redacted_json(&*handle.load()),
        hotcfg::redacted_json(&handle.snapshot()),
        hotcfg::redacted_json(handle.load().config()),
    ] {
        assert_eq!(shown["users"][0]["password"], "<redacted>", "{shown}");
        assert_eq!(shown["users"][0]["name"], "ann");
    }
}
