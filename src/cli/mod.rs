//! The command line: the clap definitions, and one file per command that
//! only translates: arguments into calls to the library (`scenario`,
//! `sweep`, `harness`, `investigate`, `measure`, the `live` crate), and
//! results into output and an exit code. [`args`] holds what several
//! commands share.
//!
//! Exit codes: 0 nothing violated; 1 a violation, a panic or a blown step
//! budget; 2 bad usage, a bad scenario file or unreachable infrastructure.

pub mod args;
pub mod bench;
pub mod compare;
pub mod list;
pub mod live;
pub mod merge;
pub mod replay;
pub mod run;
pub mod shrink;
pub mod sweep;

use std::io;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use domain::{Bug, Strategy};

use args::{
    parse_bug, parse_scale, parse_strategies, parse_strategy, Format, ListWhat, ReplayFormat,
    ReportFormat, SeedRange, StrategyList, Target,
};
use run::{Print, Show};

#[derive(Parser, Debug)]
#[command(
    name = "sagasim",
    version,
    about = "Deterministic simulation and chaos testing of saga-based order systems"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run one seed and report how it ended.
    Run {
        #[command(flatten)]
        target: Target,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print every step.
        #[arg(long)]
        trace: bool,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Write a failure file here if the seed fails (default under `CI`:
        /// `failures/`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run many seeds on every core; fail if any violates an invariant,
    /// printing how to reproduce each failing seed as it fails.
    Sweep(sweep::SweepArgs),
    /// Combine the results of a sharded sweep (`sweep --shard K/N --format
    /// json`) into the result of the whole sweep.
    Merge {
        /// Shard results, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: merge::MergeFormat,
        /// Write the report here (atomically) instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Rerun one seed exactly, printing its trace.
    Replay {
        /// A failure file (written by `run` or `sweep --out`): replays its
        /// inline scenario, strategy, bug and seed, and says whether the
        /// same violation and digest came back.
        #[arg(conflicts_with_all = [
            "seed", "scenario", "strategy", "bug", "fault_scale", "no_swarm", "schedule",
            "pct_depth", "pct_window_us",
        ])]
        file: Option<PathBuf>,
        #[command(flatten)]
        target: Target,
        #[arg(long, required_unless_present = "file")]
        seed: Option<u64>,
        /// text: the steps, then the result; json: a JSON line per step,
        /// then the result as the last line; mermaid: a sequence diagram.
        #[arg(long, value_enum, default_value = "text")]
        format: ReplayFormat,
        /// Keep only the steps about this order (and node and link faults).
        #[arg(long)]
        order: Option<u32>,
    },
    /// Shrink a failure file: the fewest faults, then the smallest workload
    /// (orders, users, products, fault phase), that still violate the same
    /// invariant; writes a failure file `replay` reproduces.
    Shrink {
        file: PathBuf,
        /// Where to write the shrunk file (default: beside it, `.shrunk.json`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Measure strategies against each other on the same seeds: outcomes,
    /// latency, consistency, work, contention, exposure, availability,
    /// business cost and violations. A violation is data here: the exit
    /// code is 0 unless the usage is wrong.
    Compare {
        #[arg(long, default_value = "default")]
        scenario: String,
        /// Comma-separated strategy names, or `all`.
        #[arg(long, default_value = "all", value_parser = parse_strategies)]
        strategies: StrategyList,
        /// N (seeds 0..N) or A..B; default: 200.
        #[arg(long, default_value = "200")]
        seeds: SeedRange,
        /// Worker threads (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        /// Fault scales for the intensity curves, comma-separated (e.g.
        /// 0,0.5,1,2,4); 1, the scenario as written, is always measured.
        #[arg(long, value_delimiter = ',', value_parser = parse_scale)]
        fault_scale: Vec<f64>,
        #[arg(long, value_enum, default_value = "text")]
        format: ReportFormat,
        /// Write the report here (atomically) instead of to standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Measure speed: events/s per core against a bare event loop, seeds/s,
    /// per-step invariant cost, scaling over cores.
    Bench {
        /// Scenarios to measure, comma-separated (default: default and
        /// saga-bench, the peer's workload).
        #[arg(long, value_delimiter = ',', default_value = "default,saga-bench")]
        scenario: Vec<String>,
        #[arg(long, default_value = "choreography", value_parser = parse_strategy)]
        strategy: Strategy,
        /// Seeds per measurement.
        #[arg(long, default_value_t = 500)]
        seeds: u64,
        /// Workers for the scaling measurement (default: every core).
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long, value_enum, default_value = "text")]
        format: Format,
        /// Measure detection power instead: for each planted bug, with and
        /// without swarm and under each schedule, the seeds (of `--seeds`)
        /// a sweep of its scenario takes to find it, the failing share, and
        /// the size its first failure shrinks to.
        #[arg(long)]
        bugs: bool,
        /// With `--bugs`: only this planted bug.
        #[arg(long, value_parser = parse_bug, requires = "bugs")]
        bug: Option<Bug>,
        /// With `--bugs`: an earlier `bench --bugs --format json` to hold
        /// this one to. Each row is judged by the no-loss rule (first found
        /// no later than noise allows, failing share within noise); exits
        /// 1 if a row lost detection power.
        #[arg(long, requires = "bugs")]
        baseline: Option<std::path::PathBuf>,
        /// The anchors' figures, timed in this session: the JSON that
        /// `../shared/peers/peer-bench.sh` prints. Ratios to the turmoil
        /// peer (seeds/s, saga-bench) and the bare loop (events/s) are
        /// reported against it.
        #[arg(long, conflicts_with = "bugs")]
        peer: Option<std::path::PathBuf>,
    },
    /// Deploy the system for real (PostgreSQL, Redis, NATS JetStream, HTTP
    /// services as child processes), drive the scenario's workload through
    /// it while killing and restarting services, and check the invariants
    /// against the real databases. Exit codes as `run`.
    Live(live::LiveArgs),
    /// Bring a live deployment up and keep it up (until Ctrl-C), for
    /// `sagasim live --attach`.
    Up(live::UpArgs),
    /// Run one process of a live deployment (`sagasim live` starts them).
    Serve(live::ServeArgs),
    /// List what can be chosen.
    List {
        #[arg(value_enum)]
        what: Option<ListWhat>,
    },
}

/// Run the command line; returns the process exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Bench { bugs: true, bug, seeds, jobs, format, baseline, .. } => {
            bench::run_detection(bug, seeds, jobs, format, baseline.as_deref())
        }
        Command::Bench { scenario, strategy, seeds, jobs, format, bugs: false, peer, .. } => {
            bench::run_bench(&scenario, strategy, seeds, jobs, format, peer.as_deref())
        }
        Command::Run { target, seed, trace, format, out } => {
            let print = match format {
                Format::Text => Print::Text { trace },
                Format::Json => Print::Result,
            };
            run::run_one(&target, seed, Show { print, order: None }, out)
        }
        Command::Shrink { file, out } => shrink::run_shrink(&file, out),
        Command::Compare { scenario, strategies, seeds, jobs, fault_scale, format, out } => {
            compare::run_compare(&scenario, strategies, seeds, jobs, fault_scale, format, out)
        }
        Command::Replay { file: Some(file), format, order, .. } => {
            replay::replay_file(&file, Show::replay(format, order))
        }
        Command::Replay { file: None, target, seed, format, order } => {
            let seed = seed.expect("clap requires --seed without a file");
            run::run_one(&target, seed, Show::replay(format, order), None)
        }
        Command::Sweep(args) => sweep::run_sweep(args),
        Command::Live(args) => live::run_live(args),
        Command::Serve(args) => live::run_serve(args),
        Command::Up(args) => live::run_up(args),
        Command::Merge { files, format, out } => merge::run_merge(&files, format, out),
        Command::List { what } => list::list(what, &mut io::stdout().lock())
            .map(|_| ExitCode::SUCCESS)
            .map_err(|_| ExitCode::from(2)),
    };
    result.unwrap_or_else(|code| code)
}
