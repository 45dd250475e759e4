use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Daemon {
    listen: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // The nested struct classifies its own fields.
    #[reload(restart, nested)]
    daemon: Daemon,
}

fn main() {}
