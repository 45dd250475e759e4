use std::collections::BTreeMap;

use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

// Derives the serde traits but not `HotReload`: it cannot be `nested`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct LoopConfig {
    max_iterations: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(nested)]
    loops: BTreeMap<String, LoopConfig>,
}

fn main() {}
