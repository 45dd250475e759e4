use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // `restart` is a class, not a scope name.
    #[reload(scope = "restart")]
    listen: String,
}

fn main() {}
