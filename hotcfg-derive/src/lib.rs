//! `#[derive(HotReload)]` for hotcfg.
use proc_macro::TokenStream;

/// Derives `hotcfg::HotReload`.
#[proc_macro_derive(HotReload, attributes(reload))]
pub fn derive_hot_reload(input: TokenStream) -> TokenStream {
    let _ = input;
    TokenStream::new()
}
