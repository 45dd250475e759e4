//! `rollback --to GEN`: puts back into the configuration file the content generation GEN applied,
//! read from its snapshot beside the audit log, after checking it with the same [`Pipeline`] and
//! planning it against the file's current content. The command never talks to a running
//! process: the process's watcher sees the file change and applies it as any edit (its audit
//! record says trigger `file`, with the restored content's sha256, the one `history` shows for
//! GEN). To have the process record a `revert` trigger, call
//! [`Reloader::revert_to`](crate::Reloader::revert_to) in it (the task daemon's
//! `POST /api/revert`).
//!
//! [`Pipeline`]: crate::Pipeline

use std::io::Write;
use std::path::Path;

use super::{Cli, EXIT_INVALID, EXIT_OK, EXIT_REJECTED};
use crate::audit::Snapshots;
use crate::hot_reload::HotConfig;
use crate::plan::{Decision, Plan};
use crate::source::{FileSource, Source, SourceContent};

/// What `rollback` was asked.
pub(super) struct RollbackRequest<'a> {
    pub(super) to: u64,
    pub(super) file: &'a Path,
    pub(super) audit_log: &'a Path,
    pub(super) dry_run: bool,
    pub(super) json: bool,
}

impl<C: HotConfig> Cli<C> {
    pub(super) fn rollback(
        &self,
        request: &RollbackRequest<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<u8> {
        let snapshots = Snapshots::beside(request.audit_log);
        let content = match snapshots.find(request.audit_log, request.to) {
            Ok(found) => found.content,
            Err(err) => {
                writeln!(out, "nothing restored: {err}")?;
                return Ok(EXIT_INVALID);
            }
        };
        let refused = match self.plan_rollback(request, &content, out)? {
            Some(plan) => {
                if request.json {
                    let text =
                        serde_json::to_string_pretty(&plan).map_err(std::io::Error::other)?;
                    writeln!(out, "{text}")?;
                } else {
                    writeln!(out, "{plan}")?;
                }
                match &plan.decision {
                    Decision::Invalid { .. } => Some(EXIT_INVALID),
                    Decision::Reject { .. } => Some(EXIT_REJECTED),
                    _ => None,
                }
            }
            None => match self.pipeline.load(&content) {
                Ok(_) => {
                    writeln!(out, "ok: {} is valid", content.identity)?;
                    None
                }
                Err(err) => {
                    writeln!(out, "{err}")?;
                    Some(EXIT_INVALID)
                }
            },
        };
        if let Some(code) = refused {
            writeln!(
                out,
                "nothing restored: generation {}'s content would be refused today",
                request.to
            )?;
            return Ok(code);
        }
        if request.dry_run {
            writeln!(out, "dry run: {} not written", request.file.display())?;
            return Ok(EXIT_OK);
        }
        if let Err(err) = FileSource::new(request.file).restore(&content, None) {
            writeln!(out, "nothing restored: {err}")?;
            return Ok(EXIT_INVALID);
        }
        writeln!(
            out,
            "restored {} to the content of generation {} (sha256 {}): a process watching it \
             applies it as an edit of the file",
            request.file.display(),
            request.to,
            &content.identity.sha256[..12.min(content.identity.sha256.len())]
        )?;
        Ok(EXIT_OK)
    }

    /// The plan of `content` against the file's current content; `None` when the file cannot
    /// be used (the reason to roll back, maybe): `content` then replaces it whole.
    fn plan_rollback(
        &self,
        request: &RollbackRequest<'_>,
        content: &SourceContent,
        out: &mut dyn Write,
    ) -> std::io::Result<Option<Plan>> {
        match self.load(&request.file.to_path_buf()) {
            Ok((live, _)) => Ok(Some(self.pipeline.plan(
                &live,
                Ok(content.clone()),
                |_| Vec::new(),
                |order| order,
            ))),
            Err(err) => {
                writeln!(
                    out,
                    "the current file cannot be used ({err}); the rollback replaces it whole"
                )?;
                Ok(None)
            }
        }
    }
}
