use hotcfg::HotReload;

#[derive(Clone, Copy, HotReload)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
