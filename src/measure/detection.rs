//! Detection power (`sagasim bench --bugs`): for each planted bug and each
//! way of exploring (with and without swarm testing, under each scheduling
//! strategy), how many seeds a sweep of the scenario that provokes it takes
//! to find it, the share of seeds that fail, and the size its first failure
//! shrinks to.

use std::time::Instant;

use domain::{Bug, Strategy};
use serde::{Deserialize, Serialize};

use crate::harness::explore::Explore;
use crate::harness::{self, RunSpec};
use crate::investigate::shrink;
use crate::scenario::Scenario;
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

#[derive(Clone, Debug, Default, Serialize)]
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
        ..Detection::default()
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

/// A row of an earlier `bench --bugs --format json`, as far as the
/// comparison needs it.
#[derive(Clone, Debug, Deserialize)]
pub struct Baseline {
    pub bug: String,
    pub explore: String,
    pub seeds: u64,
    pub seeds_to_first: Option<u64>,
    pub failing: u64,
}

/// Read an earlier `bench --bugs --format json`; the error names the file.
pub fn load_baseline(path: &std::path::Path) -> Result<Vec<Baseline>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the baseline {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not the JSON of `sagasim bench --bugs` (line {}, column {}): {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

/// The no-loss rule, for one bug under one way of exploring, against its
/// baseline. The first failing seed of a sweep is a geometric draw: with a
/// share `p` of seeds failing, it lies beyond `ln(100) / p` seeds in only
/// one sweep in a hundred. So a bug has lost detection power when it is
/// now first found later than both its old first seed and that 99th
/// percentile of the old share, or not found at all.
pub fn lost_power(before: &Baseline, after: &Detection) -> Option<String> {
    let n = before.seeds.max(1) as f64;
    let p = (before.failing as f64 / n).max(1.0 / n);
    let q99 = if p >= 1.0 { 1.0 } else { (0.01f64.ln() / (1.0 - p).ln()).ceil() };
    let allowed = before.seeds_to_first.map_or(f64::INFINITY, |b| (b as f64).max(q99));
    match (before.seeds_to_first, after.seeds_to_first) {
        (Some(b), None) => Some(format!("never found (first at seed #{b} before)")),
        (_, Some(a)) if a as f64 > allowed => {
            Some(format!("first found at seed #{a}, beyond #{allowed} (noise bound)"))
        }
        _ => None,
    }
}

/// Whether the failing share fell by more than three binomial standard
/// deviations of the old share (kept at least one seed from 0 and from
/// all): reported beside the rule, since a bug found as early with fewer
/// failing seeds has not lost the power the rule measures.
pub fn share_fell(before: &Baseline, after: &Detection) -> Option<String> {
    let n = before.seeds.max(1) as f64;
    let p = (before.failing as f64 / n).clamp(1.0 / n, 1.0 - 1.0 / n);
    let expected = p * after.seeds as f64;
    let sigma = (expected * (1.0 - p)).sqrt();
    ((after.failing as f64) < expected - 3.0 * sigma).then(|| {
        format!(
            "failing share fell: {} of {}, against {expected:.0} ± {sigma:.0}",
            after.failing, after.seeds
        )
    })
}

/// Each measured row beside its baseline row, with the rule's verdict.
/// Returns how many rows lost power.
pub fn render_against(
    ds: &[Detection],
    baseline: &[Baseline],
    out: &mut impl std::io::Write,
) -> std::io::Result<usize> {
    writeln!(out)?;
    writeln!(
        out,
        "against the baseline (first found at, failing seeds: before -> now). A row lost \
         power if first found later than both its old first seed and ln(100) / its old \
         failing share, or never"
    )?;
    let mut lost = 0;
    for d in ds {
        let Some(b) = baseline.iter().find(|b| b.bug == d.bug && b.explore == d.explore) else {
            writeln!(out, "  {:<30} {:<13} no baseline row", d.bug, d.explore)?;
            continue;
        };
        let seed = |s: Option<u64>| s.map_or("never".to_string(), |n| format!("#{n}"));
        let verdict = lost_power(b, d);
        lost += verdict.is_some() as usize;
        let note = share_fell(b, d).map(|n| format!(" (note: {n})")).unwrap_or_default();
        writeln!(
            out,
            "  {:<30} {:<13} {:>6} -> {:<6} {:>5} -> {:<5} {}{}",
            d.bug,
            d.explore,
            seed(b.seeds_to_first),
            seed(d.seeds_to_first),
            b.failing,
            d.failing,
            verdict.map_or("ok".to_string(), |v| format!("LOST: {v}")),
            note
        )?;
    }
    writeln!(out, "{lost} of {} rows lost detection power", ds.len())?;
    Ok(lost)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(first: Option<u64>, failing: u64) -> Baseline {
        Baseline {
            bug: "b".into(),
            explore: "seeded".into(),
            seeds: 2000,
            seeds_to_first: first,
            failing,
        }
    }

    fn now(first: Option<u64>, failing: u64) -> Detection {
        Detection {
            bug: "b",
            explore: "seeded".into(),
            seeds: 2000,
            seeds_to_first: first,
            failing,
            ..Detection::default()
        }
    }

    #[test]
    fn the_no_loss_rule_allows_noise_and_flags_real_losses() {
        // A common bug: found at once before, must be found early now.
        assert_eq!(lost_power(&row(Some(1), 1800), &now(Some(2), 1790)), None);
        assert!(lost_power(&row(Some(1), 1800), &now(Some(9), 1790)).is_some());
        // A rare bug (1 %): its first seed wanders; ln(100)/0.0095 = 485.
        assert_eq!(lost_power(&row(Some(6), 19), &now(Some(84), 18)), None);
        assert!(lost_power(&row(Some(6), 19), &now(Some(600), 18)).is_some());
        assert!(lost_power(&row(Some(6), 19), &now(None, 0)).is_some());
        // A failing share that fell far beyond binomial noise is noted,
        // and one that moved within it is not; nor is one seed of 2,000.
        assert!(share_fell(&row(Some(1), 1000), &now(Some(1), 800)).is_some());
        assert_eq!(share_fell(&row(Some(1), 1000), &now(Some(1), 960)), None);
        assert_eq!(share_fell(&row(Some(1), 2000), &now(Some(1), 1998)), None);
    }
}
