//! The scope handlers: how the running daemon follows each part of its configuration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hotcfg::{ApplyContext, BoxError, ScopeHandler};

use crate::config::TaskDaemonConfig;
use crate::work::Work;

type Cx<'a> = ApplyContext<'a, TaskDaemonConfig>;

/// `limits`: resizes the concurrency slots and the queue; queued items are never dropped.
pub struct LimitsHandler {
    pub work: Arc<Work>,
    pub rate: Arc<crate::rate::RateLimiter>,
}

impl LimitsHandler {
    fn set(&self, limits: &crate::config::Limits) {
        self.work.slots.set_max(limits.max_concurrent);
        self.work.queue.set_capacity(limits.queue_capacity);
        self.rate.set_per_second(limits.submits_per_second);
    }
}

impl ScopeHandler<TaskDaemonConfig> for LimitsHandler {
    fn apply(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        self.set(&cx.new.limits);
        tracing::info!(
            max_concurrent = cx.new.limits.max_concurrent,
            queue_capacity = cx.new.limits.queue_capacity,
            queued = self.work.queue.len(),
            "limits applied"
        );
        Ok(())
    }

    fn rollback(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        self.set(&cx.old.limits);
        Ok(())
    }
}

/// `loops`: new definitions take effect at each loop's next iteration; removing a type that
/// any job uses (being submitted, queued, starting, running or parked: its claim, see
/// [`crate::users`]) is vetoed by `prepare` and, should a submit claim it after that, fails
/// `apply`, which closes the removed types to new submits in the same step.
pub struct LoopsHandler {
    pub work: Arc<Work>,
}

impl LoopsHandler {
    /// The loop types `new` removes.
    fn removed<'c>(old: &'c TaskDaemonConfig, new: &TaskDaemonConfig) -> Vec<&'c str> {
        old.loops
            .keys()
            .filter(|name| !new.loops.contains_key(*name))
            .map(String::as_str)
            .collect()
    }

    /// Why `name` may not be removed while `claims` jobs hold it.
    fn in_use(&self, name: &str, claims: usize) -> String {
        let users = self.work.users_of(name);
        let mut why = format!(
            "loop type `{name}` is in use by {} running loop(s) and {} queued item(s)",
            users.running, users.queued
        );
        let others = claims.saturating_sub(users.running + users.queued);
        if others > 0 {
            why.push_str(&format!("; {others} more being submitted or started"));
        }
        why
    }
}

impl ScopeHandler<TaskDaemonConfig> for LoopsHandler {
    /// Changes nothing (the plan endpoint's dry run calls it too).
    fn prepare(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        for name in Self::removed(cx.old, cx.new) {
            let claims = self.work.users.count(name);
            if claims > 0 {
                return Err(self.in_use(name, claims).into());
            }
        }
        Ok(())
    }

    fn apply(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        self.work
            .users
            .close(&Self::removed(cx.old, cx.new))
            .map_err(|(name, claims)| self.in_use(&name, claims))?;
        tracing::info!(
            types = cx.new.loops.len(),
            "loop definitions updated; running loops use them from their next iteration"
        );
        Ok(())
    }

    fn rollback(&self, _cx: &Cx<'_>) -> Result<(), BoxError> {
        self.work.users.reopen();
        Ok(())
    }
}

/// `templates`: `prepare` reads the template files (an unreadable file vetoes the reload) and
/// keeps nothing, so the plan endpoint's dry run changes nothing; `apply` reads them again and
/// swaps them in (a file unreadable by then fails the apply, which rolls back); rollback puts the
/// old ones back.
pub struct TemplatesHandler {
    pub work: Arc<Work>,
    pub base_dir: PathBuf,
    pub previous: Mutex<Option<Arc<BTreeMap<String, String>>>>,
}

/// Reads template files, by file stem.
pub fn read_template_files(
    base: &Path,
    files: &[PathBuf],
) -> Result<BTreeMap<String, String>, String> {
    let mut templates = BTreeMap::new();
    for file in files {
        let path = base.join(file);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read template file {}: {e}", path.display()))?;
        let stem = file
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        templates.insert(stem, text.trim_end().to_string());
    }
    Ok(templates)
}

impl ScopeHandler<TaskDaemonConfig> for TemplatesHandler {
    fn prepare(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        read_template_files(&self.base_dir, &cx.new.templates.template_files)?;
        Ok(())
    }

    fn apply(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        let files = read_template_files(&self.base_dir, &cx.new.templates.template_files)?;
        let old = self.work.file_templates.swap(Arc::new(files));
        *self.previous.lock().unwrap() = Some(old);
        tracing::info!("templates applied; loops render them from their next iteration");
        Ok(())
    }

    fn rollback(&self, _cx: &Cx<'_>) -> Result<(), BoxError> {
        if let Some(old) = self.previous.lock().unwrap().take() {
            self.work.file_templates.store(old);
        }
        Ok(())
    }
}

/// `monitoring`: changes the log level live; a status file whose directory does not exist fails
/// the apply (and so rolls back the scopes applied before it).
pub struct MonitoringHandler {
    pub set_log_level: crate::daemon::LevelSetter,
    pub base_dir: PathBuf,
}

impl ScopeHandler<TaskDaemonConfig> for MonitoringHandler {
    fn apply(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        if let Some(file) = &cx.new.monitoring.status_file {
            let path = self.base_dir.join(file);
            let dir = path.parent().unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(
                    format!("status file directory {} does not exist", dir.display()).into(),
                );
            }
        }
        (self.set_log_level)(&cx.new.monitoring.log_level)?;
        tracing::info!(log_level = %cx.new.monitoring.log_level, "monitoring applied");
        Ok(())
    }

    fn rollback(&self, cx: &Cx<'_>) -> Result<(), BoxError> {
        (self.set_log_level)(&cx.old.monitoring.log_level)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_CONFIG;

    fn with_template_files(base: &TaskDaemonConfig, files: &[&str]) -> TaskDaemonConfig {
        let mut config = base.clone();
        config.templates.template_files = files.iter().map(PathBuf::from).collect();
        config
    }

    /// The plan endpoint's dry run calls `prepare` without `apply`: what it read must not be
    /// what a later `apply` installs.
    #[test]
    fn the_templates_prepare_keeps_nothing_for_apply() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("planned.txt"), "from a dry run").unwrap();
        std::fs::write(dir.path().join("applied.txt"), "from the reload").unwrap();
        let handler = TemplatesHandler {
            work: Work::new(),
            base_dir: dir.path().to_path_buf(),
            previous: Mutex::new(None),
        };
        let live: TaskDaemonConfig = toml::from_str(DEFAULT_CONFIG).unwrap();
        let planned = with_template_files(&live, &["planned.txt"]);
        let applied = with_template_files(&live, &["applied.txt"]);
        let missing = with_template_files(&live, &["missing.txt"]);
        let cx = |new| ApplyContext {
            scope: "templates",
            old: &live,
            new,
            changes: &[],
            generation: 2,
            config_dir: Some(dir.path()),
        };

        handler.prepare(&cx(&planned)).unwrap();
        let veto = handler.prepare(&cx(&missing)).unwrap_err().to_string();
        assert!(veto.contains("cannot read template file"), "{veto}");
        assert!(handler.work.file_templates.load().is_empty());
        handler.apply(&cx(&applied)).unwrap();

        let installed = handler.work.file_templates.load();
        assert_eq!(
            installed.keys().collect::<Vec<_>>(),
            ["applied"],
            "{installed:?}"
        );
        assert_eq!(installed["applied"], "from the reload");
    }
}
