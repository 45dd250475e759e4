//! Files named by `#[reload(watch)]` fields: their content is part of the configuration, so a
//! change of content (the path unchanged) is a change that handlers apply.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::diff::{Change, ChangeKind};
use crate::hot_reload::HotReload;
use crate::source::hash_file;

/// The sha256 of each referenced file (`None`: unreadable), by resolved path.
pub(crate) type Hashes = BTreeMap<PathBuf, Option<String>>;

/// Where referenced files are found and how large they may be.
#[derive(Clone, Debug)]
pub(crate) struct Referenced {
    /// Relative paths are resolved against this (the source's directory).
    pub(crate) base: Option<PathBuf>,
    /// Larger files hash as unreadable.
    pub(crate) max_bytes: u64,
}

impl Referenced {
    /// The hashes of every file `config` names.
    pub(crate) fn hash_all<C: HotReload>(&self, config: &C) -> Hashes {
        config
            .watched_files()
            .into_iter()
            .map(|w| {
                let file = self.resolve(&w.file);
                let hash = hash_file(&file, self.max_bytes);
                (file, hash)
            })
            .collect()
    }

    /// Changes to files `candidate` names whose content differs from what the live configuration
    /// saw (`live`), and the new hashes.
    pub(crate) fn changes<C: HotReload>(
        &self,
        candidate: &C,
        live: &Hashes,
    ) -> (Vec<Change>, Hashes) {
        let mut changes = Vec::new();
        let mut hashes = BTreeMap::new();
        for watched in candidate.watched_files() {
            let file = self.resolve(&watched.file);
            let hash = hash_file(&file, self.max_bytes);
            if let Some(before) = live.get(&file) {
                if *before != hash {
                    changes.push(Change {
                        path: watched.field.clone(),
                        class: watched.class,
                        kind: ChangeKind::Modified,
                        old: Some(describe(&file, before.as_deref())),
                        new: Some(describe(&file, hash.as_deref())),
                        secret: false,
                    });
                }
            }
            hashes.insert(file, hash);
        }
        (changes, hashes)
    }

    fn resolve(&self, file: &Path) -> PathBuf {
        crate::handlers::resolve(self.base.as_deref(), file)
    }
}

fn describe(file: &Path, hash: Option<&str>) -> String {
    match hash {
        Some(hash) => format!(
            "{} (sha256 {})",
            file.display(),
            &hash[..12.min(hash.len())]
        ),
        None => format!("{} (unreadable)", file.display()),
    }
}
