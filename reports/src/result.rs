//! The results sagasim reports, as plain data with a versioned schema. The
//! CLI builds them; renderers only read them.

use serde::{Deserialize, Serialize};

pub const RUN_SCHEMA: &str = "sagasim.run/1";
pub const SWEEP_SCHEMA: &str = "sagasim.sweep/2";

/// Order outcomes: how many orders ended confirmed, cancelled, rejected, or
/// not at all; per run, or summed over runs. The domain counts them
/// (`OrderTables::tally`), for the simulation and the live mode alike.
pub use domain::order::Tally as Outcomes;

/// One failing seed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub seed: u64,
    /// The invariant violated, or `panic` or `step-budget`.
    pub invariant: String,
    pub step: u64,
    pub time_us: u64,
    /// The trace digest, 16 hex digits.
    pub digest: String,
    pub entities: Vec<String>,
    pub detail: String,
    /// The command line that reproduces it.
    pub repro: String,
}

/// One run, as `sagasim run --format json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema: String,
    pub scenario: String,
    pub strategy: String,
    pub bug: Option<String>,
    pub seed: u64,
    pub digest: String,
    /// How the run ended: settled, deadline, stalled, violation, step-budget, panic.
    pub end: String,
    pub steps: u64,
    pub time_us: u64,
    /// When the faults healed; absent if the run stopped in the fault phase.
    pub heal_at_us: Option<u64>,
    pub outcomes: Outcomes,
    pub faults: u64,
    pub failure: Option<Failure>,
}

/// How many seeds of a sweep hit one coverage point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverageCount {
    pub point: String,
    pub seeds: u64,
}

/// A sweep over many seeds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SweepResult {
    pub schema: String,
    pub scenario: String,
    pub strategy: String,
    pub bug: Option<String>,
    /// How the seeds explored: "seeded+swarm", "pct", … (see `--no-swarm`,
    /// `--schedule`).
    pub explore: String,
    /// The seeds this result covers, first inclusive, last exclusive.
    pub seeds: [u64; 2],
    /// Set for one shard of a sharded sweep (`--shard K/N`).
    pub shard: Option<Shard>,
    /// Why the sweep stopped before its last seed (`fail-fast`, `max-time`,
    /// `interrupted`); absent when every seed ran.
    pub stopped: Option<String>,
    pub runs: u64,
    /// Runs that violated an invariant, panicked or blew their step budget.
    pub violations: u64,
    pub failures: Vec<Failure>,
    /// Simulated events (kernel steps) over all runs.
    pub events: u64,
    pub faults: u64,
    pub outcomes: Outcomes,
    /// Per coverage point (a saga path or fault kind): the seeds that hit it.
    pub coverage: Vec<CoverageCount>,
    /// Points the scenario expects (`run.expect`) that no seed hit: the
    /// sweep fails.
    pub expected_missing: Vec<String>,
    /// Failure files of earlier failures replayed before the seeds
    /// (`--corpus`): each must pass now.
    pub corpus: Vec<CorpusResult>,
    /// Seeds run twice to check that they give the same digest
    /// (`--check-determinism`); a difference is a `nondeterminism` failure.
    pub determinism_checked: u64,
    pub wall_s: f64,
    pub events_per_s: f64,
    pub seeds_per_s: f64,
}

/// Shard `index` (from 1) of `count` of the seed range `of`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
    pub of: [u64; 2],
}

impl Shard {
    /// The seeds shard `index` of `count` runs: the `index`-th of `count`
    /// contiguous, disjoint slices that together cover `of`.
    pub fn seeds(&self) -> [u64; 2] {
        let [first, last] = self.of;
        let len = last - first;
        let at = |k: u64| first + (len as u128 * k as u128 / self.count as u128) as u64;
        [at(self.index - 1), at(self.index)]
    }
}

/// One failure file of a regression corpus, replayed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusResult {
    pub file: String,
    pub seed: u64,
    /// What it recorded.
    pub recorded: String,
    /// Its failure now, if it still fails.
    pub failure: Option<Failure>,
}
