//! Detection power (`sagasim bench --bugs`): for each planted bug and each
//! way of exploring (with and without swarm testing, under each scheduling
//! strategy), how many seeds a sweep of the scenario that provokes it takes
//! to find it, the share of seeds that fail, and the size its first failure
//! shrinks to.

use std::time::Instant;

use domain::{Bug, Strategy};
use serde::Serialize;

use crate::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::scenario::Scenario;
use crate::shrink;
use crate::sweep::{self, SweepSpec};
use sim::Schedule;

/// The built-in scenario that provokes each planted bug.
pub fn scenario_of(bug: Bug) -> &'static str {
    match bug {
        Bug::NoOutbox | Bug::CommitOffsetBeforeProcess => "crash-storm",
        Bug::PgRetryWithoutKey
        | Bug::PgTimeoutAsFailure
        | Bug::NoSemanticLock
        | Bug::PgKeyPastRetention => "pg-trouble",
        Bug::CouponCheckThenAct => "coupon-rush",
        Bug::CompensationBeforeAction => "slow-network",
        Bug::InboxWithoutUniqueKey | Bug::RelayHighWaterCursor => "crash-storm",
        Bug::StaleReadStock => "flash-sale",
        _ => "default",
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Detection {
    pub bug: &'static str,
    /// How the sweep explored: "seeded", "seeded+swarm", "pct", "pct+swarm".
    pub explore: String,
    pub strategy: &'static str,
    pub scenario: &'static str,
    pub seeds: u64,
    /// The first failing seed's position in the sweep (1-based).
    pub seeds_to_first: Option<u64>,
    pub failing: u64,
    /// The first failure before and after shrinking.
    pub faults: u64,
    pub shrunk_faults: u64,
    pub submissions: u64,
    pub shrunk_submissions: u64,
    pub shrink_runs: u64,
    pub wall_s: f64,
}

/// The ways of exploring detection power is measured under.
pub const EXPLORES: [Explore; 4] = [
    Explore { swarm: false, schedule: Schedule::Seeded },
    Explore { swarm: true, schedule: Schedule::Seeded },
    Explore { swarm: false, schedule: Schedule::PCT },
    Explore { swarm: true, schedule: Schedule::PCT },
];

/// Measure one bug over `seeds` seeds, exploring with `explore`.
pub fn detect(bug: Bug, seeds: u64, jobs: usize, explore: Explore) -> Detection {
    let started = Instant::now();
    let name = scenario_of(bug);
    let scenario = Scenario::load(name).expect("built-in scenarios load");
    // The choreography where the bug applies to it (it has every safety
    // mechanism a bug can switch off), else the first strategy it applies to.
    let applies = bug.strategies();
    let strategy =
        if applies.contains(&Strategy::Choreography) { Strategy::Choreography } else { applies[0] };
    let spec = SweepSpec {
        scenario: &scenario,
        strategy,
        bug: Some(bug),
        seeds: (0, seeds),
        jobs,
        explore,
    };
    let results = sweep::run_seeds(&spec);
    let failing: Vec<&sweep::SeedResult> = results.iter().filter(|r| r.failure.is_some()).collect();
    let mut d = Detection {
        bug: bug.name(),
        explore: explore.label(),
        strategy: strategy.name(),
        scenario: name,
        seeds,
        seeds_to_first: failing.first().map(|r| r.seed + 1),
        failing: failing.len() as u64,
        faults: 0,
        shrunk_faults: 0,
        submissions: 0,
        shrunk_submissions: 0,
        shrink_runs: 0,
        wall_s: 0.0,
    };
    if let Some(first) = failing.first() {
        let run = RunSpec { explore, ..RunSpec::new(&scenario, strategy, Some(bug), first.seed) };
        let r = harness::run(&run);
        let invariant = first.failure.as_ref().expect("a failing seed").invariant.clone();
        let (faults, arrivals) = shrink::starting_point(&r, None);
        (d.faults, d.submissions) = (faults.len() as u64, arrivals.len() as u64);
        let seed = first.seed;
        let target =
            shrink::Target { scenario, strategy, bug: Some(bug), seed, invariant, explore };
        if let Some(s) = shrink::shrink(&target, faults, arrivals) {
            (d.shrunk_faults, d.shrunk_submissions) =
                (s.mask.len() as u64, s.arrivals.len() as u64);
            d.shrink_runs = s.runs;
        }
    }
    d.wall_s = started.elapsed().as_secs_f64();
    d
}

pub fn render_text(ds: &[Detection], out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<30} {:<14} {:<13} {:<13} {:>14} {:>14} {:>13} {:>18} {:>7}",
        "bug",
        "strategy",
        "scenario",
        "explore",
        "first found at",
        "failing seeds",
        "shrunk faults",
        "shrunk submissions",
        "time"
    )?;
    let mut last_bug = "";
    for d in ds {
        let first = d.seeds_to_first.map_or("never".to_string(), |n| format!("seed #{n}"));
        // The bug, its strategy and scenario once per group of rows.
        let (bug, strategy, scenario) = match d.bug == last_bug {
            true => ("", "", ""),
            false => (d.bug, d.strategy, d.scenario),
        };
        last_bug = d.bug;
        writeln!(
            out,
            "{:<30} {:<14} {:<13} {:<13} {:>14} {:>14} {:>13} {:>18} {:>6.1}s",
            bug,
            strategy,
            scenario,
            d.explore,
            first,
            format!("{}/{}", d.failing, d.seeds),
            format!("{} -> {}", d.faults, d.shrunk_faults),
            format!("{} -> {}", d.submissions, d.shrunk_submissions),
            d.wall_s
        )?;
    }
    Ok(())
}
