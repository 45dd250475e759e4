//! `push --waves`, `push --resume`, `push --abort`: a staged rollout from the command line. The
//! logic lives in [`Rollout`]; this file parses the flags and renders the outcome.

use std::io::Write;
use std::time::Duration;

use super::{EXIT_HALTED, EXIT_INVALID, EXIT_OK};
use crate::etcd::{
    EtcdClient, NodeOutcome, PreparedPush, PushError, Rollout, RolloutOutcome, RolloutPhase,
    WaveSize,
};

/// The default time each wave has to pass.
const DEFAULT_WAVE_TIMEOUT: Duration = Duration::from_secs(60);

/// The flags of `push` for a staged rollout. Flatten it into a clap command.
///
/// ```
/// use clap::Parser;
/// use hotcfg::cli::WaveArgs;
///
/// #[derive(clap::Parser)]
/// struct Args {
///     #[command(flatten)]
///     waves: WaveArgs,
/// }
///
/// let args = Args::parse_from(["push", "--waves", "1,25%,100%", "--wave-timeout", "90s"]);
/// assert_eq!(args.waves.waves.as_deref(), Some("1,25%,100%"));
/// assert_eq!(args.waves.wave_timeout, Some(std::time::Duration::from_secs(90)));
/// assert!(Args::try_parse_from(["push", "--resume", "--abort"]).is_err());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, clap::Args)]
pub struct WaveArgs {
    /// Roll out in waves, each reaching this many of the nodes reporting now, in all: counts or
    /// percentages (`1,25%,100%`); a wave passes when its nodes applied the candidate and stayed
    /// healthy through their probation; any refusal, revert or timeout halts.
    #[arg(long, value_name = "SIZES", conflicts_with_all = ["resume", "abort"])]
    pub waves: Option<String>,
    /// The time each wave has to pass (default 60s).
    #[arg(long = "wave-timeout", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub wave_timeout: Option<Duration>,
    /// Continue the running rollout of KEY from its current wave (FILE is not read).
    #[arg(long, conflicts_with = "abort")]
    pub resume: bool,
    /// Stop the running rollout of KEY: every node returns to the stable value (FILE is not
    /// read).
    #[arg(long)]
    pub abort: bool,
}

impl WaveArgs {
    /// Whether `push` acts on a rollout already running rather than on FILE.
    pub fn acts_on_running(&self) -> bool {
        self.resume || self.abort
    }

    fn timeout(&self) -> Duration {
        self.wave_timeout.unwrap_or(DEFAULT_WAVE_TIMEOUT)
    }
}

/// `push --waves`: starts a rollout of `prepared` and runs it to its end.
pub(super) fn start(
    args: &WaveArgs,
    sizes: &str,
    prepared: &PreparedPush,
    client: &EtcdClient,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let sizes = match WaveSize::parse_list(sizes) {
        Ok(sizes) => sizes,
        Err(err) => {
            writeln!(out, "nothing pushed: --waves: {err}")?;
            return Ok(EXIT_INVALID);
        }
    };
    match Rollout::start(prepared, client, &sizes, args.timeout()) {
        Ok(mut rollout) => {
            let state = rollout.state();
            writeln!(
                out,
                "rollout {} of {}: {} wave(s) over {} node(s), candidate at revision {}",
                state.id,
                prepared.key,
                state.waves.len(),
                state.waves.iter().map(Vec::len).sum::<usize>(),
                rollout.candidate_revision()
            )?;
            run(&mut rollout, out)
        }
        Err(err) => {
            writeln!(out, "{err}")?;
            Ok(err.exit_code())
        }
    }
}

/// `push --waves SIZES --dry-run`: the waves a rollout would make now; `Some(code)` when they
/// cannot be made.
pub(super) fn show_plan(
    sizes: &str,
    client: &EtcdClient,
    key: &str,
    out: &mut dyn Write,
) -> std::io::Result<Option<u8>> {
    let waves = WaveSize::parse_list(sizes)
        .map_err(PushError::Usage)
        .and_then(|sizes| Rollout::plan(client, key, &sizes));
    match waves {
        Ok(waves) => {
            for (i, wave) in waves.iter().enumerate() {
                writeln!(
                    out,
                    "wave {} of {}: {}",
                    i + 1,
                    waves.len(),
                    wave.join(", ")
                )?;
            }
            Ok(None)
        }
        Err(err) => {
            writeln!(out, "{err}")?;
            Ok(Some(err.exit_code()))
        }
    }
}

/// `push --resume` or `push --abort` of the running rollout of `key`.
pub(super) fn act_on_running(
    args: &WaveArgs,
    client: &EtcdClient,
    key: &str,
    by: &str,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let mut rollout = match Rollout::find(client, key, args.timeout()) {
        Ok(rollout) => rollout,
        Err(err) => {
            writeln!(out, "{err}")?;
            return Ok(err.exit_code());
        }
    };
    if args.resume {
        writeln!(
            out,
            "resuming rollout {} of {key} at {}",
            rollout.state().id,
            rollout.state().progress()
        )?;
        return run(&mut rollout, out);
    }
    let reason = format!("aborted by {by}");
    let outcome = rollout
        .halt(RolloutPhase::Aborted, &reason)
        .map(|outcomes| RolloutOutcome::Halted { reason, outcomes });
    finish(&rollout, outcome, out)
}

fn run(rollout: &mut Rollout, out: &mut dyn Write) -> std::io::Result<u8> {
    let mut failed_write = None;
    let outcome = rollout.run(&mut |line| {
        if let Err(err) = writeln!(out, "{line}").and_then(|()| out.flush()) {
            failed_write.get_or_insert(err);
        }
    });
    if let Some(err) = failed_write {
        return Err(err);
    }
    finish(rollout, outcome, out)
}

/// How the rollout ended, the per-node table, and the exit code.
fn finish(
    rollout: &Rollout,
    outcome: Result<RolloutOutcome, PushError>,
    out: &mut dyn Write,
) -> std::io::Result<u8> {
    let id = &rollout.state().id;
    let (outcomes, code) = match outcome {
        Ok(RolloutOutcome::Done { revision, outcomes }) => {
            writeln!(
                out,
                "rollout {id} done: the candidate is the value of the key at revision {revision}"
            )?;
            (outcomes, EXIT_OK)
        }
        Ok(RolloutOutcome::Halted { reason, outcomes }) => {
            writeln!(
                out,
                "rollout {id} {reason}; every node returns to the stable revision {}",
                rollout.state().stable_revision
            )?;
            (outcomes, EXIT_HALTED)
        }
        Err(err) => {
            writeln!(out, "{err}")?;
            return Ok(err.exit_code());
        }
    };
    write_table(&outcomes, out)?;
    Ok(code)
}

/// The per-node table: node, wave, result, reason.
fn write_table(outcomes: &[NodeOutcome], out: &mut dyn Write) -> std::io::Result<()> {
    let width = outcomes
        .iter()
        .map(|o| o.node.len())
        .max()
        .unwrap_or(0)
        .max(4);
    writeln!(out, "{:width$}  WAVE  {:12}  REASON", "NODE", "RESULT")?;
    for o in outcomes {
        writeln!(
            out,
            "{:width$}  {:<4}  {:12}  {}",
            o.node,
            o.wave,
            o.result,
            o.reason.as_deref().unwrap_or("-")
        )?;
    }
    Ok(())
}
