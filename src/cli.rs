//! The command line: parse arguments, validate them once into built values,
//! dispatch to a command, and map the result to an exit code.
//!
//! Exit codes: 0 nothing violated; 1 a violation, a panic or a blown step
//! budget; 2 bad usage or a bad scenario file.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand, ValueEnum};
use domain::{Bug, Invariant, Strategy};
use reports::{RunResult, RUN_SCHEMA};

use crate::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::scenario::{Scenario, BUILT_IN};
use crate::sweep;
use crate::{failure_file, trace_view};

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

/// What to simulate.
#[derive(Args, Debug, Clone)]
pub struct Target {
    /// A built-in scenario name or a path to a TOML file.
    #[arg(long, default_value = "default")]
    pub scenario: String,
    /// The coordination strategy (see `sagasim list strategies`).
    #[arg(long, default_value = "choreography", value_parser = parse_strategy)]
    pub strategy: Strategy,
    /// A planted bug (see `sagasim list bugs`).
    #[arg(long, value_parser = parse_bug)]
    pub bug: Option<Bug>,
    /// Scale every fault rate and count by this factor (0: no faults).
    #[arg(long, default_value_t = 1.0, value_parser = parse_scale)]
    pub fault_scale: f64,
    /// Use the scenario's fault rates as they are in every seed, instead of
    /// a per-seed swarm mix (each kind on or off, ×½ to ×4).
    #[arg(long)]
    pub no_swarm: bool,
    /// How events due at about the same time are ordered: seeded
    /// tie-breaks, or PCT-style node priorities with change points.
    #[arg(long, value_enum, default_value = "seeded")]
    pub schedule: ScheduleName,
    /// PCT: change points plus one.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub pct_depth: u32,
    /// PCT: how far past its time an event may be passed over.
    #[arg(long, default_value_t = 5_000)]
    pub pct_window_us: u64,
}

impl Target {
    pub fn explore(&self) -> Explore {
        let schedule = match self.schedule {
            ScheduleName::Seeded => sim::Schedule::Seeded,
            ScheduleName::Pct => {
                sim::Schedule::Pct { depth: self.pct_depth, window_us: self.pct_window_us }
            }
        };
        Explore { swarm: !self.no_swarm, schedule }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScheduleName {
    Seeded,
    Pct,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayFormat {
    Text,
    Json,
    Mermaid,
    /// The Trace Event Format (Perfetto, chrome://tracing).
    ChromeTrace,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportFormat {
    Text,
    Md,
    Json,
    Html,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListWhat {
    Scenarios,
    Strategies,
    Bugs,
    Invariants,
    Faults,
    Coverage,
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
    Sweep(crate::ci::SweepArgs),
    /// Combine the results of a sharded sweep (`sweep --shard K/N --format
    /// json`) into the result of the whole sweep.
    Merge {
        /// Shard results, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long, value_enum, default_value = "text")]
        format: crate::ci::MergeFormat,
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
    Live(crate::live_cmd::LiveArgs),
    /// Bring a live deployment up and keep it up (until Ctrl-C), for
    /// `sagasim live --attach`.
    Up(crate::live_cmd::UpArgs),
    /// Run one process of a live deployment (`sagasim live` starts them).
    Serve(crate::live_cmd::ServeArgs),
    /// List what can be chosen.
    List {
        #[arg(value_enum)]
        what: Option<ListWhat>,
    },
}

/// A range of seeds, first inclusive, last exclusive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange(pub u64, pub u64);

impl FromStr for SeedRange {
    type Err = String;
    fn from_str(s: &str) -> Result<SeedRange, String> {
        let num =
            |x: &str| x.trim().parse::<u64>().map_err(|_| format!("`{x}` is not a seed number"));
        let r = match s.split_once("..") {
            Some((a, b)) => SeedRange(num(a)?, num(b)?),
            None => SeedRange(0, num(s)?),
        };
        if r.0 >= r.1 {
            return Err(format!(
                "`{s}` is an empty range of seeds: expected N > 0 or A..B with A < B"
            ));
        }
        Ok(r)
    }
}

fn parse_strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).ok_or_else(|| {
        let all: Vec<_> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!("unknown strategy `{s}`; expected one of: {}", all.join(", "))
    })
}

fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1000.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a fault scale: expected a number from 0 to 1000")),
    }
}

/// Strategies chosen on the command line, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrategyList(pub Vec<Strategy>);

fn parse_strategies(s: &str) -> Result<StrategyList, String> {
    if s.trim() == "all" {
        return Ok(StrategyList(Strategy::ALL.to_vec()));
    }
    let mut list = Vec::new();
    for name in s.split(',') {
        let strategy = parse_strategy(name.trim())?;
        if list.contains(&strategy) {
            return Err(format!("strategy `{}` is listed twice", strategy.name()));
        }
        list.push(strategy);
    }
    Ok(StrategyList(list))
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    Bug::parse(s).ok_or_else(|| {
        let all: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("unknown bug `{s}`; expected one of: {}", all.join(", "))
    })
}

const FAULTS: &[(&str, &str)] = &[
    ("drop", "the network loses a message (network.loss)"),
    ("duplicate", "the network delivers a message twice (network.duplicate)"),
    ("delay", "the network holds a message back so later ones overtake it (network.delay)"),
    ("partition", "two nodes cannot reach each other for a while (faults.partitions)"),
    ("one-way-partition", "messages from one node to another are lost for a while, while the answers the other way get through (faults.one_way_partitions)"),
    ("db-outage", "a service's database is unreachable for a while: every commit fails while the service stays up (faults.db_outages)"),
    ("crash", "a service loses its volatile state and timers; its database survives (faults.crashes)"),
    ("restart", "a crashed service comes back and rebuilds itself from its database"),
    ("pause", "a service freezes past its consumer session and wakes up a zombie (faults.pauses)"),
    ("rebalance", "a consumer group rebalances: consumed but uncommitted records come again (faults.rebalances)"),
    ("broker-outage", "the broker is down for a while; its log survives (faults.broker_outages)"),
    ("commit-fail", "a database commit fails and nothing of it is applied (faults.commit_fail)"),
    ("commit-lost-ack", "a database commit applies but its answer is lost: the caller is told it failed (faults.commit_lost_ack)"),
    ("commit-hang", "a database commit hangs and applies nothing; the service waits out its statement timeout first (faults.commit_hang, faults.commit_hang_ms)"),
    ("mark-sent-fail", "the relay's update marking acknowledged outbox rows sent fails: they are published again (faults.mark_sent_fail)"),
    ("dead-letter-fail", "a consumer's write to its dead-letter topic fails: the record stays at the head of its partition and is tried again (faults.dead_letter_fail)"),
    ("cache-timeout", "a gateway's call to its key cache times out, lost on its way or applied with its answer lost; the gateway knows nothing and the client hears \"in progress\" (faults.cache_timeout)"),
    ("cache-flush", "the idempotency-key cache restarts and forgets every key (faults.cache_flushes)"),
    ("poison", "a record no consumer can read is published (faults.poisons)"),
    ("pg-decline", "the payment gateway declines a card (pg.decline)"),
    ("pg-timeout-before", "the payment gateway loses a request before acting on it (pg.timeout_before)"),
    ("pg-timeout-after", "the payment gateway charges and its answer is lost (pg.timeout_after)"),
    ("pg-slow", "the payment gateway answers late, past the caller's timeout (pg.slow)"),
    ("pg-in-progress", "a new charge takes time to settle at the gateway; a request under its key meanwhile is answered \"in progress\" (pg.processing_max_ms)"),
    ("service-time", "each request, timer or record holds its service for a while; what arrives meanwhile waits in line, so load makes callers time out (services.handler_ms)"),
    ("late-commit", "with several instances, a handler's commit takes longer than its handler, so transactions commit in another order than they took their outbox ids (services.commit_ms)"),
    ("pg-refund-pending", "the payment gateway accepts a refund and leaves it pending for a while; a request under its key meanwhile is answered \"in progress\" (pg.refund_pending_max_ms)"),
    ("pg-key-retention", "the payment gateway forgets an idempotency key after a while: a charge under an older key charges again, so Payment asks what became of a charge before sending it again that late (pg.key_retention_ms)"),
    ("pg-refund-fail", "the payment gateway fails a refund and refunds nothing; Payment asks again (pg.refund_fail)"),
    ("key-expiry", "an idempotency key's mark expires while its request is still running (gateway.in_progress_ttl_ms)"),
    ("client-retry", "the client retries on timeout with the same key, sends twice, or reuses a key (workload.double_submit, workload.key_reuse)"),
    ("contention", "orders crowd onto hot products and shared coupons (workload.hot_share, workload.coupon_share)"),
];

fn list(what: Option<ListWhat>, out: &mut impl Write) -> io::Result<()> {
    let all = what.is_none();
    let show = |w| all || what == Some(w);
    if show(ListWhat::Scenarios) {
        if all {
            writeln!(out, "scenarios:")?;
        }
        for (name, text) in BUILT_IN {
            let s = Scenario::parse(text, name, name).expect("built-in scenarios are valid");
            writeln!(out, "  {name:<28} {}", s.description)?;
        }
    }
    if show(ListWhat::Strategies) {
        if all {
            writeln!(out, "strategies:")?;
        }
        for s in Strategy::ALL {
            writeln!(out, "  {:<28} {}", s.name(), s.describe())?;
        }
    }
    if show(ListWhat::Bugs) {
        if all {
            writeln!(out, "bugs:")?;
        }
        for b in Bug::ALL {
            let strategies: Vec<_> = b.strategies().iter().map(|s| s.name()).collect();
            writeln!(out, "  {:<28} [{}] {}", b.name(), strategies.join(", "), b.describe())?;
        }
    }
    if show(ListWhat::Invariants) {
        if all {
            writeln!(out, "invariants:")?;
        }
        for i in Invariant::ALL {
            let when = match i.when() {
                domain::invariant::When::EveryStep => "every step",
                domain::invariant::When::AtQuiescence => "at quiescence",
                domain::invariant::When::Both => "every step and at quiescence",
            };
            writeln!(out, "  {:>2} {:<25} ({when}) {}", i.number(), i.name(), i.describe())?;
        }
    }
    if show(ListWhat::Coverage) {
        if all {
            writeln!(out, "coverage points (for run.expect):")?;
        }
        for p in crate::coverage::POINTS {
            writeln!(out, "  {p}")?;
        }
    }
    if show(ListWhat::Faults) {
        if all {
            writeln!(out, "faults:")?;
        }
        for (name, what) in FAULTS {
            writeln!(out, "  {name:<28} {what}")?;
        }
    }
    Ok(())
}

/// Load the target's scenario, after checking that its bug applies to its
/// strategy.
pub(crate) fn load(target: &Target) -> Result<Scenario, ExitCode> {
    if let Some(bug) = target.bug.filter(|b| !b.strategies().contains(&target.strategy)) {
        let names: Vec<_> = bug.strategies().iter().map(|s| s.name()).collect();
        eprintln!(
            "error: bug `{}` cannot be planted in {}; it applies to: {}",
            bug.name(),
            target.strategy.name(),
            names.join(", ")
        );
        return Err(ExitCode::from(2));
    }
    Ok(load_named(&target.scenario)?.scaled(target.fault_scale))
}

fn load_named(name: &str) -> Result<Scenario, ExitCode> {
    Scenario::load(name).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The result of one run (or of its panic), and its trace lines.
fn run_result(
    spec: &RunSpec<'_>,
    run: Result<harness::RunReport, String>,
) -> (RunResult, Vec<sim::TraceRecord>) {
    let mut result = RunResult {
        schema: RUN_SCHEMA.to_string(),
        scenario: spec.scenario.name.clone(),
        strategy: spec.strategy.name().to_string(),
        bug: spec.bug.map(|b| b.name().to_string()),
        seed: spec.seed,
        digest: sweep::hex(0),
        end: "panic".to_string(),
        steps: 0,
        time_us: 0,
        heal_at_us: None,
        outcomes: reports::Outcomes::default(),
        faults: 0,
        failure: None,
    };
    match run {
        Ok(r) => {
            result.failure = sweep::failure_of(&r, spec);
            result.digest = sweep::hex(r.digest);
            result.end = end_name(r.end).to_string();
            result.steps = r.step;
            result.time_us = r.time_us;
            result.heal_at_us = r.heal_at_us;
            result.outcomes = r.outcomes;
            result.faults = r.faults.len() as u64;
            (result, r.trace)
        }
        Err(message) => {
            result.failure = Some(sweep::panic_failure(spec, message));
            (result, Vec::new())
        }
    }
}

fn end_name(end: sim::End) -> &'static str {
    match end {
        sim::End::Settled => "settled",
        sim::End::Deadline => "deadline",
        sim::End::Stalled => "stalled",
        sim::End::Violation => "violation",
        sim::End::StepBudget => "step-budget",
    }
}

/// Where failure files go: `--out`, or `failures/` under CI, or nowhere.
pub(crate) fn failure_dir(out: Option<PathBuf>) -> Option<PathBuf> {
    out.or_else(|| std::env::var_os("CI").map(|_| PathBuf::from("failures")))
}

/// Write the failure file of a failing seed; say where on stderr.
pub(crate) fn save_failure(
    dir: &Path,
    spec: &RunSpec<'_>,
    failure: &reports::Failure,
) -> Result<(), ExitCode> {
    let run = RunSpec { seed: failure.seed, trace: false, ..*spec };
    let saved = failure_file::record(&run, failure).and_then(|f| failure_file::write(dir, &f));
    match saved {
        Ok(path) => {
            eprintln!("failure file: {}", path.display());
            Ok(())
        }
        Err(e) => {
            eprintln!("error: cannot write a failure file into {}: {e}", dir.display());
            Err(ExitCode::from(2))
        }
    }
}

/// How a seed's run is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Print {
    /// The result as text, after the trace's lines if asked.
    Text {
        trace: bool,
    },
    /// The result as one JSON object (`run --format json`).
    Result,
    /// A JSON line per trace record, then the result.
    Steps,
    Mermaid,
    ChromeTrace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Show {
    print: Print,
    /// Keep only the trace records about this order.
    order: Option<u32>,
}

impl Show {
    fn replay(format: ReplayFormat, order: Option<u32>) -> Show {
        let print = match format {
            ReplayFormat::Text => Print::Text { trace: true },
            ReplayFormat::Json => Print::Steps,
            ReplayFormat::Mermaid => Print::Mermaid,
            ReplayFormat::ChromeTrace => Print::ChromeTrace,
        };
        Show { print, order }
    }
}

/// The entities a violation names, before and after the step that broke
/// it (each run again to that point: runs are deterministic).
fn entity_states(
    out: &mut impl Write,
    spec: &RunSpec<'_>,
    entities: &[domain::Entity],
    step: u64,
) -> io::Result<()> {
    let before = harness::entity_states(spec, entities, step.saturating_sub(1));
    let after = harness::entity_states(spec, entities, step);
    writeln!(out, "state before step {step}:")?;
    for line in before {
        writeln!(out, "  {line}")?;
    }
    writeln!(out, "state after step {step}:")?;
    for line in after {
        writeln!(out, "  {line}")?;
    }
    Ok(())
}

/// What a printed run leaves for its caller: its result, the faults that
/// struck, and where it parted from a recording it followed.
struct Printed {
    result: RunResult,
    faults: Vec<sim::FaultRecord>,
    divergence: Option<sim::Divergence>,
}

/// One run: make it, print it, and save its failure.
fn run_seed_and_print(
    spec: RunSpec<'_>,
    show: Show,
    out_dir: Option<&Path>,
) -> Result<Printed, ExitCode> {
    let trace = !matches!(show.print, Print::Text { trace: false } | Print::Result);
    let spec = RunSpec { trace, ..spec };
    let run = sweep::run_guarded(&spec, &harness::run);
    let entities = run.as_ref().ok().and_then(|r| r.violation.as_ref()).map(|v| v.entities.clone());
    let faults = run.as_ref().map(|r| r.faults.clone()).unwrap_or_default();
    let divergence = run.as_ref().ok().and_then(|r| r.divergence.clone());
    let (result, records) = run_result(&spec, run);
    let records = trace_view::filter(records, show.order);
    let mut out = io::stdout().lock();
    let written = match show.print {
        Print::Text { trace } => trace_view::text(&mut out, &records)
            .and_then(|_| reports::text::run(&mut out, &result))
            .and_then(|_| match (trace, entities, &result.failure) {
                (true, Some(ents), Some(f)) if !ents.is_empty() => {
                    entity_states(&mut out, &spec, &ents, f.step)
                }
                _ => Ok(()),
            }),
        Print::Result => reports::json::write(&mut out, &result),
        Print::Steps => trace_view::json_lines(&mut out, &records).and_then(|_| {
            serde_json::to_writer(&mut out, &result).map_err(io::Error::other)?;
            writeln!(out)
        }),
        Print::ChromeTrace => trace_view::chrome_trace(&mut out, &records),
        Print::Mermaid => {
            let violated =
                result.failure.as_ref().map(|f| format!("{}: {}", f.invariant, f.detail));
            trace_view::mermaid(&mut out, &records, show.order, violated.as_deref())
        }
    };
    written.map_err(|_| ExitCode::from(2))?;
    if let (Some(dir), Some(f)) = (out_dir, &result.failure) {
        save_failure(dir, &spec, f)?;
    }
    Ok(Printed { result, faults, divergence })
}

fn exit_of(result: &RunResult) -> ExitCode {
    ExitCode::from(if result.failure.is_some() { 1 } else { 0 })
}

fn run_one(
    target: &Target,
    seed: u64,
    show: Show,
    out: Option<PathBuf>,
) -> Result<ExitCode, ExitCode> {
    let scenario = load(target)?;
    let dir = failure_dir(out);
    let spec = RunSpec {
        explore: target.explore(),
        ..RunSpec::new(&scenario, target.strategy, target.bug, seed)
    };
    run_seed_and_print(spec, show, dir.as_deref()).map(|p| exit_of(&p.result))
}

fn run_shrink(path: &Path, out: Option<PathBuf>) -> Result<ExitCode, ExitCode> {
    let loaded = failure_file::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let f = &loaded.file;
    let target = crate::shrink::Target {
        scenario: loaded.scenario.clone(),
        strategy: loaded.strategy,
        bug: loaded.bug,
        seed: f.seed,
        invariant: f.failure.invariant.clone(),
        explore: loaded.file.explore,
    };
    // The faults that struck (a file shrunk before: those its plan allows).
    let (decisions, arrivals) = sweep::run_guarded(&loaded.spec(), &harness::run)
        .map(|r| crate::shrink::starting_point(&r, loaded.arrivals.as_ref()))
        .unwrap_or_default();
    let Some(shrunk) = crate::shrink::shrink(&target, decisions, arrivals) else {
        eprintln!(
            "error: {} does not fail with {} any more: nothing to shrink",
            path.display(),
            f.failure.invariant
        );
        return Err(ExitCode::from(1));
    };
    let mut stdout = io::stdout().lock();
    let written: io::Result<()> = (|| {
        for s in &shrunk.stages {
            writeln!(stdout, "{:<16} {:>6} -> {}", s.what, s.from, s.to)?;
        }
        writeln!(stdout, "{} runs", shrunk.runs)
    })();
    written.map_err(|_| ExitCode::from(2))?;
    let scenario = shrunk.size.apply(&loaded.scenario);
    let run = RunSpec {
        explore: loaded.file.explore,
        ..RunSpec::new(&scenario, loaded.strategy, loaded.bug, f.seed)
    };
    let failure = sweep::failure_of(&shrunk.report, &run).expect("a shrunk run fails");
    let out = out.unwrap_or_else(|| path.with_extension("shrunk.json"));
    let mut file = f.clone();
    file.failure =
        reports::Failure { repro: format!("sagasim replay {}", out.display()), ..failure };
    file.faults = shrunk.report.faults.clone();
    file.shrunk = Some(failure_file::ShrunkPlan {
        orders: shrunk.size.orders,
        users: shrunk.size.users,
        products: shrunk.size.products,
        fault_phase_us: shrunk.size.fault_phase_us,
        fault_mask: shrunk.mask.iter().copied().collect(),
        arrivals: shrunk.arrivals.iter().copied().collect(),
    });
    let written = write_atomically(&out, |w| {
        serde_json::to_writer_pretty(&mut *w, &file).map_err(io::Error::other)?;
        writeln!(w)
    });
    written.map_err(|e| {
        eprintln!("error: cannot write {}: {e}", out.display());
        ExitCode::from(2)
    })?;
    eprintln!("shrunk failure file: {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Replay a failure file, and say whether it reproduced.
fn replay_file(path: &Path, show: Show) -> Result<ExitCode, ExitCode> {
    let loaded = failure_file::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })?;
    let Printed { result, faults, divergence } = run_seed_and_print(loaded.spec(), show, None)?;
    let want = &loaded.file.failure;
    let same = |f: &reports::Failure| f.invariant == want.invariant && f.digest == want.digest;
    match &result.failure {
        Some(f) if same(f) => eprintln!(
            "reproduced: {} at step {}, digest {}, as {} records",
            f.invariant,
            f.step,
            f.digest,
            path.display()
        ),
        got => eprintln!(
            "NOT reproduced: {} records {} at step {} with digest {}; this run {}",
            path.display(),
            want.invariant,
            want.step,
            want.digest,
            got.as_ref().map_or("violated nothing".to_string(), |f| format!(
                "gave {} at step {} with digest {}",
                f.invariant, f.step, f.digest
            ))
        ),
    }
    if let Some(d) = divergence {
        eprintln!(
            "followed the recording to step {} ({} µs); there its fault decision {:#x} was {:?}, \
             but this run was deciding {}: from there the seed decided",
            d.step, d.time_us, d.key, d.recorded, d.found
        );
    }
    match failure_file::divergence(&loaded.file.faults, &faults) {
        Some(d) => eprintln!("{d}"),
        None => eprintln!("the run took the {} recorded faults, in order", faults.len()),
    }
    Ok(exit_of(&result))
}

pub(crate) fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn run_bench(
    scenarios: &[String],
    strategy: Strategy,
    seeds: u64,
    jobs: Option<usize>,
    format: Format,
    peer: Option<&std::path::Path>,
) -> Result<ExitCode, ExitCode> {
    let loaded: Vec<Scenario> =
        scenarios.iter().map(|s| load_named(s)).collect::<Result<_, _>>()?;
    let anchors = peer
        .map(|p| {
            crate::bench::Anchors::load(p).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })
        })
        .transpose()?;
    let jobs = jobs.unwrap_or_else(all_cores);
    let r = crate::bench::bench(&loaded, strategy, seeds.max(1), jobs, anchors);
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => crate::bench::render_text(&r, &mut out),
        Format::Json => reports::json::write(&mut out, &r),
    };
    written.map(|_| ExitCode::SUCCESS).map_err(|_| ExitCode::from(2))
}

/// Write a report to `path` through a temporary file renamed into place, so
/// a reader never sees half a report.
pub(crate) fn write_atomically(
    path: &std::path::Path,
    render: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut file = io::BufWriter::new(std::fs::File::create(&tmp)?);
    render(&mut file)?;
    file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

fn run_compare(
    scenario: &str,
    strategies: StrategyList,
    seeds: SeedRange,
    jobs: Option<usize>,
    scales: Vec<f64>,
    format: ReportFormat,
    out: Option<std::path::PathBuf>,
) -> Result<ExitCode, ExitCode> {
    let s = load_named(scenario)?;
    let spec = crate::compare::CompareSpec {
        scenario: &s,
        strategies: strategies.0,
        seeds: (seeds.0, seeds.1),
        jobs: jobs.unwrap_or_else(all_cores),
        scales,
    };
    let r = crate::compare::compare(&spec);
    let render = |w: &mut dyn Write| -> io::Result<()> {
        let mut w = w;
        match format {
            ReportFormat::Text => reports::text::compare(&mut w, &r),
            ReportFormat::Md => reports::markdown::compare(&mut w, &r),
            ReportFormat::Json => reports::json::write(&mut w, &r),
            ReportFormat::Html => reports::html::compare(&mut w, &r),
        }
    };
    let written = match &out {
        Some(path) => write_atomically(path, render).map_err(|e| {
            eprintln!("error: cannot write {}: {e}", path.display());
        }),
        None => render(&mut io::stdout().lock()).map_err(|_| ()),
    };
    written.map(|_| ExitCode::SUCCESS).map_err(|_| ExitCode::from(2))
}

fn run_detection(
    only: Option<Bug>,
    seeds: u64,
    jobs: Option<usize>,
    format: Format,
    baseline: Option<&std::path::Path>,
) -> Result<ExitCode, ExitCode> {
    let baseline = baseline
        .map(|p| {
            crate::detection::load_baseline(p).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::from(2)
            })
        })
        .transpose()?;
    let jobs = jobs.unwrap_or_else(all_cores);
    let ds: Vec<crate::detection::Detection> = Bug::ALL
        .iter()
        .filter(|b| only.is_none_or(|o| o == **b))
        .flat_map(|&b| {
            crate::detection::EXPLORES.map(|e| crate::detection::detect(b, seeds.max(1), jobs, e))
        })
        .collect();
    let mut out = io::stdout().lock();
    let written = match format {
        Format::Text => crate::detection::render_text(&ds, &mut out),
        Format::Json => reports::json::write(&mut out, &ds),
    };
    written.map_err(|_| ExitCode::from(2))?;
    let Some(b) = baseline else { return Ok(ExitCode::SUCCESS) };
    // With JSON on standard output, the verdicts go to standard error.
    let lost = match format {
        Format::Text => crate::detection::render_against(&ds, &b, &mut out),
        Format::Json => crate::detection::render_against(&ds, &b, &mut io::stderr().lock()),
    }
    .map_err(|_| ExitCode::from(2))?;
    Ok(if lost > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// Run the command line; returns the process exit code.
pub fn main_with(cli: Cli) -> ExitCode {
    let result = match cli.command {
        Command::Bench { bugs: true, bug, seeds, jobs, format, baseline, .. } => {
            run_detection(bug, seeds, jobs, format, baseline.as_deref())
        }
        Command::Bench { scenario, strategy, seeds, jobs, format, bugs: false, peer, .. } => {
            run_bench(&scenario, strategy, seeds, jobs, format, peer.as_deref())
        }
        Command::Run { target, seed, trace, format, out } => {
            let print = match format {
                Format::Text => Print::Text { trace },
                Format::Json => Print::Result,
            };
            run_one(&target, seed, Show { print, order: None }, out)
        }
        Command::Shrink { file, out } => run_shrink(&file, out),
        Command::Compare { scenario, strategies, seeds, jobs, fault_scale, format, out } => {
            run_compare(&scenario, strategies, seeds, jobs, fault_scale, format, out)
        }
        Command::Replay { file: Some(file), format, order, .. } => {
            replay_file(&file, Show::replay(format, order))
        }
        Command::Replay { file: None, target, seed, format, order } => {
            let seed = seed.expect("clap requires --seed without a file");
            run_one(&target, seed, Show::replay(format, order), None)
        }
        Command::Sweep(args) => crate::ci::run_sweep(args),
        Command::Live(args) => crate::live_cmd::run_live(args),
        Command::Serve(args) => crate::live_cmd::run_serve(args),
        Command::Up(args) => crate::live_cmd::run_up(args),
        Command::Merge { files, format, out } => crate::ci::run_merge(&files, format, out),
        Command::List { what } => list(what, &mut io::stdout().lock())
            .map(|_| ExitCode::SUCCESS)
            .map_err(|_| ExitCode::from(2)),
    };
    result.unwrap_or_else(|code| code)
}
