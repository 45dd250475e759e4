use std::collections::BTreeMap;

use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Route {
    name: String,
}

// A map's entries are matched by the map's own keys: `key` is for lists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(nested, key = "name")]
    routes: BTreeMap<String, Route>,
}

fn main() {}
