use std::path::PathBuf;

use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Templates {
    #[reload(scope = "templates", watch)]
    dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // `watch` belongs to the nested struct's own path fields.
    #[reload(nested, watch)]
    templates: Templates,
}

fn main() {}
