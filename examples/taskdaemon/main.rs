//! taskdaemon: a small task daemon whose loops, queue and client connections survive every
//! configuration reload. The main example of hotcfg.
//!
//! ```text
//! cargo run --example taskdaemon                 # run on ./taskdaemon.toml (written if missing)
//! cargo run --example taskdaemon -- --audit-log audit.jsonl [--on-audit-failure continue]
//! cargo run --example taskdaemon -- --demo       # a scripted tour of hot reload, then exit
//! cargo run --example taskdaemon -- fields       # every setting and whether it reloads live
//! cargo run --example taskdaemon -- check FILE   # validate a file
//! cargo run --example taskdaemon -- plan --config CURRENT FILE [--json]
//! cargo run --example taskdaemon -- history --audit-log PATH [--verify]
//! ```
//!
//! With `--features hotcfg-examples/etcd`, a fleet on etcd:
//!
//! ```text
//! taskdaemon --etcd 127.0.0.1:2379 --key taskdaemon/config [--node-id ID]   # follow a key
//!   (a secured etcd: --etcd-ca FILE [--etcd-cert FILE --etcd-key FILE] [--etcd-user NAME
//!   --etcd-password-file FILE], on this and on the commands below; with --audit-log, a node
//!   that starts while etcd is down runs the last version it applied, stale until etcd answers)
//! taskdaemon push FILE --etcd 127.0.0.1:2379 --key taskdaemon/config [--dry-run] [--expect-revision REV]
//! taskdaemon fleet-status --etcd 127.0.0.1:2379 --key taskdaemon/config [--json]
//! ```

mod config;
mod daemon;
mod demo;
mod handlers;
mod http;
mod parked;
mod probation;
mod queue;
mod rate;
#[cfg(test)]
mod removal_race_tests;
mod store;
mod triggers;
mod users;
mod work;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hotcfg::RestartPolicy;

/// A task daemon whose configuration reloads live.
#[derive(Debug, Parser)]
#[command(name = "taskdaemon", version, about)]
struct Options {
    /// Configuration file (written from the embedded default when missing).
    #[arg(long, value_name = "PATH", default_value = "taskdaemon.toml")]
    config: PathBuf,
    /// Append every reload attempt to this JSON Lines audit log (with --etcd, it also lets the
    /// daemon start from its last-known-good version when etcd is down at start).
    #[arg(long = "audit-log", value_name = "PATH")]
    audit_log: Option<PathBuf>,
    /// What a failed audit-log write (a full disk) means: `fail-closed` rolls the reload back
    /// and replies `failed` (and the daemon does not start without its startup record);
    /// `continue` applies it with a warning in its event. Read at start only.
    #[arg(
        long = "on-audit-failure",
        value_name = "fail-closed|continue",
        default_value = "fail-closed",
        requires = "audit_log"
    )]
    on_audit_failure: OnAuditFailure,
    /// What to do with changes that need a restart: reject the reload, or defer them.
    #[arg(long, value_name = "reject|defer", default_value = "reject")]
    policy: RestartPolicy,
    /// Run a scripted tour of hot reload in a temporary directory, then exit.
    #[arg(long)]
    demo: bool,
    /// Follow this etcd cluster (comma-separated endpoints) instead of a file; needs --key.
    #[cfg(feature = "etcd")]
    #[arg(
        long,
        value_name = "ENDPOINTS",
        requires = "key",
        conflicts_with = "demo"
    )]
    etcd: Option<String>,
    /// The etcd key holding the configuration (TOML unless it ends in .yaml, .yml or .json).
    #[cfg(feature = "etcd")]
    #[arg(long, value_name = "KEY", requires = "etcd")]
    key: Option<String>,
    /// This node's name in the fleet's status reports (default HOSTNAME:PORT); when given, the
    /// node also layers its override KEY/nodes/ID over the key's value, when there is one.
    #[cfg(feature = "etcd")]
    #[arg(long = "node-id", value_name = "ID", requires = "etcd")]
    node_id: Option<String>,
    /// TLS and user for a secured etcd (--etcd-ca, --etcd-cert, --etcd-key, --etcd-user,
    /// --etcd-password-file).
    #[cfg(feature = "etcd")]
    #[command(flatten)]
    etcd_access: hotcfg::cli::EtcdAccess,
    #[command(flatten)]
    probation: probation::ProbationArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// `--on-audit-failure`: the library's [`hotcfg::AuditFailure`], spelled for the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OnAuditFailure {
    FailClosed,
    Continue,
}

impl From<OnAuditFailure> for hotcfg::AuditFailure {
    fn from(choice: OnAuditFailure) -> Self {
        match choice {
            OnAuditFailure::FailClosed => hotcfg::AuditFailure::FailClosed,
            OnAuditFailure::Continue => hotcfg::AuditFailure::Continue,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Operator(hotcfg::cli::Command),
}

fn main() -> ExitCode {
    let options = Options::parse();
    if let Some(Command::Operator(command)) = &options.command {
        // For `plan`, --config names the running configuration, as the command describes.
        let code = daemon::operator_cli(options.policy).run(command, &mut std::io::stdout());
        return ExitCode::from(code);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("taskdaemon: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = if options.demo {
        runtime.block_on(demo::run(options.policy))
    } else {
        runtime.block_on(daemon::run_until_stopped(daemon::Settings {
            config: options.config,
            initial_log_level: "info",
            audit_log: options.audit_log,
            audit_failure: options.on_audit_failure.into(),
            policy: options.policy,
            probation: options.probation,
            #[cfg(feature = "etcd")]
            etcd: options.etcd.map(|endpoints| daemon::EtcdSettings {
                endpoints,
                key: options.key.unwrap_or_default(),
                node_id: options.node_id,
                access: options.etcd_access,
            }),
        }))
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("taskdaemon: {err}");
            ExitCode::FAILURE
        }
    }
}
