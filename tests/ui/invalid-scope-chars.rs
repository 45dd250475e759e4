use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // Scope names are lowercase: `[a-z0-9_-]`.
    #[reload(scope = "Rate Limits")]
    max_concurrent: usize,
}

fn main() {}
