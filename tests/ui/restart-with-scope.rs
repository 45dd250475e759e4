use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // A field is hot (in a scope) or restart-only, not both.
    #[reload(scope = "limits", restart)]
    max_concurrent: usize,
}

fn main() {}
