//! The operator commands as a clap subcommand.

use std::path::PathBuf;

/// The operator commands.
#[derive(Clone, Debug, PartialEq, Eq, clap::Subcommand)]
pub enum Command {
    /// Validate a configuration file; errors name the file, line and key.
    Check {
        /// The file to check.
        file: PathBuf,
    },
    /// Dry run: what reloading FILE over the running configuration CURRENT would do.
    Plan {
        /// The configuration running now.
        #[arg(long = "config", value_name = "CURRENT")]
        current: PathBuf,
        /// The candidate.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List every configuration field: path, class (scope or restart), secret, docs.
    Fields,
    /// Print a JSON Schema of the configuration for editors: every field with its class (the
    /// scope that applies it live, or restart) and whether it is secret.
    #[cfg(feature = "schemars")]
    Schema,
    /// Show the reload history recorded in an audit log.
    History {
        /// The JSON Lines audit log.
        #[arg(long = "audit-log", value_name = "PATH")]
        audit_log: PathBuf,
        /// Check the hash chain and report the first broken line.
        #[arg(long)]
        verify: bool,
    },
    /// Put back into the configuration file the content generation GEN applied (from its
    /// snapshot beside the audit log), after checking it and planning it against the file's
    /// current content; a process watching the file applies it as an edit.
    Rollback {
        /// The generation whose content to restore (as `history` lists it).
        #[arg(long = "to", value_name = "GEN")]
        to: u64,
        /// The configuration file to write back.
        #[arg(long = "config", value_name = "FILE")]
        config: PathBuf,
        /// The JSON Lines audit log (its snapshots are in `<name>.snapshots` beside it).
        #[arg(long = "audit-log", value_name = "PATH")]
        audit_log: PathBuf,
        /// Check and plan only; write nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Print the plan as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Push FILE to an etcd key: check it, plan it against the value there, then write it only if
    /// the key is still at the revision planned against.
    #[cfg(feature = "etcd")]
    Push {
        /// The configuration file to push (not read with --resume or --abort).
        // Empty when not given: clap's own `PathBuf` parser refuses an empty value, default
        // included, which made `push --resume` and `push --abort` fail to parse.
        #[arg(
            required_unless_present_any = ["resume", "abort"],
            default_value = "",
            value_parser = clap::builder::TypedValueParser::map(
                clap::builder::OsStringValueParser::new(),
                PathBuf::from
            )
        )]
        file: PathBuf,
        /// etcd endpoints, comma-separated (`127.0.0.1:2379,10.0.0.2:2379`).
        #[arg(long = "etcd", value_name = "ENDPOINTS")]
        etcd: String,
        /// TLS and user for a secured etcd.
        #[command(flatten)]
        access: crate::cli::EtcdAccess,
        /// The key the fleet follows.
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Write only if the key is still at this revision (the one a dry run showed).
        #[arg(long = "expect-revision", value_name = "REVISION")]
        expect_revision: Option<i64>,
        /// Check and plan against the value in etcd; write nothing.
        #[arg(long = "dry-run")]
        dry_run: bool,
        /// Why: recorded with the value, in every node's audit record and in fleet-status.
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// Who pushes (default USER@HOST), recorded with the reason.
        #[arg(long, value_name = "NAME")]
        author: Option<String>,
        /// Push FILE as this node's override (KEY/nodes/ID), layered over the shared value.
        #[arg(long, value_name = "ID", conflicts_with_all = ["waves", "resume", "abort"])]
        node: Option<String>,
        /// A staged rollout: --waves, --wave-timeout, --resume, --abort.
        #[command(flatten)]
        waves: crate::cli::WaveArgs,
    },
    /// Every live node's result for an etcd key: revision, result, pending restart, error.
    #[cfg(feature = "etcd")]
    FleetStatus {
        /// etcd endpoints, comma-separated.
        #[arg(long = "etcd", value_name = "ENDPOINTS")]
        etcd: String,
        /// TLS and user for a secured etcd.
        #[command(flatten)]
        access: crate::cli::EtcdAccess,
        /// The key the fleet follows (a prefix when it ends with `/`).
        #[arg(long, value_name = "KEY")]
        key: String,
        /// Where the nodes report (default `<KEY>/status/`; for a prefix `<PREFIX>.status/`).
        #[arg(long = "status-prefix", value_name = "PREFIX")]
        status_prefix: Option<String>,
        /// The node ids that should report, comma-separated: one without a report is missing.
        #[arg(long, value_name = "NODES", value_delimiter = ',')]
        expect: Vec<String>,
        /// At least this many nodes should report.
        #[arg(long = "expect-count", value_name = "N")]
        expect_count: Option<usize>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[cfg(all(test, feature = "etcd"))]
mod tests {
    use clap::Parser;

    use super::Command;

    #[derive(Parser)]
    struct Args {
        #[command(subcommand)]
        command: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, String> {
        let base = ["app", "push", "--etcd", "127.0.0.1:2379", "--key", "k"];
        let all = base.iter().chain(args);
        Args::try_parse_from(all)
            .map(|a| a.command)
            .map_err(|e| e.to_string())
    }

    /// Found by running `taskdaemon push --resume` as a process: clap refused the empty default
    /// of FILE ("a value is required for '[FILE]'"), so a rollout could not be resumed or
    /// aborted from the command line.
    #[test]
    fn push_resume_and_abort_need_no_file_and_a_push_needs_one() {
        for act in ["--resume", "--abort"] {
            let command = parse(&[act]).unwrap_or_else(|e| panic!("{act}: {e}"));
            let Command::Push { file, .. } = command else {
                panic!("{act}: not a push");
            };
            assert!(file.as_os_str().is_empty(), "{act}: {file:?}");
        }
        let Command::Push { file, .. } = parse(&["new.toml"]).unwrap() else {
            panic!("not a push");
        };
        assert_eq!(file, std::path::Path::new("new.toml"));
        let refused = parse(&[]).expect_err("a plain push needs FILE");
        assert!(
            refused.contains("<FILE>") || refused.contains("[FILE]"),
            "{refused}"
        );
    }
}
