use std::collections::VecDeque;

use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "routing")]
struct Route {
    upstream: String,
}

// `Route` derives `HotReload`, but a `VecDeque` of it is not a container hotcfg recurses into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(nested)]
    routes: VecDeque<Route>,
}

fn main() {}
