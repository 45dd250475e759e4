//! Rules that involve more than one key or more than one attribute. One function per rule; each
//! records an error pointing at the tokens to change and carries on.

use proc_macro2::TokenStream;
use quote::quote;

use crate::ast::{Container, Field};
use crate::attr::{Key, Reload, Scope};
use crate::ctxt::Ctxt;

/// Runs every rule.
pub fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_no_generics(cx, cont);
    check_restart_with_scope(cx, &cont.reload, "the struct's default class");
    for field in &cont.fields {
        check_restart_with_scope(cx, &field.reload, "a field");
        check_nested_with_scope(cx, field);
        check_nested_with_restart(cx, field);
        check_secret_with_nested(cx, field);
        check_watch_with_nested(cx, field);
        check_flatten_without_nested(cx, field);
        check_reload_on_skipped(cx, field);
        check_key_without_nested(cx, field);
        check_key_on_a_list(cx, field);
        check_no_128_bit_integers(cx, field);
    }
}

fn scope_tokens(scope: &Scope) -> TokenStream {
    let (path, name) = (&scope.key.path, &scope.name);
    quote!(#path = #name)
}

/// The schema is cached in a `static`, one per type: a generic struct would need one per
/// instantiation.
fn check_no_generics(cx: &Ctxt, cont: &Container<'_>) {
    if !cont.generics.params.is_empty() {
        cx.error_spanned_by(
            cont.generics,
            "`#[derive(HotReload)]` does not support generic structs: the schema is cached in \
             a `static`, which cannot depend on type or lifetime parameters; derive it on a \
             concrete struct",
        );
    }
}

/// A class is a scope or restart, never both. Points at the later of the two keys.
fn check_restart_with_scope(cx: &Ctxt, reload: &Reload, what: &str) {
    if let (Some(scope), Some(restart)) = (&reload.scope, &reload.restart) {
        let name = scope.name.value();
        let message = format!(
            "`restart` and `scope = \"{name}\"` conflict: {what} is either hot (applied live \
             by the `{name}` scope's handlers) or restart-only, not both; keep one"
        );
        if restart.order > scope.key.order {
            cx.error_spanned_by(&restart.path, message);
        } else {
            cx.error_spanned_by(scope_tokens(scope), message);
        }
    }
}

/// A nested field's classes come from its type's own attributes.
fn check_nested_with_scope(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(scope), Some(_)) = (&field.reload.scope, &field.reload.nested) {
        cx.error_spanned_by(
            scope_tokens(scope),
            format!(
                "`scope` cannot be combined with `nested`: a nested field's classes come from \
                 its type's own `#[reload]` attributes; remove `scope` here, and to give the \
                 nested struct's unannotated fields a default scope put \
                 `#[reload(scope = \"{}\")]` on that struct",
                scope.name.value()
            ),
        );
    }
}

/// A nested field's classes come from its type's own attributes.
fn check_nested_with_restart(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(restart), Some(_)) = (&field.reload.restart, &field.reload.nested) {
        cx.error_spanned_by(
            &restart.path,
            "`restart` cannot be combined with `nested`: a nested field's classes come from \
             its type's own `#[reload]` attributes; remove `restart` here (the nested struct's \
             unannotated fields are restart-only already)",
        );
    }
}

/// Secrecy is a property of leaves.
fn check_secret_with_nested(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(secret), Some(_)) = (&field.reload.secret, &field.reload.nested) {
        flag_with_nested(cx, secret, "secret", "secret");
    }
}

/// Watched paths are leaves.
fn check_watch_with_nested(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(watch), Some(_)) = (&field.reload.watch, &field.reload.nested) {
        flag_with_nested(cx, watch, "watch", "path");
    }
}

fn flag_with_nested(cx: &Ctxt, key: &Key, name: &str, which: &str) {
    cx.error_spanned_by(
        &key.path,
        format!(
            "`{name}` cannot be combined with `nested`: mark the {which} fields of the nested \
             type `#[reload({name})]` instead"
        ),
    );
}

/// A flattened field's keys sit in this struct: hotcfg has to recurse into its type.
fn check_flatten_without_nested(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(flatten), None) = (&field.serde.flatten, &field.reload.nested) {
        cx.error_spanned_by(
            flatten,
            "`#[serde(flatten)]` needs `#[reload(nested)]`: the flattened type's keys sit in \
             this struct, so hotcfg must recurse into it; derive `HotReload` on that type and \
             add `#[reload(nested)]` to this field",
        );
    }
}

/// A `#[serde(skip)]` field is not in the file: classifying it means nothing.
fn check_reload_on_skipped(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(_), Some(key)) = (&field.serde.skip, field.reload.first_key()) {
        cx.error_spanned_by(
            &key.path,
            "this field is `#[serde(skip)]`: it is not read from the configuration, so \
             `#[reload]` has no effect on it; remove the `#[reload]` attribute",
        );
    }
}

/// Elements are matched by a key only in a nested list.
fn check_key_without_nested(cx: &Ctxt, field: &Field<'_>) {
    if let (Some(key), None) = (&field.reload.key, &field.reload.nested) {
        cx.error_spanned_by(
            &key.key.path,
            "`key` needs `nested`: it matches the elements of a nested list \
             (`#[reload(nested, key = \"name\")]` on a `Vec` of a type deriving `HotReload`)",
        );
    }
}

/// Only a list's elements are matched by a key field; a map has its own keys. Read from the type
/// as written (`Vec<..>`, `Option<Vec<..>>`); an alias is left to the `NestedList` bound.
fn check_key_on_a_list(cx: &Ctxt, field: &Field<'_>) {
    let (Some(_), Some(key)) = (&field.reload.nested, &field.reload.key) else {
        return;
    };
    let outer = |ty: &syn::Type| match ty {
        syn::Type::Path(path) => path.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    let name = outer(field.ty);
    if matches!(name.as_deref(), Some("Vec" | "Option")) || name.is_none() {
        return;
    }
    let ty = field.ty;
    cx.error_spanned_by(
        &key.key.path,
        format!(
            "`key` matches the elements of a `Vec` or `Option<Vec>`, and this field is a `{}`; \
             a map's entries are matched by the map's own keys: remove `key`",
            crate::expand::type_name(ty)
        ),
    );
}

/// figment, which reads the configuration, has no 128-bit integers: such a field compiles and
/// then can never load ("u128 is not supported"). Found in the type as written (an alias or a
/// plain struct holding one is not seen).
fn check_no_128_bit_integers(cx: &Ctxt, field: &Field<'_>) {
    if field.serde.skip.is_some() {
        return;
    }
    let ty = field.ty;
    let mut found = Vec::new();
    find_128_bit(quote!(#ty), &mut found);
    for ident in found {
        cx.error_spanned_by(
            &ident,
            format!(
                "`{ident}` cannot be loaded: figment, which reads the configuration, does not \
                 support 128-bit integers; use `{}64`, or a `String` your code parses",
                &ident.to_string()[..1]
            ),
        );
    }
}

fn find_128_bit(tokens: TokenStream, found: &mut Vec<proc_macro2::Ident>) {
    for token in tokens {
        match token {
            proc_macro2::TokenTree::Ident(ident) if ident == "u128" || ident == "i128" => {
                found.push(ident)
            }
            proc_macro2::TokenTree::Group(group) => find_128_bit(group.stream(), found),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use syn::{parse_quote, DeriveInput};

    use crate::ast::{Class, Container, Kind};
    use crate::ctxt::Ctxt;

    /// Every error message for a derive input, in the order found.
    fn errors(input: DeriveInput) -> Vec<String> {
        let cx = Ctxt::new();
        if let Some(cont) = Container::from_ast(&cx, &input) {
            super::check(&cx, &cont);
        }
        match cx.check() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        }
    }

    fn one_error(input: DeriveInput) -> String {
        let errors = errors(input);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn valid_struct_has_no_errors() {
        let input: DeriveInput = parse_quote! {
            #[reload(scope = "loops")]
            #[serde(rename_all = "kebab-case")]
            struct Config {
                /// Docs.
                plain: u32,
                #[reload(restart, secret)]
                token: String,
                #[reload(scope = "tls", watch)]
                cert: PathBuf,
                #[reload(nested)]
                limits: Limits,
                #[reload(nested)]
                #[serde(flatten)]
                common: Common,
                #[serde(skip)]
                cache: u64,
            }
        };
        assert_eq!(errors(input.clone()), Vec::<String>::new());

        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        let kinds: Vec<_> = cont
            .fields
            .iter()
            .map(|f| (f.segment(&cont), f.kind(&cont)))
            .collect();
        let leaf = |class, secret, watch| Kind::Leaf {
            class,
            secret,
            watch,
        };
        let loops = || Class::Scope("loops".into());
        assert_eq!(
            kinds,
            [
                ("plain".into(), leaf(loops(), false, false)),
                ("token".into(), leaf(Class::Restart, true, false)),
                ("cert".into(), leaf(Class::Scope("tls".into()), false, true)),
                (
                    "limits".into(),
                    Kind::Nested {
                        flatten: false,
                        key: None
                    }
                ),
                (
                    "common".into(),
                    Kind::Nested {
                        flatten: true,
                        key: None
                    }
                ),
                ("cache".into(), Kind::Skipped),
            ]
        );
        assert_eq!(cont.class(), loops());
    }

    #[test]
    fn unannotated_fields_default_to_restart() {
        let input: DeriveInput = parse_quote!(
            struct Config {
                r#type: u32,
                max_concurrent: u32,
            }
        );
        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        assert_eq!(cont.class(), Class::Restart);
        for field in &cont.fields {
            assert!(matches!(
                field.kind(&cont),
                Kind::Leaf {
                    class: Class::Restart,
                    ..
                }
            ));
        }
        assert_eq!(cont.fields[0].segment(&cont), "type");
    }

    #[test]
    fn restart_with_scope() {
        let message = one_error(parse_quote! {
            struct C { #[reload(scope = "limits", restart)] a: u32 }
        });
        assert!(message.starts_with("`restart` and `scope = \"limits\"` conflict: a field"));
        let message = one_error(parse_quote! {
            #[reload(restart, scope = "x")]
            struct C { a: u32 }
        });
        assert!(
            message.contains("the struct's default class is either hot"),
            "{message}"
        );
    }

    #[test]
    fn nested_with_scope_or_restart() {
        let message = one_error(parse_quote! {
            struct C { #[reload(nested, scope = "limits")] a: Limits }
        });
        assert!(message.starts_with("`scope` cannot be combined with `nested`"));
        let message = one_error(parse_quote! {
            struct C { #[reload(restart, nested)] a: Limits }
        });
        assert!(message.starts_with("`restart` cannot be combined with `nested`"));
    }

    #[test]
    fn secret_or_watch_with_nested() {
        let message = one_error(parse_quote! {
            struct C { #[reload(nested, secret)] a: Auth }
        });
        assert_eq!(
            message,
            "`secret` cannot be combined with `nested`: mark the secret fields of the nested \
             type `#[reload(secret)]` instead"
        );
        let message = one_error(parse_quote! {
            struct C { #[reload(watch, nested)] a: Files }
        });
        assert_eq!(
            message,
            "`watch` cannot be combined with `nested`: mark the path fields of the nested \
             type `#[reload(watch)]` instead"
        );
    }

    #[test]
    fn flatten_needs_nested() {
        let message = one_error(parse_quote! {
            struct C { #[serde(flatten)] common: Common }
        });
        assert!(message.starts_with("`#[serde(flatten)]` needs `#[reload(nested)]`"));
    }

    #[test]
    fn reload_on_a_skipped_field() {
        let message = one_error(parse_quote! {
            struct C { #[serde(skip)] #[reload(scope = "x")] cache: u64 }
        });
        assert!(message.starts_with("this field is `#[serde(skip)]`"));
    }

    #[test]
    fn shapes_that_cannot_derive() {
        let inputs: [(DeriveInput, &str); 5] = [
            (
                parse_quote!(
                    enum E {
                        A,
                    }
                ),
                "not enums",
            ),
            (parse_quote!(union U { a: u32 }), "not unions"),
            (
                parse_quote!(
                    struct T(u32);
                ),
                "a tuple struct has none",
            ),
            (
                parse_quote!(
                    struct U;
                ),
                "a unit struct has nothing to reload",
            ),
            (
                parse_quote!(
                    struct G<T> {
                        a: T,
                    }
                ),
                "does not support generic structs",
            ),
        ];
        for (input, expected) in inputs {
            let message = one_error(input);
            assert!(message.contains(expected), "{message}");
        }
        let message = one_error(parse_quote!(
            struct L<'a> {
                a: &'a str,
            }
        ));
        assert!(message.contains("does not support generic structs"));
    }

    #[test]
    fn key_needs_nested() {
        let message = one_error(parse_quote! {
            struct C { #[reload(scope = "r", key = "name")] routes: Vec<Route> }
        });
        assert!(message.starts_with("`key` needs `nested`"), "{message}");
        let input: DeriveInput = parse_quote! {
            struct C { #[reload(nested, key = "name")] routes: Vec<Route> }
        };
        assert_eq!(errors(input.clone()), Vec::<String>::new());
        let cx = Ctxt::new();
        let cont = Container::from_ast(&cx, &input).unwrap();
        cx.check().unwrap();
        let Kind::Nested { key: Some(key), .. } = cont.fields[0].kind(&cont) else {
            panic!("a keyed nested field");
        };
        assert_eq!(key, "name");
    }

    #[test]
    fn key_only_on_a_list() {
        let message = one_error(parse_quote! {
            struct C { #[reload(nested, key = "name")] routes: BTreeMap<String, Route> }
        });
        assert!(
            message.starts_with(
                "`key` matches the elements of a `Vec` or `Option<Vec>`, and \
                 this field is a `BTreeMap<String, Route>`"
            ),
            "{message}"
        );
        let ok = errors(parse_quote! {
            struct C { #[reload(nested, key = "name")] routes: Option<Vec<Route>> }
        });
        assert_eq!(ok, Vec::<String>::new());
    }

    #[test]
    fn no_128_bit_integers() {
        let errors = errors(parse_quote! {
            struct C { a: u128, b: Option<Vec<i128>>, #[serde(skip)] c: u128, d: u64 }
        });
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("`u128` cannot be loaded"),
            "{errors:?}"
        );
        assert!(errors[1].contains("use `i64`"), "{errors:?}");
    }

    #[test]
    fn all_errors_are_reported_together() {
        let errors = errors(parse_quote! {
            #[reload(secret)]
            struct C {
                #[reload(scope = "Bad")]
                a: u32,
                #[reload(nested, restart, secret)]
                b: B,
                #[serde(flatten)]
                c: C,
            }
        });
        // struct key, bad scope, nested+restart, secret+nested, flatten.
        assert_eq!(errors.len(), 5, "{errors:#?}");
    }
}
