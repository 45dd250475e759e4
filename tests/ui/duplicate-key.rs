use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // Each key once: the second `secret` is an error, not a no-op.
    #[reload(scope = "auth", secret)]
    #[reload(secret)]
    token: String,
}

fn main() {}
