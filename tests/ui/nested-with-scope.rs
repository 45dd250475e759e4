use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Limits {
    #[reload(scope = "limits")]
    max_concurrent: usize,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // The nested struct classifies its own fields.
    #[reload(nested, scope = "limits")]
    limits: Limits,
}

fn main() {}
