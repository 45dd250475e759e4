//! [`MemorySource`]: configuration text held by the program itself.

use std::sync::{Arc, Mutex, PoisonError};

use crate::load::Format;
use crate::source::{Source, SourceContent, SourceError, SourceErrorKind};

/// Configuration text held in memory: for tests, benchmarks, and programs that fetch their
/// configuration themselves. Clones share the text; [`set`](MemorySource::set) changes what the
/// next read returns (then trigger a reload).
///
/// ```
/// use hotcfg::{Format, HotReload, MemorySource, ReloadResult, Reloader};
///
/// #[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, HotReload)]
/// struct Config {
///     #[reload(scope = "limits")]
///     workers: u32,
/// }
///
/// let source = MemorySource::new("app.toml", Format::Toml, "workers = 2");
/// let reloader = Reloader::<Config>::builder(source.clone()).build()?;
/// source.set("workers = 4");
/// assert!(matches!(reloader.reload_now().result, ReloadResult::Applied { .. }));
/// assert_eq!(reloader.handle().load().workers, 4);
/// # Ok::<(), hotcfg::BuildError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemorySource {
    name: String,
    format: Format,
    text: Arc<Mutex<String>>,
    /// Set by `fail_reads`: every read fails so, until the next `set`.
    failure: Arc<Mutex<Option<SourceError>>>,
}

impl MemorySource {
    /// Text in `format`, named `name` in errors and in its identity.
    pub fn new(name: impl Into<String>, format: Format, text: impl Into<String>) -> Self {
        MemorySource {
            name: name.into(),
            format,
            text: Arc::new(Mutex::new(text.into())),
            failure: Arc::default(),
        }
    }

    /// Replaces the text every clone reads from now on (and ends [`fail_reads`](MemorySource::fail_reads)).
    pub fn set(&self, text: impl Into<String>) {
        *self.text.lock().unwrap_or_else(PoisonError::into_inner) = text.into();
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Makes every read fail with an error of `kind` saying `problem`, until the next
    /// [`set`](MemorySource::set): a store that is down ([`SourceErrorKind::Unavailable`]), a
    /// key that is gone.
    pub fn fail_reads(&self, kind: SourceErrorKind, problem: impl Into<String>) {
        let error = SourceError::new(&self.name, kind, problem);
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    /// The text now.
    pub fn text(&self) -> String {
        self.text
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Source for MemorySource {
    fn read(&self) -> Result<SourceContent, SourceError> {
        if let Some(error) = &*self.failure.lock().unwrap_or_else(PoisonError::into_inner) {
            return Err(error.clone());
        }
        Ok(SourceContent::single(&self.name, self.format, self.text()))
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    /// Sets the text to the one layer of `content`.
    fn restore(
        &self,
        content: &SourceContent,
        _live: Option<&crate::source::SourceIdentity>,
    ) -> Result<(), SourceError> {
        match content.layers.as_slice() {
            [layer] if layer.format == self.format => {
                self.set(layer.text.clone());
                Ok(())
            }
            _ => Err(SourceError::new(
                &self.name,
                SourceErrorKind::Unsupported,
                format!(
                    "cannot restore {} layer(s) into one {} text",
                    content.layers.len(),
                    self.format
                ),
            )),
        }
    }
}
