//! The faults a scenario asks for happen, and the clean strategies survive
//! them: each fault kind is seen in a sweep of the default scenario, and the
//! runs it struck are clean.

use std::collections::BTreeMap;

use domain::Strategy;
use sagasim::harness::{self, RunSpec};
use sagasim::scenario::Scenario;
use sim::{End, Fault};

/// Fault kinds seen over `seeds` runs of the default scenario, and a few
/// totals the kernel counts.
fn sweep_faults(strategy: Strategy, seeds: u64) -> (BTreeMap<String, u64>, u64) {
    let s = Scenario::load("default").expect("built-in");
    let mut kinds = BTreeMap::new();
    let mut fenced = 0;
    for seed in 0..seeds {
        let r = harness::run(&RunSpec::new(&s, strategy, None, seed));
        assert_eq!(r.violation, None, "{strategy:?} seed {seed}");
        assert_eq!(r.end, End::Settled);
        fenced += r.stats.fenced_commits;
        for f in &r.faults {
            let name = match &f.fault {
                Fault::Injected { what, .. } => what.clone(),
                other => other.kind().to_string(),
            };
            *kinds.entry(name).or_default() += 1;
        }
    }
    (kinds, fenced)
}

#[test]
fn every_fault_kind_strikes_the_choreography_and_it_survives() {
    let (kinds, fenced) = sweep_faults(Strategy::Choreography, 300);
    for kind in [
        "drop",
        "duplicate",
        "delay",
        "crash",
        "restart",
        "partition",
        "heal",
        "rebalance",
        "pause",
        "cache-flush",
        "commit-fail",
        "poison",
        "pg-decline",
        "pg-timeout-before",
        "pg-timeout-after",
        "pg-slow",
    ] {
        assert!(kinds.get(kind).copied().unwrap_or(0) > 0, "no {kind} in {kinds:?}");
    }
    assert!(fenced > 0, "a paused consumer woke up as a zombie and its commits were refused");
}

#[test]
fn the_broker_goes_down_and_comes_back() {
    let s = Scenario::load("default").expect("built-in");
    let mut outages = 0;
    for seed in 0..100 {
        let sim = harness::build(&RunSpec::new(&s, Strategy::Choreography, None, seed));
        let broker = sim.app.nodes.broker;
        let r = harness::run(&RunSpec::new(&s, Strategy::Choreography, None, seed));
        let down = r.faults.iter().any(|f| f.fault == Fault::Crash { node: broker });
        if down {
            outages += 1;
            assert_eq!((r.violation, r.end), (None, End::Settled), "seed {seed}");
        }
    }
    assert!(outages > 10, "outages happened: {outages}");
}
