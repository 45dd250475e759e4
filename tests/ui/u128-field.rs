use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

// figment cannot load 128-bit integers: refused at compile time rather than at every load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    max_bytes: u128,
    #[reload(restart)]
    offsets: Option<Vec<i128>>,
}

fn main() {}
