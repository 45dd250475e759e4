//! The model of a derive input: the struct, its fields and what their attributes say.

use syn::ext::IdentExt;
use syn::{Data, DeriveInput, Fields, Generics, Ident, Type};

use crate::attr::{self, Place, Reload, SerdeContainer, SerdeField};
use crate::ctxt::Ctxt;

/// A struct with named fields.
#[derive(Debug)]
pub struct Container<'a> {
    pub ident: &'a Ident,
    pub generics: &'a Generics,
    /// `#[reload(...)]` on the struct.
    pub reload: Reload,
    pub serde: SerdeContainer,
    pub fields: Vec<Field<'a>>,
}

/// One named field.
#[derive(Debug)]
pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    pub reload: Reload,
    pub serde: SerdeField,
    /// The `///` comment, one line.
    pub doc: String,
}

/// What a change needs, as the generated code spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    Restart,
    Scope(String),
}

/// How the generated code treats a field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `#[serde(skip)]`: not in the file; left out of diff, schema and watch; merge keeps the
    /// current value.
    Skipped,
    /// `#[reload(nested)]`: recurse; `flatten` recurses without a path segment; `key` matches
    /// the elements of a list by that field.
    Nested { flatten: bool, key: Option<Ident> },
    /// Compared and rendered as a whole (structured values are walked down to their keys).
    Leaf {
        class: Class,
        secret: bool,
        watch: bool,
    },
}

impl<'a> Container<'a> {
    /// Builds the model, recording every attribute error; `None` when the input is not a struct
    /// with named fields.
    pub fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Option<Self> {
        let reload = Reload::from_attrs(cx, &input.attrs, Place::Struct);
        let serde = SerdeContainer::from_attrs(&input.attrs);
        let fields = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(named) => named.named.iter().map(|f| Field::from_ast(cx, f)),
                Fields::Unnamed(unnamed) => {
                    cx.error_spanned_by(
                        unnamed,
                        "`HotReload` needs named fields: a field's name is its key in the \
                         configuration (`limits.max_concurrent`), and a tuple struct has none",
                    );
                    return None;
                }
                Fields::Unit => {
                    cx.error_spanned_by(
                        &input.ident,
                        "`HotReload` needs a struct with named fields; a unit struct has \
                         nothing to reload",
                    );
                    return None;
                }
            },
            Data::Enum(data) => {
                cx.error_spanned_by(
                    data.enum_token,
                    "`HotReload` can only be derived for structs with named fields, not enums; \
                     an enum can be a field of such a struct, diffed as one value \
                     (`#[reload(scope = \"...\")]` or `#[reload(restart)]`)",
                );
                return None;
            }
            Data::Union(data) => {
                cx.error_spanned_by(
                    data.union_token,
                    "`HotReload` can only be derived for structs with named fields, not unions",
                );
                return None;
            }
        };
        Some(Container {
            ident: &input.ident,
            generics: &input.generics,
            reload,
            serde,
            fields: fields.collect(),
        })
    }

    /// `CLASS`, and the class of fields without a `#[reload]` class.
    pub fn class(&self) -> Class {
        class_of(&self.reload).unwrap_or(Class::Restart)
    }
}

impl<'a> Field<'a> {
    fn from_ast(cx: &Ctxt, field: &'a syn::Field) -> Self {
        Field {
            ident: field.ident.as_ref().expect("named field"),
            ty: &field.ty,
            reload: Reload::from_attrs(cx, &field.attrs, Place::Field),
            serde: SerdeField::from_attrs(&field.attrs),
            doc: attr::doc(&field.attrs),
        }
    }

    /// The field's path segment: its key in the configuration file.
    pub fn segment(&self, cont: &Container<'_>) -> String {
        if let Some(name) = &self.serde.rename {
            return name.clone();
        }
        let name = self.ident.unraw().to_string();
        match cont.serde.rename_all {
            Some(rule) => rule.apply_to_field(&name),
            None => name,
        }
    }

    /// How to generate code for this field (after `check` passed).
    pub fn kind(&self, cont: &Container<'_>) -> Kind {
        if self.serde.skip.is_some() {
            Kind::Skipped
        } else if self.reload.nested.is_some() {
            Kind::Nested {
                flatten: self.serde.flatten.is_some(),
                key: self.reload.key.as_ref().map(|k| k.field.clone()),
            }
        } else {
            Kind::Leaf {
                class: class_of(&self.reload).unwrap_or_else(|| cont.class()),
                secret: self.reload.secret.is_some(),
                watch: self.reload.watch.is_some(),
            }
        }
    }
}

fn class_of(reload: &Reload) -> Option<Class> {
    match (&reload.scope, &reload.restart) {
        (Some(scope), _) => Some(Class::Scope(scope.name.value())),
        (None, Some(_)) => Some(Class::Restart),
        (None, None) => None,
    }
}
