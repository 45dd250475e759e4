//! Attribute parsing: `#[reload(...)]`, plus the parts of `#[serde(...)]` and `///` that shape a
//! field's path and its schema row.
//!
//! Every key is spelled once, as a constant. Parsing records each mistake in the [`Ctxt`] and
//! carries on, so one build reports them all. Rules that involve several keys live in `check`.

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Ident, Lit, LitStr, Meta, Path, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

/// The attribute this derive reads.
pub const RELOAD: &str = "reload";
/// `scope = "name"`: hot; a change is applied live by the handlers of scope `name`.
pub const SCOPE: &str = "scope";
/// `restart`: a change needs a restart.
pub const RESTART: &str = "restart";
/// `nested`: recurse into the field's type (it derives `HotReload`, or is an option/map of one).
pub const NESTED: &str = "nested";
/// `secret`: the value is shown as `<redacted>`.
pub const SECRET: &str = "secret";
/// `watch`: the field names files that are watched along with the configuration.
pub const WATCH: &str = "watch";
/// `key = "field"`, with `nested` on a list: elements are matched by that field's value.
pub const KEY: &str = "key";

/// Keys accepted on a field, in the order messages list them.
pub const FIELD_KEYS: &[&str] = &[SCOPE, RESTART, NESTED, SECRET, WATCH, KEY];
/// Keys accepted on the struct.
pub const CONTAINER_KEYS: &[&str] = &[SCOPE, RESTART];

const SERDE: &str = "serde";
const SERDE_RENAME: &str = "rename";
const SERDE_RENAME_ALL: &str = "rename_all";
const SERDE_DESERIALIZE: &str = "deserialize";
const SERDE_SKIP: &str = "skip";
const SERDE_FLATTEN: &str = "flatten";
const DOC: &str = "doc";

/// Where a `#[reload]` attribute sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// On the struct: sets `CLASS` and the default class of unannotated fields.
    Struct,
    /// On a field.
    Field,
}

/// A key as written, kept so that later checks can point at it.
#[derive(Clone, Debug)]
pub struct Key {
    /// The key's tokens.
    pub path: Path,
    /// Position among the keys of this field or struct, across all its `#[reload]` attributes,
    /// so a conflict can be blamed on the later of two keys.
    pub order: usize,
}

/// `scope = "name"`, with the literal kept for spans.
#[derive(Clone, Debug)]
pub struct Scope {
    pub key: Key,
    pub name: LitStr,
}

/// `key = "field"`: the element field that identifies an element of a nested list.
#[derive(Clone, Debug)]
pub struct ElementKey {
    pub key: Key,
    /// The field, spanned at the literal so a misspelt name is reported there.
    pub field: Ident,
}

/// The `#[reload(...)]` keys of one field or of the struct.
#[derive(Clone, Debug, Default)]
pub struct Reload {
    pub scope: Option<Scope>,
    pub restart: Option<Key>,
    pub nested: Option<Key>,
    pub secret: Option<Key>,
    pub watch: Option<Key>,
    pub key: Option<ElementKey>,
}

impl Reload {
    /// Parses every `#[reload(...)]` among `attrs`.
    pub fn from_attrs(cx: &Ctxt, attrs: &[Attribute], place: Place) -> Self {
        let mut out = Reload::default();
        let mut order = 0;
        for attr in attrs.iter().filter(|a| a.path().is_ident(RELOAD)) {
            let result = attr.parse_nested_meta(|meta| {
                let key = Key {
                    path: meta.path.clone(),
                    order,
                };
                order += 1;
                out.parse_key(cx, &meta, key, place)
            });
            if let Err(err) = result {
                cx.syn_error(err);
            }
        }
        out
    }

    /// The first key written, if any (for "this has no effect here" errors).
    pub fn first_key(&self) -> Option<&Key> {
        [
            self.scope.as_ref().map(|s| &s.key),
            self.restart.as_ref(),
            self.nested.as_ref(),
            self.secret.as_ref(),
            self.watch.as_ref(),
            self.key.as_ref().map(|k| &k.key),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|key| key.order)
    }

    fn parse_key(
        &mut self,
        cx: &Ctxt,
        meta: &ParseNestedMeta<'_>,
        key: Key,
        place: Place,
    ) -> syn::Result<()> {
        let path = &meta.path;
        let name = key_name(path);
        if !place.keys().contains(&name.as_str()) || path.get_ident().is_none() {
            cx.error_spanned_by(path, unknown_key_message(&name, place));
            skip_value(meta)?;
            return Ok(());
        }
        if name == SCOPE {
            if let Some(lit) = scope_value(cx, meta)? {
                set(cx, &mut self.scope, Scope { key, name: lit }, path);
            }
            return Ok(());
        }
        if name == KEY {
            if let Some(field) = key_value(cx, meta)? {
                set(cx, &mut self.key, ElementKey { key, field }, path);
            }
            return Ok(());
        }
        let slot = match name.as_str() {
            RESTART => &mut self.restart,
            NESTED => &mut self.nested,
            SECRET => &mut self.secret,
            WATCH => &mut self.watch,
            _ => unreachable!("every key in FIELD_KEYS is handled"),
        };
        no_value(cx, meta, &name)?;
        set(cx, slot, key, path);
        Ok(())
    }
}

impl Place {
    /// The keys `#[reload]` accepts here.
    pub fn keys(self) -> &'static [&'static str] {
        match self {
            Place::Struct => CONTAINER_KEYS,
            Place::Field => FIELD_KEYS,
        }
    }
}

fn set<T>(cx: &Ctxt, slot: &mut Option<T>, value: T, path: &Path) {
    if slot.is_some() {
        cx.error_spanned_by(
            path,
            format!(
                "duplicate `#[reload]` key `{}`: write each key once",
                key_name(path)
            ),
        );
    } else {
        *slot = Some(value);
    }
}

fn key_name(path: &Path) -> String {
    match path.get_ident() {
        Some(ident) => ident.unraw().to_string(),
        None => quote::quote!(#path).to_string().replace(' ', ""),
    }
}

fn unknown_key_message(name: &str, place: Place) -> String {
    let expected = |keys: &[&str]| {
        let keys: Vec<String> = keys
            .iter()
            .map(|key| match *key {
                SCOPE | KEY => format!("`{key} = \"...\"`"),
                other => format!("`{other}`"),
            })
            .collect();
        match keys.split_last() {
            Some((last, [])) => last.clone(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    };
    match place {
        Place::Field => format!(
            "unknown `#[reload]` key `{name}`; expected {}",
            expected(FIELD_KEYS)
        ),
        Place::Struct if FIELD_KEYS.contains(&name) => format!(
            "`{name}` applies to fields, not to the struct; on the struct, `#[reload]` takes {} \
             (the class of fields without one)",
            expected(CONTAINER_KEYS)
        ),
        Place::Struct => format!(
            "unknown `#[reload]` key `{name}` on the struct; expected {} (the class of fields \
             without one)",
            expected(CONTAINER_KEYS)
        ),
    }
}

/// The literal of `scope = "name"`, checked; `None` (with an error recorded) when missing or
/// not a string literal.
fn scope_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    if !meta.input.peek(Token![=]) {
        let key = &meta.path;
        let stray = skip_value(meta)?;
        cx.error_spanned_by(
            quote::quote!(#key #stray),
            "`scope` needs the scope's name: `scope = \"limits\"`",
        );
        return Ok(None);
    }
    let mut expr: Expr = meta.value()?.parse()?;
    // A literal passed through a `macro_rules!` fragment arrives wrapped in a group.
    while let Expr::Group(group) = expr {
        expr = *group.expr;
    }
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => {
            if let Err(message) = check_scope_name(&lit.value()) {
                cx.error_spanned_by(&lit, message);
            }
            Ok(Some(lit))
        }
        other => {
            cx.error_spanned_by(
                &other,
                "the scope name must be a string literal: `scope = \"limits\"`",
            );
            Ok(None)
        }
    }
}

/// The field named by `key = "name"`; `None` (with an error recorded) when missing or not the
/// name of a field.
fn key_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Ident>> {
    let usage = "`key` names the element's key field: `#[reload(nested, key = \"name\")]`";
    if !meta.input.peek(Token![=]) {
        let key = &meta.path;
        let stray = skip_value(meta)?;
        cx.error_spanned_by(quote::quote!(#key #stray), usage);
        return Ok(None);
    }
    let expr: Expr = meta.value()?.parse()?;
    match &expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => match syn::parse_str::<Ident>(&lit.value()) {
            Ok(ident) => Ok(Some(Ident::new(&ident.to_string(), lit.span()))),
            Err(_) => {
                cx.error_spanned_by(
                    lit,
                    format!("`{}` is not a field name; {usage}", lit.value()),
                );
                Ok(None)
            }
        },
        other => {
            cx.error_spanned_by(other, usage);
            Ok(None)
        }
    }
}

/// A flag key (`restart`, `nested`, ...) takes no value.
fn no_value(cx: &Ctxt, meta: &ParseNestedMeta<'_>, name: &str) -> syn::Result<()> {
    let value = skip_value(meta)?;
    if !value.is_empty() {
        cx.error_spanned_by(
            value,
            format!("`{name}` takes no value: write `#[reload({name})]`"),
        );
    }
    Ok(())
}

/// Consumes whatever follows a key up to the next `,`, returning it.
fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<TokenStream> {
    let mut tokens = TokenStream::new();
    while !meta.input.is_empty() && !meta.input.peek(Token![,]) {
        tokens.extend([meta.input.parse::<TokenTree>()?]);
    }
    Ok(tokens)
}

/// The rule `hotcfg::validate_scope_name` applies at run time, applied at compile time: non-empty,
/// lowercase ASCII letters, digits, `_` and `-`, not `restart`.
pub fn check_scope_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(
            "the scope name is empty: name the scope whose handlers apply this field, \
             e.g. `scope = \"limits\"`"
                .to_string(),
        );
    }
    if name == RESTART {
        return Err(
            "`restart` is reserved and cannot name a scope; for a restart-only field \
             write `#[reload(restart)]`"
                .to_string(),
        );
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "scope name `{name}` contains {bad:?}; use lowercase letters, digits, `_` and `-`"
        ));
    }
    Ok(())
}

/// What `#[serde(...)]` on a field changes for hotcfg.
#[derive(Clone, Debug, Default)]
pub struct SerdeField {
    /// The key in the configuration file: `rename = "x"` or `rename(deserialize = "x")`.
    pub rename: Option<String>,
    /// `skip`: not read from the file.
    pub skip: Option<Path>,
    /// `flatten`: the field's own keys sit in this struct.
    pub flatten: Option<Path>,
}

impl SerdeField {
    /// Reads `#[serde(...)]`. Malformed serde attributes are ignored here: serde reports them.
    pub fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut out = SerdeField::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident(SERDE)) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(SERDE_RENAME) {
                    if let Some(name) = deserialize_name(&meta)? {
                        out.rename = Some(name.value());
                    }
                } else if meta.path.is_ident(SERDE_SKIP) {
                    out.skip = Some(meta.path.clone());
                } else if meta.path.is_ident(SERDE_FLATTEN) {
                    out.flatten = Some(meta.path.clone());
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        out
    }
}

/// What `#[serde(...)]` on the struct changes for hotcfg.
#[derive(Clone, Copy, Debug, Default)]
pub struct SerdeContainer {
    /// `rename_all = "..."` or `rename_all(deserialize = "...")`.
    pub rename_all: Option<RenameRule>,
}

impl SerdeContainer {
    /// Reads `#[serde(...)]`; unknown rules and malformed attributes are left to serde.
    pub fn from_attrs(attrs: &[Attribute]) -> Self {
        let mut out = SerdeContainer::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident(SERDE)) {
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident(SERDE_RENAME_ALL) {
                    if let Some(rule) = deserialize_name(&meta)? {
                        out.rename_all = RenameRule::from_name(&rule.value());
                    }
                } else {
                    skip_value(&meta)?;
                }
                Ok(())
            });
        }
        out
    }
}

/// The deserialize side of `key = "x"` or `key(serialize = "..", deserialize = "x")`: what the
/// configuration file uses.
fn deserialize_name(meta: &ParseNestedMeta<'_>) -> syn::Result<Option<LitStr>> {
    if meta.input.peek(Token![=]) {
        return Ok(Some(meta.value()?.parse()?));
    }
    let mut name = None;
    if meta.input.peek(syn::token::Paren) {
        meta.parse_nested_meta(|inner| {
            if inner.path.is_ident(SERDE_DESERIALIZE) {
                name = Some(inner.value()?.parse()?);
            } else {
                skip_value(&inner)?;
            }
            Ok(())
        })?;
    }
    Ok(name)
}

/// The `///` comment: lines trimmed, blank lines dropped, joined with spaces.
pub fn doc(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident(DOC)) {
        if let Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(ExprLit {
                lit: Lit::Str(text),
                ..
            }) = &nv.value
            {
                let text = text.value();
                lines.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(str::to_string),
                );
            }
        }
    }
    lines.join(" ")
}

#[cfg(test)]
mod tests {
    use syn::parse_quote;

    use super::*;

    /// Parses a field's attributes; returns what was read and the error messages.
    fn field(attrs: Vec<Attribute>) -> (Reload, Vec<String>) {
        parse(attrs, Place::Field)
    }

    fn parse(attrs: Vec<Attribute>, place: Place) -> (Reload, Vec<String>) {
        let cx = Ctxt::new();
        let reload = Reload::from_attrs(&cx, &attrs, place);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(errors) => errors.iter().map(ToString::to_string).collect(),
        };
        (reload, errors)
    }

    fn ok(attrs: Vec<Attribute>) -> Reload {
        let (reload, errors) = field(attrs);
        assert!(errors.is_empty(), "{errors:?}");
        reload
    }

    fn one_error(attrs: Vec<Attribute>, place: Place) -> String {
        let (_, errors) = parse(attrs, place);
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn no_attribute_is_no_key() {
        let reload = ok(vec![
            parse_quote!(#[doc = "x"]),
            parse_quote!(#[serde(default)]),
        ]);
        assert!(reload.first_key().is_none());
    }

    #[test]
    fn scope() {
        let reload = ok(vec![parse_quote!(#[reload(scope = "limits")])]);
        assert_eq!(reload.scope.unwrap().name.value(), "limits");
        assert!(reload.restart.is_none());
    }

    #[test]
    fn flags_and_combinations() {
        let reload = ok(vec![parse_quote!(#[reload(scope = "tls", secret, watch)])]);
        assert!(reload.scope.is_some() && reload.secret.is_some() && reload.watch.is_some());
        let reload = ok(vec![parse_quote!(#[reload(restart, secret)])]);
        assert!(reload.restart.is_some() && reload.secret.is_some());
        let reload = ok(vec![parse_quote!(#[reload(nested)])]);
        assert!(reload.nested.is_some());
        let reload = ok(vec![parse_quote!(#[reload(secret)])]);
        assert!(reload.secret.is_some() && reload.scope.is_none());
        // Keys may be spread over several attributes; order is kept across them.
        let reload = ok(vec![
            parse_quote!(#[reload(watch)]),
            parse_quote!(#[reload(restart)]),
        ]);
        assert_eq!(reload.watch.unwrap().order, 0);
        assert_eq!(reload.restart.unwrap().order, 1);
    }

    #[test]
    fn scope_from_a_macro_fragment() {
        // What a `macro_rules!` passing `$name:expr` produces.
        let lit: Expr = parse_quote!("limits");
        let group = Expr::Group(syn::ExprGroup {
            attrs: Vec::new(),
            group_token: Default::default(),
            expr: Box::new(lit),
        });
        let reload = ok(vec![parse_quote!(#[reload(scope = #group)])]);
        assert_eq!(reload.scope.unwrap().name.value(), "limits");
    }

    #[test]
    fn unknown_key_lists_the_keys() {
        let message = one_error(vec![parse_quote!(#[reload(scopes = "x")])], Place::Field);
        assert_eq!(
            message,
            "unknown `#[reload]` key `scopes`; expected `scope = \"...\"`, `restart`, `nested`, \
             `secret`, `watch` or `key = \"...\"`"
        );
        let message = one_error(vec![parse_quote!(#[reload(a::b)])], Place::Field);
        assert!(
            message.starts_with("unknown `#[reload]` key `a::b`"),
            "{message}"
        );
    }

    #[test]
    fn unknown_key_does_not_hide_the_next_one() {
        let (reload, errors) = field(vec![parse_quote!(#[reload(hot(1, 2), scope = "a")])]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(reload.scope.unwrap().name.value(), "a");
    }

    #[test]
    fn duplicate_key() {
        let message = one_error(
            vec![
                parse_quote!(#[reload(secret)]),
                parse_quote!(#[reload(secret)]),
            ],
            Place::Field,
        );
        assert_eq!(
            message,
            "duplicate `#[reload]` key `secret`: write each key once"
        );
        let message = one_error(
            vec![parse_quote!(#[reload(scope = "a", scope = "b")])],
            Place::Field,
        );
        assert_eq!(
            message,
            "duplicate `#[reload]` key `scope`: write each key once"
        );
    }

    #[test]
    fn scope_needs_a_string_value() {
        let message = one_error(vec![parse_quote!(#[reload(scope)])], Place::Field);
        assert_eq!(
            message,
            "`scope` needs the scope's name: `scope = \"limits\"`"
        );
        let message = one_error(vec![parse_quote!(#[reload(scope("x"))])], Place::Field);
        assert_eq!(
            message,
            "`scope` needs the scope's name: `scope = \"limits\"`"
        );
        for attr in [
            parse_quote!(#[reload(scope = limits)]),
            parse_quote!(#[reload(scope = 1)]),
            parse_quote!(#[reload(scope = 'x')]),
        ] {
            let message = one_error(vec![attr], Place::Field);
            assert_eq!(
                message,
                "the scope name must be a string literal: `scope = \"limits\"`"
            );
        }
    }

    #[test]
    fn flags_take_no_value() {
        let message = one_error(vec![parse_quote!(#[reload(restart = true)])], Place::Field);
        assert_eq!(
            message,
            "`restart` takes no value: write `#[reload(restart)]`"
        );
        let message = one_error(vec![parse_quote!(#[reload(nested(deep))])], Place::Field);
        assert_eq!(
            message,
            "`nested` takes no value: write `#[reload(nested)]`"
        );
    }

    #[test]
    fn malformed_attribute_is_a_syn_error() {
        let (_, errors) = field(vec![parse_quote!(#[reload])]);
        assert_eq!(errors.len(), 1);
        let (_, errors) = field(vec![parse_quote!(#[reload(scope = )])]);
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn invalid_scope_names() {
        let cases = [
            ("", "the scope name is empty"),
            ("restart", "`restart` is reserved"),
            ("Limits", "scope name `Limits` contains 'L'"),
            ("rate limits", "scope name `rate limits` contains ' '"),
            ("a.b", "scope name `a.b` contains '.'"),
        ];
        for (name, start) in cases {
            let message = one_error(vec![parse_quote!(#[reload(scope = #name)])], Place::Field);
            assert!(message.starts_with(start), "{name:?}: {message}");
        }
        for name in ["limits", "rate-limits", "loops_2", "x"] {
            assert_eq!(check_scope_name(name), Ok(()));
        }
    }

    #[test]
    fn struct_keys() {
        let (reload, errors) = parse(
            vec![parse_quote!(#[reload(scope = "loops")])],
            Place::Struct,
        );
        assert!(errors.is_empty());
        assert_eq!(reload.scope.unwrap().name.value(), "loops");
        let (reload, errors) = parse(vec![parse_quote!(#[reload(restart)])], Place::Struct);
        assert!(errors.is_empty() && reload.restart.is_some());
        let message = one_error(vec![parse_quote!(#[reload(nested)])], Place::Struct);
        assert_eq!(
            message,
            "`nested` applies to fields, not to the struct; on the struct, `#[reload]` takes \
             `scope = \"...\"` or `restart` (the class of fields without one)"
        );
        let message = one_error(vec![parse_quote!(#[reload(hot)])], Place::Struct);
        assert!(message.starts_with("unknown `#[reload]` key `hot` on the struct"));
    }

    #[test]
    fn three_mistakes_three_errors() {
        let (_, errors) = field(vec![
            parse_quote!(#[reload(scope = "Limits", restart, restart)]),
            parse_quote!(#[reload(hot)]),
        ]);
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn serde_field_names() {
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(default, rename = "bind")])];
        assert_eq!(
            SerdeField::from_attrs(&attrs).rename.as_deref(),
            Some("bind")
        );
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[serde(rename(serialize = "out", deserialize = "in"))])];
        assert_eq!(SerdeField::from_attrs(&attrs).rename.as_deref(), Some("in"));
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(rename(serialize = "out"))])];
        assert_eq!(SerdeField::from_attrs(&attrs).rename, None);
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[serde(skip_serializing_if = "Option::is_none", with = "x")]),
            parse_quote!(#[serde(flatten)]),
            parse_quote!(#[serde(skip)]),
        ];
        let serde = SerdeField::from_attrs(&attrs);
        assert!(serde.flatten.is_some() && serde.skip.is_some());
    }

    #[test]
    fn serde_container_rules() {
        let attrs: Vec<Attribute> =
            vec![parse_quote!(#[serde(deny_unknown_fields, rename_all = "kebab-case")])];
        assert_eq!(
            SerdeContainer::from_attrs(&attrs).rename_all,
            Some(RenameRule::Kebab)
        );
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[serde(rename_all(serialize = "UPPERCASE", deserialize = "camelCase"))]),
        ];
        assert_eq!(
            SerdeContainer::from_attrs(&attrs).rename_all,
            Some(RenameRule::Camel)
        );
        let attrs: Vec<Attribute> = vec![parse_quote!(#[serde(rename_all = "nonsense")])];
        assert_eq!(SerdeContainer::from_attrs(&attrs).rename_all, None);
    }

    #[test]
    fn doc_lines_are_trimmed_and_joined() {
        let attrs: Vec<Attribute> = vec![
            parse_quote!(#[doc = " Loops allowed"]),
            parse_quote!(#[doc = "   to run at once."]),
            parse_quote!(#[doc = ""]),
            parse_quote!(#[doc = " Default: 4."]),
            parse_quote!(#[reload(scope = "limits")]),
        ];
        assert_eq!(doc(&attrs), "Loops allowed to run at once. Default: 4.");
        assert_eq!(doc(&[]), "");
    }
}
