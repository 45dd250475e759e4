//! The environment overlay follows serde's names (issue 14): with a kebab-case configuration,
//! `GW_RATE_LIMITS__BURST` used to be dropped without a word (only `GW_RATE-LIMITS__BURST`, which
//! no shell can set, worked), and a reload after an environment change answered "unchanged".
//! Each test uses a prefix of its own: the environment is shared by the tests running at once.

use std::collections::BTreeMap;

use hotcfg::{FileSource, HotReload, Loader, ReloadResult, Reloader, Secret};
use hotcfg_tests::Sandbox;
use serde::{Deserialize, Serialize};

/// A plain struct: its fields are not in the schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Health {
    interval_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "kebab-case")]
#[reload(scope = "routing")]
struct Upstream {
    url: String,
    health: Health,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "kebab-case")]
#[reload(scope = "limits")]
struct RateLimits {
    requests_per_second: u32,
    burst: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[serde(rename_all = "kebab-case")]
struct Gateway {
    #[reload(nested)]
    rate_limits: RateLimits,
    #[reload(scope = "auth")]
    admin_password: Secret<String>,
    #[reload(nested)]
    upstreams: BTreeMap<String, Upstream>,
    #[reload(scope = "logging")]
    #[serde(rename = "LogLevel")]
    log_level: String,
}

const FILE: &str = "admin-password = \"file-secret\"\nLogLevel = \"info\"\n\n\
                    [rate-limits]\nrequests-per-second = 50\nburst = 100\n\n\
                    [upstreams.api-v1]\nurl = \"http://a\"\nhealth = { interval-ms = 500 }\n";

fn set(vars: &[(&str, &str)]) {
    for (name, value) in vars {
        std::env::set_var(name, value);
    }
}

/// A reloader of [`FILE`] with the overlay of `prefix`, and the directory holding the file.
fn build(
    prefix: &str,
    loader: Loader<Gateway>,
) -> Result<(Sandbox, Reloader<Gateway>), hotcfg::BuildError> {
    let sandbox = Sandbox::new();
    let path = sandbox.write("gw.toml", FILE);
    let reloader = Reloader::<Gateway>::builder(FileSource::new(&path))
        .loader(loader.env_prefix(prefix))
        .build()?;
    Ok((sandbox, reloader))
}

#[test]
fn variables_set_renamed_keys_whatever_their_spelling() {
    set(&[
        ("GWA_RATE_LIMITS__BURST", "777"),
        ("GWA_ADMIN_PASSWORD", "env-secret"),
        ("gwa_loglevel", "debug"),
        ("GWA_UPSTREAMS__API_V1__HEALTH__INTERVAL_MS", "250"),
        ("GWA_UPSTREAMS__API_V2__URL", "http://b"),
        ("GWA_UPSTREAMS__API_V2__HEALTH", "{interval-ms=1}"),
    ]);
    let (_sandbox, reloader) = build("GWA_", Loader::new()).unwrap();
    let live = reloader.handle().snapshot();
    assert_eq!(live.rate_limits.burst, 777);
    assert_eq!(live.rate_limits.requests_per_second, 50);
    assert!(live.admin_password.matches("env-secret"));
    assert_eq!(live.log_level, "debug");
    // A map key the file has (`api-v1`), and a field of a plain struct under it.
    assert_eq!(live.upstreams["api-v1"].health.interval_ms, 250);
    // A map key the file does not have is taken in lower case.
    assert_eq!(live.upstreams["api_v2"].url, "http://b");
}

#[test]
fn a_variable_naming_no_field_is_refused_by_its_name() {
    set(&[
        ("GWB_RATE_LIMITS__BRUST", "5"),
        ("GWB_RATE_LIMITS__BURST", "6"),
    ]);
    let err = build("GWB_", Loader::new()).unwrap_err().to_string();
    assert!(
        err.contains(
            "environment (GWB_*): `GWB_RATE_LIMITS__BRUST`: names no field, did you mean \
             `GWB_RATE_LIMITS__BURST`?"
        ),
        "{err}"
    );
    // Under a plain struct (not in the schema): refused as an unknown key, by the variable.
    set(&[("GWC_UPSTREAMS__API_V1__HEALTH__TIMEOUT", "1")]);
    let err = build("GWC_", Loader::new()).unwrap_err().to_string();
    assert!(
        err.contains("environment (GWC_*): `GWC_UPSTREAMS__API_V1__HEALTH__TIMEOUT`: unknown key"),
        "{err}"
    );
    // A value of the wrong type names the variable too, and never quotes a secret.
    set(&[("GWD_RATE_LIMITS__BURST", "lots")]);
    let err = build("GWD_", Loader::new()).unwrap_err().to_string();
    assert!(
        err.contains("environment (GWD_*): `GWD_RATE_LIMITS__BURST`: invalid type"),
        "{err}"
    );
}

#[test]
fn variables_naming_no_field_can_be_ignored() {
    set(&[
        ("GWE_HOME", "/somewhere"),
        ("GWE_UPSTREAMS__API_V1__HEALTH__TIMEOUT", "1"),
        ("GWE_RATE_LIMITS__BURST", "9"),
    ]);
    let (_sandbox, reloader) = build("GWE_", Loader::new().ignore_unmatched_env()).unwrap();
    assert_eq!(reloader.handle().load().rate_limits.burst, 9);
}

#[test]
fn a_reload_after_an_environment_change_applies_it() {
    set(&[("GWF_RATE_LIMITS__BURST", "1")]);
    let (_sandbox, reloader) = build("GWF_", Loader::new()).unwrap();
    assert!(matches!(
        reloader.reload_now().result,
        ReloadResult::Unchanged
    ));
    // Nothing new to report: the startup event already said this content is live.
    assert_eq!(reloader.history().len(), 1);
    set(&[("GWF_RATE_LIMITS__BURST", "2")]);
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event:?}"
    );
    let changed: Vec<String> = event.changes.iter().map(|c| c.to_string()).collect();
    assert_eq!(changed, ["rate-limits.burst [limits]: 1 -> 2"]);
    assert_eq!(reloader.handle().load().rate_limits.burst, 2);
    std::env::remove_var("GWF_RATE_LIMITS__BURST");
    let event = reloader.reload_now();
    assert!(
        matches!(event.result, ReloadResult::Applied { .. }),
        "{event:?}"
    );
    assert_eq!(reloader.handle().load().rate_limits.burst, 100);
}
