//! The table `fleet-status` prints: [`FleetStatus`]'s `Display`, a row per report and per
//! missing node, the overrides, and the verdict.

use std::fmt;

use super::status::{FleetStatus, NodeStatus};

impl FleetStatus {
    /// The table's rows: one per report, then one per missing node.
    fn rows(&self) -> Vec<[String; 6]> {
        let mut rows: Vec<[String; 6]> = self.nodes.iter().map(row).collect();
        // The candidate of a rollout has a revision of its own: say which it is.
        let candidate = self.rollout.as_ref().map(|r| r.candidate_revision);
        for (row, node) in rows.iter_mut().zip(&self.nodes) {
            if candidate.is_some_and(|c| c > 0 && node.revision == Some(c)) {
                row[1] += " (candidate)";
            }
        }
        for id in self.missing() {
            rows.push([
                id.to_string(),
                "-".into(),
                "missing".into(),
                "-".into(),
                "-".into(),
                "expected, but no report (not started, stopped, or its lease expired)".into(),
            ]);
        }
        rows
    }

    /// The last line: counts and the verdict.
    fn summary(&self) -> String {
        let current = self.nodes.iter().filter(|n| self.is_current(n)).count();
        let mut text = format!(
            "{} node(s); {current} applied the current revision",
            self.nodes.len()
        );
        let not_following = self.nodes.iter().filter(|n| !n.is_following()).count();
        if not_following > 0 {
            text += &format!("; {not_following} not watching the key");
        }
        let stale = self.nodes.iter().filter(|n| n.stale).count();
        if stale > 0 {
            text += &format!("; {stale} stale");
        }
        let missing = self.missing().len();
        if missing > 0 {
            text += &format!("; {missing} missing");
        }
        if let Some(count) = self.expected.count.filter(|c| self.nodes.len() < *c) {
            text += &format!("; {} of {count} expected node(s) report", self.nodes.len());
        }
        text += if self.converged() {
            "; converged"
        } else {
            "; not converged"
        };
        text
    }
}

/// One report as a table row.
fn row(n: &NodeStatus) -> [String; 6] {
    let pending = if n.pending_restart.is_empty() {
        "-".to_string()
    } else {
        n.pending_restart.join(",")
    };
    let mut errors = Vec::new();
    if n.stale {
        errors.push("stale: started from its last-known-good version, key not read since".into());
    }
    if let Some(error) = &n.error {
        let mut lines = error.lines();
        let first = lines.next().unwrap_or("").to_string();
        let more = lines.count();
        errors.push(if more > 0 {
            format!("{first} (+{more} more lines)")
        } else {
            first
        });
    }
    let watch = match &n.watch {
        None => "-".to_string(),
        Some(health) => {
            if !health.is_watching() {
                let why = health.last_error.as_deref().unwrap_or("");
                let why = why.lines().next().unwrap_or("");
                errors.push(
                    format!("watch {health}: {why}")
                        .trim_end_matches([':', ' '])
                        .to_string(),
                );
            }
            health.state.to_string()
        }
    };
    let error = if errors.is_empty() {
        "-".to_string()
    } else {
        errors.join("; ")
    };
    [
        n.node.clone(),
        n.revision.map_or("-".to_string(), |r| r.to_string()),
        n.result.to_string(),
        watch,
        pending,
        error,
    ]
}

impl fmt::Display for FleetStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.key_revision, &self.change) {
            (Some(rev), Some(change)) => {
                writeln!(f, "key {} at revision {rev}, pushed by {change}", self.key)?
            }
            (Some(rev), None) => writeln!(f, "key {} at revision {rev}", self.key)?,
            (None, _) => writeln!(f, "key {} does not exist", self.key)?,
        }
        let rows = self.rows();
        if rows.is_empty() {
            return write!(f, "no node reports under {}", self.status_prefix);
        }
        let header = [
            "NODE",
            "REVISION",
            "RESULT",
            "WATCH",
            "PENDING RESTART",
            "ERROR",
        ];
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(cell.len());
            }
        }
        let line = |f: &mut fmt::Formatter<'_>, cells: [&str; 6]| -> fmt::Result {
            for (cell, width) in cells.iter().zip(widths).take(5) {
                write!(f, "{cell:width$}  ")?;
            }
            writeln!(f, "{}", cells[5])
        };
        line(f, header)?;
        for row in &rows {
            line(f, row.each_ref().map(String::as_str))?;
        }
        if !self.overrides.is_empty() {
            let list: Vec<String> = self
                .overrides
                .iter()
                .map(|(node, revision)| format!("{node} (revision {revision})"))
                .collect();
            writeln!(f, "overrides: {}", list.join(", "))?;
        }
        if let Some(rollout) = &self.rollout {
            writeln!(f, "{rollout}")?;
        }
        write!(f, "{}", self.summary())
    }
}
