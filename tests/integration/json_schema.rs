//! A JSON Schema of the configuration for editors (issue 14): every field carries what a change
//! to it needs (`x-hotcfg-class`) and whether it is secret (`x-hotcfg-secret`), so a language
//! server can say which edits need a restart. Exported by the `schema` command.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hotcfg::cli::{Cli, Command};
use hotcfg::{HotReload, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A plain struct holding a secret: not in hotcfg's schema, but the secret is still marked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct HealthCheck {
    interval_ms: u64,
    auth_token: Option<Secret<String>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[reload(scope = "upstreams")]
struct Upstream {
    url: String,
    health: HealthCheck,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload, JsonSchema)]
#[reload(scope = "routing")]
struct Route {
    name: String,
    upstream: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct Tls {
    /// Certificate chain, PEM.
    #[reload(scope = "tls", watch)]
    cert: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload, JsonSchema)]
#[serde(rename_all = "kebab-case")]
struct Gateway {
    /// Addresses to listen on.
    #[reload(restart)]
    listeners: Vec<String>,
    #[reload(nested)]
    tls: Option<Tls>,
    #[reload(nested)]
    upstreams: BTreeMap<String, Upstream>,
    #[reload(nested, key = "name")]
    routes: Vec<Route>,
    #[reload(scope = "admin", secret)]
    admin_password: String,
}

fn at<'a>(schema: &'a Value, pointer: &str) -> &'a Value {
    schema
        .pointer(pointer)
        .unwrap_or_else(|| panic!("no {pointer} in {schema:#}"))
}

fn assert_marked(schema: &Value, pointer: &str, class: &str, secret: bool) {
    let node = at(schema, pointer);
    assert_eq!(node["x-hotcfg-class"], class, "{pointer}: {node:#}");
    assert_eq!(node["x-hotcfg-secret"], secret, "{pointer}: {node:#}");
}

#[test]
fn every_field_carries_its_class_and_secrecy() {
    let schema = hotcfg::json_schema::<Gateway>();
    assert_marked(&schema, "/properties/listeners", "restart", false);
    assert_eq!(
        at(&schema, "/properties/listeners/description"),
        "Addresses to listen on.\n\nChanging it needs a restart."
    );
    // An optional section: adding or removing it is its type's class, its fields their own.
    assert_eq!(
        at(&schema, "/properties/tls/description"),
        "Adding or removing it as a whole needs a restart."
    );
    let tls = at(&schema, "/properties/tls/properties/cert");
    assert_eq!(tls["x-hotcfg-class"], "scope:tls");
    assert_eq!(tls["x-hotcfg-watch"], true);
    // Map entries and list elements, once each.
    assert_marked(
        &schema,
        "/properties/upstreams/additionalProperties/properties/url",
        "scope:upstreams",
        false,
    );
    assert_marked(
        &schema,
        "/properties/routes/items/properties/upstream",
        "scope:routing",
        false,
    );
    assert_marked(&schema, "/properties/admin-password", "scope:admin", true);
    // A `Secret` inside a plain struct marks itself.
    let token = at(
        &schema,
        "/properties/upstreams/additionalProperties/properties/health/properties/auth-token",
    );
    assert_eq!(token["x-hotcfg-secret"], true, "{token:#}");
    assert_eq!(token["writeOnly"], true, "{token:#}");
    // Every field hotcfg lists got its class.
    for field in Gateway::schema() {
        let text = schema.to_string();
        let class = match field.class.scope() {
            Some(scope) => format!("\"x-hotcfg-class\":\"scope:{scope}\""),
            None => "\"x-hotcfg-class\":\"restart\"".to_string(),
        };
        assert!(text.contains(&class), "{}: {class} missing", field.path);
    }
}

#[test]
fn the_schema_command_prints_it() {
    let mut out = Vec::new();
    let code = Cli::<Gateway>::new()
        .with_json_schema()
        .run(&Command::Schema, &mut out);
    assert_eq!(code, hotcfg::cli::EXIT_OK);
    let printed: Value = serde_json::from_slice(&out).expect("the command prints JSON");
    assert_eq!(printed, hotcfg::json_schema::<Gateway>());
    assert_eq!(
        printed["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
}
