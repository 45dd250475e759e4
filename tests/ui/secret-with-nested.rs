use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Auth {
    #[reload(scope = "auth", secret)]
    token: String,
    #[reload(scope = "auth")]
    user: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // Secrecy belongs to the nested struct's own fields.
    #[reload(nested, secret)]
    auth: Auth,
}

fn main() {}
