use hotcfg::HotReload;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, HotReload)]
enum Mode {
    Fast,
    Careful,
}

fn main() {}
