use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

// `secret` marks fields; on the struct only `scope` or `restart` mean something.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
#[reload(scope = "auth", secret)]
struct Auth {
    token: String,
}

fn main() {}
