use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // `scopes` is not a key; the key is `scope`.
    #[reload(scopes = "limits")]
    max_concurrent: usize,
}

fn main() {}
