use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    max_concurrent: usize,
    // Not read from the file: a class means nothing here.
    #[serde(skip)]
    #[reload(scope = "limits")]
    started_at: u64,
}

fn main() {}
