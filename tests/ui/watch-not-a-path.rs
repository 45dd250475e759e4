use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    // A `String` is not a path: use `PathBuf`.
    #[reload(scope = "templates", watch)]
    template_dir: String,
}

fn main() {}
