use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

// Three mistakes, three errors in one build, and nothing else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "Limits")]
    max_concurrent: usize,
    #[reload(restart, restart)]
    listen: String,
    #[reload(hot)]
    poll_ms: u64,
}

fn main() {
    // The derive still emits an impl, so using the type adds no errors of its own.
    let _ = Config::schema();
}
