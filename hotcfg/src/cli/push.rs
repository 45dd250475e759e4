//! `push`: check a file, plan it against the value in etcd, then write it with a compare-and-swap
//! on the revision planned against. The logic lives in [`PreparedPush`]; this file renders it.

use std::io::Write;
use std::path::Path;

use super::{Cli, EXIT_CONFLICT, EXIT_ETCD, EXIT_INVALID, EXIT_OK, EXIT_REJECTED};
use crate::etcd::{EtcdClient, EtcdOptions, EtcdSource, FleetStatus, PreparedPush, PushError};
use crate::hot_reload::HotConfig;
use crate::source::ChangeNote;

impl PushError {
    /// The exit code `push` ends with for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            PushError::Invalid(_) | PushError::Usage(_) => EXIT_INVALID,
            PushError::Conflict { .. } | PushError::Rollout(_) => EXIT_CONFLICT,
            PushError::Etcd(_) => EXIT_ETCD,
        }
    }
}

/// What the operator asked `push` to do with the prepared push.
pub(super) struct PushRequest<'a> {
    pub(super) file: &'a Path,
    pub(super) endpoints: &'a str,
    pub(super) access: &'a super::EtcdAccess,
    pub(super) key: &'a str,
    pub(super) expect_revision: Option<i64>,
    pub(super) dry_run: bool,
    /// Who pushes and why.
    pub(super) change: ChangeNote,
    /// The node whose override is pushed.
    pub(super) node: Option<&'a str>,
    /// A staged rollout: start one, or act on the running one.
    pub(super) waves: &'a super::WaveArgs,
}

impl<C: HotConfig> Cli<C> {
    pub(super) fn push(
        &self,
        request: &PushRequest<'_>,
        out: &mut dyn Write,
    ) -> std::io::Result<u8> {
        let key = request.key;
        if let Err(err) = request.change.check() {
            writeln!(out, "nothing pushed: --author/--reason: {err}")?;
            return Ok(super::EXIT_INVALID);
        }
        let client = match request
            .access
            .client(request.endpoints, EtcdOptions::default())
        {
            Ok(client) => client,
            Err(err) => {
                writeln!(out, "nothing pushed: {err}")?;
                return Ok(EXIT_ETCD);
            }
        };
        if request.waves.acts_on_running() {
            return super::waves::act_on_running(
                request.waves,
                &client,
                key,
                &request.change.author,
                out,
            );
        }
        let file = request.file;
        let prepared = match request.node {
            None => PreparedPush::prepare(&self.pipeline, file, &client, key),
            Some(node) => PreparedPush::prepare_for_node(&self.pipeline, file, &client, key, node),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared.with_change(request.change.clone()),
            Err(err) => {
                writeln!(out, "{err}")?;
                return Ok(err.exit_code());
            }
        };
        write_planned(&prepared, &client, out)?;
        if let Some(expected) = request.expect_revision {
            if expected != prepared.revision {
                let err = PushError::Conflict {
                    key: prepared.key.clone(),
                    planned: expected,
                    current: prepared.revision,
                };
                writeln!(out, "{err}")?;
                return Ok(EXIT_CONFLICT);
            }
        }
        if request.dry_run {
            if let Some(sizes) = &request.waves.waves {
                if let Some(code) = super::waves::show_plan(sizes, &client, key, out)? {
                    return Ok(code);
                }
            }
            writeln!(
                out,
                "dry run: nothing written (push with --expect-revision {} to write exactly \
                 over what was planned against)",
                prepared.revision
            )?;
            return Ok(plan_code(&prepared));
        }
        match &request.waves.waves {
            Some(sizes) => super::waves::start(request.waves, sizes, &prepared, &client, out),
            None => commit(&prepared, &client, request.file, out),
        }
    }
}

/// `EXIT_REJECTED` when running nodes would refuse the pushed value, else `EXIT_OK`.
fn plan_code(prepared: &PreparedPush) -> u8 {
    if prepared.rejection().is_some() {
        EXIT_REJECTED
    } else {
        EXIT_OK
    }
}

/// The revision planned against, the plan (or why there is none), and the nodes elsewhere.
fn write_planned(
    prepared: &PreparedPush,
    client: &EtcdClient,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let key = &prepared.key;
    if prepared.revision == 0 {
        writeln!(out, "planned against: etcd:{key} (absent)")?;
    } else {
        writeln!(
            out,
            "planned against: etcd:{key} at revision {}",
            prepared.revision
        )?;
    }
    if let Some(note) = &prepared.note {
        writeln!(out, "{note}")?;
        writeln!(out, "candidate: {}", prepared.identity)?;
    }
    if let Some(plan) = &prepared.plan {
        writeln!(out, "{plan}")?;
    }
    if prepared.revision > 0 && prepared.node.is_none() {
        note_nodes_elsewhere(client, key, prepared.revision, out)?;
    }
    Ok(())
}

/// Writes the push; warns when nodes under the reject policy will refuse it.
fn commit(
    prepared: &PreparedPush,
    client: &EtcdClient,
    file: &Path,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let revision = match prepared.commit(client) {
        Ok(revision) => revision,
        Err(err) => {
            writeln!(out, "{err}")?;
            return Ok(err.exit_code());
        }
    };
    writeln!(
        out,
        "pushed {} to {}: revision {revision}",
        file.display(),
        prepared.key
    )?;
    if let Some(change) = &prepared.change {
        writeln!(out, "by {change}")?;
    }
    if let Some(reason) = prepared.rejection() {
        writeln!(
            out,
            "warning: nodes running revision {} with the reject policy will refuse revision \
             {revision} ({reason}); it takes effect on each node at its next restart. \
             fleet-status shows what each node did.",
            prepared.revision
        )?;
    }
    Ok(plan_code(prepared))
}

/// Says which nodes do not run `revision`: they diff against their own live values, so the plan
/// (made against the value in etcd) may not be what they do.
fn note_nodes_elsewhere(
    client: &EtcdClient,
    key: &str,
    revision: i64,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let prefix = EtcdSource::for_key(client.clone(), key).default_status_prefix();
    let Ok(fleet) = FleetStatus::read(client, key, &prefix) else {
        return Ok(());
    };
    let elsewhere: Vec<String> = fleet
        .nodes
        .iter()
        .filter(|n| !(n.result.is_ok() && n.revision == Some(revision)))
        .map(|n| match n.revision {
            Some(r) => format!("{} ({} at revision {r})", n.node, n.result),
            None => format!("{} ({})", n.node, n.result),
        })
        .collect();
    if !elsewhere.is_empty() {
        writeln!(
            out,
            "note: {} of {} node(s) do not run revision {revision}: {}; each node diffs against \
             its own live configuration, so they may do otherwise than planned",
            elsewhere.len(),
            fleet.nodes.len(),
            elsewhere.join(", ")
        )?;
    }
    Ok(())
}
