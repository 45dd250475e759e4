//! Code generation. Generated code names only `::hotcfg::__private::...`, `::core` and `::std`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{DeriveInput, Type};

use crate::ast::{Class, Container, Field, Kind};
use crate::check;
use crate::ctxt::Ctxt;

/// `#[derive(HotReload)]`: the impl, or every error found plus a stub impl.
pub fn derive(input: &DeriveInput) -> TokenStream {
    let cx = Ctxt::new();
    let cont = Container::from_ast(&cx, input);
    if let Some(cont) = &cont {
        check::check(&cx, cont);
    }
    match (cx.check(), cont) {
        (Ok(()), Some(cont)) => impl_hot_reload(&cont),
        (Err(errors), _) => {
            let mut out: TokenStream = errors.iter().map(syn::Error::to_compile_error).collect();
            out.extend(stub(input));
            out
        }
        (Ok(()), None) => unreachable!("a non-struct input always records an error"),
    }
}

/// A field with everything codegen needs.
struct Gen<'a> {
    field: &'a Field<'a>,
    kind: Kind,
    /// The path segment: the key in the file.
    segment: String,
}

fn impl_hot_reload(cont: &Container<'_>) -> TokenStream {
    let ident = cont.ident;
    let class = class_tokens(&cont.class());
    let fields: Vec<Gen<'_>> = cont
        .fields
        .iter()
        .map(|field| Gen {
            field,
            kind: field.kind(cont),
            segment: field.segment(cont),
        })
        .collect();
    let diffs = fields.iter().map(diff_field);
    let schemas = fields.iter().map(schema_field);
    let merges = fields.iter().map(merge_field);
    let watches = fields.iter().map(watch_field);
    quote! {
        #[automatically_derived]
        #[allow(unused_variables)]
        impl ::hotcfg::__private::HotReload for #ident {
            const CLASS: ::hotcfg::__private::Class = #class;

            fn diff_into(
                &self,
                new: &Self,
                prefix: &::hotcfg::__private::FieldPath<'_>,
                out: &mut ::std::vec::Vec<::hotcfg::__private::Change>,
            ) {
                #(#diffs)*
            }

            fn schema_into(
                prefix: &::core::primitive::str,
                out: &mut ::std::vec::Vec<::hotcfg::__private::FieldInfo>,
            ) {
                #(#schemas)*
            }

            fn schema() -> &'static [::hotcfg::__private::FieldInfo] {
                static SCHEMA: ::std::sync::OnceLock<::std::vec::Vec<::hotcfg::__private::FieldInfo>> =
                    ::std::sync::OnceLock::new();
                ::hotcfg::__private::schema_of::<Self>(&SCHEMA)
            }

            fn merge_hot(&self, new: &Self) -> Self {
                Self { #(#merges,)* }
            }

            fn watched_files_into(
                &self,
                prefix: &::hotcfg::__private::FieldPath<'_>,
                out: &mut ::std::vec::Vec<::hotcfg::__private::WatchedFile>,
            ) {
                #(#watches)*
            }
        }
    }
}

/// `<Ty as NestedList>` (spanned at the field's type) and the element key: a closure rendering
/// the key field of an element, the field spanned at its name in `key = "..."`.
fn keyed(ty: &Type, key: &syn::Ident) -> (TokenStream, TokenStream) {
    let list = quote_spanned!(ty.span()=> <#ty as ::hotcfg::__private::NestedList>);
    let member = quote_spanned!(key.span()=> item.#key);
    // `#ty` keeps its own spans: a type that is not a list is reported once, at the type.
    let closure = quote! {
        ::hotcfg::__private::element_key::<#ty>(&|item| ::std::string::ToString::to_string(&#member))
    };
    (list, closure)
}

/// `<Ty as Nested>`, spanned at the field's type so an unimplemented `Nested` points there.
fn as_nested(ty: &Type) -> TokenStream {
    quote_spanned!(ty.span()=> <#ty as ::hotcfg::__private::Nested>)
}

fn diff_field(gen: &Gen<'_>) -> TokenStream {
    let (member, segment) = (gen.field.ident, &gen.segment);
    match &gen.kind {
        Kind::Skipped => TokenStream::new(),
        Kind::Nested { flatten, key } => {
            let path = nested_path(segment, *flatten);
            match key {
                Some(key) => {
                    let (list, key) = keyed(gen.field.ty, key);
                    quote!(#list::diff_list(&self.#member, &new.#member, #path, #key, out);)
                }
                None => {
                    let nested = as_nested(gen.field.ty);
                    // Compare first: an unchanged section costs its `PartialEq` and no path.
                    quote! {
                        if #nested::changed(&self.#member, &new.#member) {
                            #nested::diff_nested(&self.#member, &new.#member, #path, out);
                        }
                    }
                }
            }
        }
        Kind::Leaf { class, secret, .. } => {
            let class = class_tokens(class);
            let ty = gen.field.ty;
            // The assertion and the call are spanned at the field's type, so a type that is not
            // a `Leaf` is reported there, once (rustc merges the two identical obligations).
            let assert = quote_spanned!(ty.span()=> ::hotcfg::__private::assert_leaf::<#ty>);
            let changed = quote_spanned!(ty.span()=> ::hotcfg::__private::leaf_changed::<#ty>);
            let diff = quote_spanned!(ty.span()=> ::hotcfg::__private::diff_leaf::<#ty>);
            // Compare first, build the path only for a change (issue 19).
            quote! {
                #assert();
                if #changed(&self.#member, &new.#member) {
                    #diff(&self.#member, &new.#member, &prefix.join(#segment), #class, #secret, out);
                }
            }
        }
    }
}

fn schema_field(gen: &Gen<'_>) -> TokenStream {
    let segment = &gen.segment;
    match &gen.kind {
        Kind::Skipped => TokenStream::new(),
        Kind::Nested { flatten, .. } => {
            let nested = as_nested(gen.field.ty);
            let prefix = if *flatten {
                quote!(prefix)
            } else {
                quote!(&::hotcfg::__private::join(prefix, #segment))
            };
            let doc = &gen.field.doc;
            quote!(#nested::schema_nested(#prefix, #doc, out);)
        }
        Kind::Leaf {
            class,
            secret,
            watch,
        } => {
            let class = class_tokens(class);
            let doc = &gen.field.doc;
            let type_name = type_name(gen.field.ty);
            quote! {
                out.push(::hotcfg::__private::leaf_info(
                    prefix, #segment, #class, #doc, #secret, #watch, #type_name,
                ));
            }
        }
    }
}

fn merge_field(gen: &Gen<'_>) -> TokenStream {
    let member = gen.field.ident;
    let value = match &gen.kind {
        Kind::Nested { key: Some(key), .. } => {
            let (list, key) = keyed(gen.field.ty, key);
            quote!(#list::merge_list(&self.#member, &new.#member, #key))
        }
        Kind::Nested { key: None, .. } => {
            let nested = as_nested(gen.field.ty);
            quote!(#nested::merge_nested(&self.#member, &new.#member))
        }
        Kind::Leaf {
            class: Class::Scope(_),
            ..
        } => quote!(::core::clone::Clone::clone(&new.#member)),
        // Restart-only values wait for the restart; skipped ones are not in the file.
        Kind::Leaf {
            class: Class::Restart,
            ..
        }
        | Kind::Skipped => quote!(::core::clone::Clone::clone(&self.#member)),
    };
    quote!(#member: #value)
}

/// The `FieldPath` a nested field's diff and watched files are recorded under: the field's own
/// segment, or the parent's path itself for `#[serde(flatten)]`.
fn nested_path(segment: &impl quote::ToTokens, flatten: bool) -> TokenStream {
    if flatten {
        quote!(prefix)
    } else {
        quote!(&prefix.join(#segment))
    }
}

fn watch_field(gen: &Gen<'_>) -> TokenStream {
    let (member, segment) = (gen.field.ident, &gen.segment);
    match &gen.kind {
        Kind::Nested { flatten, key } => {
            let path = nested_path(segment, *flatten);
            match key {
                Some(key) => {
                    let (list, key) = keyed(gen.field.ty, key);
                    quote!(#list::watched_list(&self.#member, #path, #key, out);)
                }
                None => {
                    let nested = as_nested(gen.field.ty);
                    quote!(#nested::watched_nested(&self.#member, #path, out);)
                }
            }
        }
        Kind::Leaf {
            class, watch: true, ..
        } => {
            let class = class_tokens(class);
            let ty = gen.field.ty;
            // As for `diff_leaf`: reported once, at the field's type.
            let assert = quote_spanned!(ty.span()=> ::hotcfg::__private::assert_watch::<#ty>);
            let watch = quote_spanned!(ty.span()=> ::hotcfg::__private::watch_field::<#ty>);
            quote! {
                #assert();
                #watch(&self.#member, &prefix.join(#segment), #class, out);
            }
        }
        Kind::Leaf { watch: false, .. } | Kind::Skipped => TokenStream::new(),
    }
}

fn class_tokens(class: &Class) -> TokenStream {
    match class {
        Class::Restart => quote!(::hotcfg::__private::Class::Restart),
        Class::Scope(name) => quote!(::hotcfg::__private::Class::Scope(#name)),
    }
}

/// A stub impl, so that an input with errors gives those errors and not also "`HotReload` is
/// not implemented" wherever the type is used.
fn stub(input: &DeriveInput) -> TokenStream {
    let ident = &input.ident;
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let mut generics = input.generics.clone();
    // The supertraits, as a where clause, so the stub itself never adds an error (a union or an
    // enum may well not be `Serialize`). The binder keeps rustc from rejecting the bound as
    // trivially false when the type has no parameters.
    generics
        .make_where_clause()
        .predicates
        .push(syn::parse_quote! {
            for<'__hotcfg> #ident #ty_generics:
                ::core::clone::Clone + ::hotcfg::__private::Leaf + 'static
        });
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    quote! {
        #[automatically_derived]
        impl #impl_generics ::hotcfg::__private::HotReload for #ident #ty_generics #where_clause {
            const CLASS: ::hotcfg::__private::Class = ::hotcfg::__private::Class::Restart;
            fn diff_into(
                &self,
                _: &Self,
                _: &::hotcfg::__private::FieldPath<'_>,
                _: &mut ::std::vec::Vec<::hotcfg::__private::Change>,
            ) {
                ::core::unreachable!("`#[derive(HotReload)]` failed")
            }
            fn schema_into(
                _: &::core::primitive::str,
                _: &mut ::std::vec::Vec<::hotcfg::__private::FieldInfo>,
            ) {
                ::core::unreachable!("`#[derive(HotReload)]` failed")
            }
            fn schema() -> &'static [::hotcfg::__private::FieldInfo] {
                ::core::unreachable!("`#[derive(HotReload)]` failed")
            }
            fn merge_hot(&self, _: &Self) -> Self {
                ::core::unreachable!("`#[derive(HotReload)]` failed")
            }
            fn watched_files_into(
                &self,
                _: &::hotcfg::__private::FieldPath<'_>,
                _: &mut ::std::vec::Vec<::hotcfg::__private::WatchedFile>,
            ) {
                ::core::unreachable!("`#[derive(HotReload)]` failed")
            }
        }
    }
}

/// The field's type as written, spaced like rustfmt would: `BTreeMap<String, LoopConfig>`.
pub fn type_name(ty: &Type) -> String {
    let printed = quote!(#ty).to_string();
    let mut out = String::with_capacity(printed.len());
    let mut prev = "";
    for token in printed.split_whitespace() {
        let glued = matches!(token, "," | ";" | ">" | ")" | "]" | "::" | "<" | "?")
            || (token.starts_with('(')
                && !matches!(prev, "->" | "," | "=" | "+" | "dyn" | "impl" | ""))
            || matches!(prev, "<" | "(" | "[" | "&" | "::" | "*" | "'")
            || prev.ends_with("::");
        if !out.is_empty() && !glued {
            out.push(' ');
        }
        out.push_str(token);
        prev = token;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::type_name;

    #[test]
    fn type_names_read_like_source() {
        let cases: [(syn::Type, &str); 10] = [
            (syn::parse_quote!(usize), "usize"),
            (
                syn::parse_quote!(BTreeMap<String, LoopConfig>),
                "BTreeMap<String, LoopConfig>",
            ),
            (syn::parse_quote!(Option<Vec<u8>>), "Option<Vec<u8>>"),
            (
                syn::parse_quote!(::std::path::PathBuf),
                "::std::path::PathBuf",
            ),
            (syn::parse_quote!(&'static str), "&'static str"),
            (syn::parse_quote!([u8; 4]), "[u8; 4]"),
            (syn::parse_quote!((u8, String)), "(u8, String)"),
            (
                syn::parse_quote!(Box<dyn Fn(u8) -> u8>),
                "Box<dyn Fn(u8) -> u8>",
            ),
            (
                syn::parse_quote!(HashMap<String, Vec<(u8, u16)>>),
                "HashMap<String, Vec<(u8, u16)>>",
            ),
            (syn::parse_quote!(Vec<&mut u8>), "Vec<&mut u8>"),
        ];
        for (ty, expected) in cases {
            assert_eq!(type_name(&ty), expected);
        }
    }
}

#[cfg(test)]
mod derive_tests {
    use syn::parse_quote;

    use super::derive;

    fn items(tokens: proc_macro2::TokenStream) -> Vec<syn::Item> {
        syn::parse2::<syn::File>(tokens)
            .expect("output parses")
            .items
    }

    #[test]
    fn valid_input_gives_one_impl() {
        let output = derive(&parse_quote! {
            #[reload(scope = "loops")]
            struct Loop {
                /// Iterations.
                max_iterations: u32,
                #[reload(restart)]
                runner: String,
                #[reload(nested)]
                limits: Option<Limits>,
            }
        });
        let text = output.to_string();
        assert!(!text.contains("compile_error"));
        assert!(text.contains("Class :: Scope (\"loops\")"));
        let items = items(output);
        assert_eq!(items.len(), 1);
        assert!(matches!(&items[0], syn::Item::Impl(_)));
    }

    #[test]
    fn invalid_input_gives_every_error_and_a_stub() {
        let output = derive(&parse_quote! {
            struct Config<T> {
                #[reload(scope = "")]
                a: T,
                #[reload(hot)]
                b: u32,
            }
        });
        let text = output.to_string();
        assert_eq!(text.matches("compile_error").count(), 3, "{text}");
        // The stub keeps the generics and bounds them, so it is well-formed on its own.
        assert!(text.contains("for < '__hotcfg > Config < T > :"), "{text}");
        let impls = items(output)
            .into_iter()
            .filter(|item| matches!(item, syn::Item::Impl(_)))
            .count();
        assert_eq!(impls, 1);
    }
}
