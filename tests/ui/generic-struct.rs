use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config<T> {
    #[reload(scope = "limits")]
    limit: T,
}

fn main() {}
