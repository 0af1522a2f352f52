//! What the commands share on the command line: the target of a run
//! (scenario, strategy, bug, exploration), seed ranges, output formats,
//! the value parsers, and loading the target's scenario with its errors
//! mapped to exit code 2.

use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use domain::{Bug, Strategy};

use crate::harness::explore::Explore;
use crate::scenario::Scenario;

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

pub fn parse_strategy(s: &str) -> Result<Strategy, String> {
    Strategy::parse(s).ok_or_else(|| {
        let all: Vec<_> = Strategy::ALL.iter().map(|s| s.name()).collect();
        format!("unknown strategy `{s}`; expected one of: {}", all.join(", "))
    })
}

pub fn parse_scale(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && (0.0..=1000.0).contains(&x) => Ok(x),
        _ => Err(format!("`{s}` is not a fault scale: expected a number from 0 to 1000")),
    }
}

/// Strategies chosen on the command line, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrategyList(pub Vec<Strategy>);

pub fn parse_strategies(s: &str) -> Result<StrategyList, String> {
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

pub fn parse_bug(s: &str) -> Result<Bug, String> {
    Bug::parse(s).ok_or_else(|| {
        let all: Vec<_> = Bug::ALL.iter().map(|b| b.name()).collect();
        format!("unknown bug `{s}`; expected one of: {}", all.join(", "))
    })
}

/// Load the target's scenario, after checking that its bug applies to its
/// strategy.
pub fn load(target: &Target) -> Result<Scenario, ExitCode> {
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
    Ok(scenario_named(&target.scenario)?.scaled(target.fault_scale))
}

pub fn scenario_named(name: &str) -> Result<Scenario, ExitCode> {
    Scenario::load(name).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Worker threads when `--jobs` is not given: every core.
pub fn all_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
