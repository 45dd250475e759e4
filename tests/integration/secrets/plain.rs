//! `#[reload(secret)]` on plain types: no `Secret<T>` keeps its own errors quiet, so the engine's
//! parse errors must (`is_secret_key` in `engine/pipeline.rs`). Kills its mutants (cargo-mutants,
//! issue 22): replaced by `false`, `||` into `&&` and either `==` into `!=` in its path match.

use std::collections::BTreeMap;

use hotcfg::{Format, HotReload, MemorySource, Reloader};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Plain {
    #[reload(scope = "auth", secret)]
    pin: u64,
    #[reload(nested)]
    #[serde(default)]
    servers: BTreeMap<String, Server>,
    #[reload(scope = "limits")]
    max: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "servers")]
struct Server {
    url: String,
    #[reload(secret)]
    port_key: u64,
}

const QUOTED: &str = "plain-SIERRA-2w4e";

/// The error of building an engine on `text`.
fn refused(text: &str) -> String {
    let source = MemorySource::new("app.toml", Format::Toml, text);
    Reloader::<Plain>::builder(source)
        .build()
        .unwrap_err()
        .to_string()
}

#[test]
fn a_mistyped_plain_secret_field_is_refused_naming_it_without_quoting_it() {
    let err = refused(&format!("pin = \"{QUOTED}\"\nmax = 1\n"));
    assert!(err.contains("pin"), "names the field: {err}");
    assert!(!err.contains(QUOTED), "quotes the secret: {err}");
}

#[test]
fn a_mistyped_secret_inside_a_map_entry_is_refused_naming_it_without_quoting_it() {
    let err = refused(&format!(
        "pin = 1\nmax = 1\n[servers.a]\nurl = \"http://a\"\nport_key = \"{QUOTED}\"\n"
    ));
    assert!(err.contains("port_key"), "names the field: {err}");
    assert!(!err.contains(QUOTED), "quotes the secret: {err}");
}

/// The same mistake in a field that is not secret is quoted: what the redaction hides is the
/// secrets only.
#[test]
fn a_mistyped_plain_field_is_quoted() {
    let err = refused(&format!("pin = 1\nmax = \"{QUOTED}\"\n"));
    assert!(err.contains(QUOTED), "{err}");
    let err = refused("pin = 1\nmax = 1\n[servers.a]\nurl = 5\nport_key = 7\n");
    assert!(err.contains("servers.a.url"), "{err}");
}
