use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Common {
    log_level: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // hotcfg must recurse into a flattened struct: it needs `#[reload(nested)]`.
    #[serde(flatten)]
    common: Common,
}

fn main() {}
