//! A deserializer into figment's value tree that refuses documents too deep or too large, and keys
//! written twice.

use std::cell::Cell;
use std::fmt;

use figment::value::{Dict, Empty, Value};
use serde::de;

use super::format::Format;

/// Nesting allowed in one document unless [`Loader::max_depth`](super::Loader::max_depth) says otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// Values allowed in one document unless [`Loader::max_values`](super::Loader::max_values) says otherwise.
pub const DEFAULT_MAX_VALUES: usize = 100_000;

/// What one parsed document may hold.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_depth: usize,
    pub(super) max_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: DEFAULT_MAX_DEPTH,
            max_values: DEFAULT_MAX_VALUES,
        }
    }
}

/// Deserializes a document into figment's [`Dict`] like `Dict::deserialize` does, but within
/// [`Limits`] and refusing a key written twice in one table (serde_json and serde_yaml would keep
/// the last one silently; TOML already refuses).
pub(super) struct BoundedDict {
    limits: Limits,
    /// Levels that may still be opened, and values that may still be read.
    left: Cell<(usize, usize)>,
    /// Keys of the tables being read, to name a duplicate key in full.
    path: std::cell::RefCell<Vec<String>>,
    yaml: bool,
}

impl BoundedDict {
    pub(super) fn new(limits: Limits, format: Format) -> Self {
        BoundedDict {
            limits,
            left: Cell::new((limits.max_depth, limits.max_values)),
            path: std::cell::RefCell::new(Vec::new()),
            yaml: format == Format::Yaml,
        }
    }

    pub(super) fn deserialize<'de, D: de::Deserializer<'de>>(
        &self,
        de: D,
    ) -> Result<Dict, D::Error> {
        // `deserialize_any`, not `deserialize_map`: a deserializer asked for a map reports any
        // other value itself, quoting it ("invalid type: string \"hunter2\""). Here the visitor
        // reports it, without the value.
        let value = de.deserialize_any(Bounded {
            doc: self,
            top: true,
        })?;
        match value {
            Value::Dict(_, dict) => Ok(dict),
            // An empty YAML document (`~`, `---`): no settings.
            _ => Ok(Dict::new()),
        }
    }

    fn count<E: de::Error>(&self) -> Result<(), E> {
        let (depth, values) = self.left.get();
        if values == 0 {
            let note = if self.yaml {
                " (an alias counts once per use)"
            } else {
                ""
            };
            return Err(E::custom(format_args!(
                "more than {} values{note}",
                self.limits.max_values
            )));
        }
        self.left.set((depth, values - 1));
        Ok(())
    }

    /// Runs `inside` one level deeper, or fails when that is too deep.
    fn nested<T, E: de::Error>(&self, inside: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        self.count()?;
        let (depth, values) = self.left.get();
        if depth == 0 {
            return Err(E::custom(format_args!(
                "nested deeper than {} levels",
                self.limits.max_depth
            )));
        }
        self.left.set((depth - 1, values));
        let result = inside();
        let (depth, values) = self.left.get();
        self.left.set((depth + 1, values));
        result
    }
}

/// One value of a document (a [`de::DeserializeSeed`] and its visitor).
#[derive(Clone, Copy)]
struct Bounded<'a> {
    doc: &'a BoundedDict,
    /// The whole document, which must be a table.
    top: bool,
}

impl Bounded<'_> {
    fn child(self) -> Self {
        Bounded {
            doc: self.doc,
            top: false,
        }
    }

    fn scalar<E: de::Error>(self, value: impl Into<Value>) -> Result<Value, E> {
        if self.top {
            // The value itself is never shown: a file holding only a secret would print it.
            return Err(E::custom(
                "expected a table of settings, found a single value",
            ));
        }
        self.doc.count()?;
        Ok(value.into())
    }
}

impl<'de> de::DeserializeSeed<'de> for Bounded<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

macro_rules! visit_scalars {
    ($($method:ident: $ty:ty),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Value, E> {
            self.scalar(v)
        }
    )*};
}

impl<'de> de::Visitor<'de> for Bounded<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.top {
            "a table of settings"
        } else {
            "a value"
        })
    }

    visit_scalars!(
        visit_bool: bool, visit_char: char, visit_str: &str, visit_string: String,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128,
        visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_f32: f32, visit_f64: f64,
    );

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        if self.top {
            return Ok(Value::from(Dict::new())); // an empty YAML document
        }
        self.scalar(Empty::None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        if self.top {
            return Ok(Value::from(Dict::new()));
        }
        self.scalar(Empty::Unit)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.top {
            return Err(de::Error::custom(
                "expected a table of settings, found a list",
            ));
        }
        self.doc.nested(|| {
            // No `size_hint` preallocation: the hint is the attacker's number.
            let mut items = Vec::new();
            while let Some(item) = seq.next_element_seed(self.child())? {
                items.push(item);
            }
            Ok(Value::from(items))
        })
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.doc.nested(|| {
            let mut dict = Dict::new();
            while let Some(key) = map.next_key::<String>()? {
                if dict.contains_key(&key) {
                    let mut path = self.doc.path.borrow().join(".");
                    if !path.is_empty() {
                        path.push('.');
                    }
                    return Err(de::Error::custom(format_args!(
                        "duplicate key `{path}{key}`"
                    )));
                }
                // The key waits on the path while its value is read (moved, not cloned).
                self.doc.path.borrow_mut().push(key);
                let value = map.next_value_seed(self.child());
                let key = self.doc.path.borrow_mut().pop().unwrap_or_default();
                dict.insert(key, value?);
            }
            Ok(Value::from(dict))
        })
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        // A YAML tag (`!name value`): figment nests the value under the tag's name.
        use de::VariantAccess;
        let (tag, variant) = data.variant::<String>()?;
        let value = self
            .doc
            .nested(|| variant.newtype_variant_seed(self.child()))?;
        Ok(figment::util::nest(&tag, value))
    }
}
