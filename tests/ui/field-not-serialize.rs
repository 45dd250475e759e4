use hotcfg::HotReload;
use serde::{Serialize, Serializer};

// No `Serialize`: hotcfg cannot show its old and new values.
#[derive(Clone, Debug, PartialEq)]
struct Retry {
    attempts: u32,
}

#[derive(Clone, Debug, PartialEq, HotReload)]
struct Config {
    #[reload(scope = "limits")]
    retry: Retry,
}

impl Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u32(self.retry.attempts)
    }
}

fn main() {}
