use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

// No `PartialEq`: hotcfg cannot tell whether it changed.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Retry {
    attempts: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    retry: Retry,
}

impl PartialEq for Config {
    fn eq(&self, other: &Self) -> bool {
        self.retry.attempts == other.retry.attempts
    }
}

fn main() {}
