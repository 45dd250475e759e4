//! Unknown keys are errors (issue 14): a misspelt or misplaced key used to be dropped without a
//! word, and the daemon ran without its `api_token` that way.

use hotcfg::{FileSource, HotReload, Loader, ReloadResult, Reloader};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

/// A plain struct: its keys are not in the schema, but an unknown one is still found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Listen {
    host: String,
    port: u16,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Route {
    name: String,
    upstream: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(restart)]
    listen: Listen,
    #[reload(scope = "auth")]
    #[serde(default)]
    api_token: Option<String>,
    #[reload(nested)]
    #[serde(default)]
    routes: Vec<Route>,
}

/// The same configuration with a misspelt `api_token`, in each format, and the line it is on.
const FILES: [(&str, &str, usize); 3] = [
    (
        "c.toml",
        "api_tokn = \"t\"\n\n[listen]\nhost = \"h\"\nport = 1\n",
        1,
    ),
    (
        "c.json",
        "{\n  \"listen\": {\"host\": \"h\", \"port\": 1},\n  \"api_tokn\": \"t\"\n}\n",
        3,
    ),
    ("c.yaml", "listen:\n  host: h\n  port: 1\napi_tokn: t\n", 4),
];

#[test]
fn a_misspelt_key_is_an_error_with_its_line_and_the_closest_key() {
    for (name, text, line) in FILES {
        let sandbox = Sandbox::new();
        let path = sandbox.write(name, text);
        let err = Reloader::<Config>::builder(FileSource::new(&path))
            .build()
            .unwrap_err()
            .to_string();
        let expected = format!("{name}:{line}: `api_tokn`: unknown key, did you mean `api_token`?");
        assert!(err.contains(&expected), "{name}: {err}");
    }
}

#[test]
fn unknown_keys_in_plain_structs_and_list_elements_are_found() {
    let sandbox = Sandbox::new();
    let path = sandbox.write(
        "c.toml",
        "[listen]\nhost = \"h\"\nport = 1\nprot = 2\n\n[[routes]]\nname = \"a\"\nupstream = \"u\"\n\
         upstraem = \"v\"\n",
    );
    let err = Reloader::<Config>::builder(FileSource::new(&path))
        .build()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("c.toml:4: `listen.prot`: unknown key"),
        "{err}"
    );
    assert!(
        err.contains("`routes.0.upstraem`: unknown key, did you mean `upstream`?"),
        "{err}"
    );
}

#[test]
fn a_reload_with_an_unknown_key_changes_nothing() {
    let sandbox = Sandbox::new();
    let good = "api_token = \"t\"\n[listen]\nhost = \"h\"\nport = 1\n";
    let path = sandbox.write("c.toml", good);
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .on_apply("auth", |_| Ok(()))
        .build()
        .unwrap();
    std::fs::write(
        &path,
        good.replace("api_token = \"t\"", "api_token = \"u\"\ntoken = \"x\""),
    )
    .unwrap();
    let event = reloader.reload_now();
    let ReloadResult::Failed { error, .. } = &event.result else {
        panic!("expected a refusal: {event}");
    };
    assert!(
        error.to_string().contains("c.toml:2: `token`: unknown key"),
        "{error}"
    );
    assert_eq!(reloader.handle().load().api_token.as_deref(), Some("t"));
}

#[test]
fn a_config_can_opt_out() {
    let sandbox = Sandbox::new();
    let (name, text, _) = FILES[0];
    let path = sandbox.write(name, text);
    let reloader = Reloader::<Config>::builder(FileSource::new(&path))
        .loader(Loader::new().allow_unknown_keys())
        .build()
        .unwrap();
    assert_eq!(reloader.handle().load().api_token, None);
}
