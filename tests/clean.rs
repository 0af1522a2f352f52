//! Clean strategies are clean: sweeps of the default scenario and of every
//! stress scenario find nothing.

use domain::Strategy;
use sagasim::harness::explore::Explore;
use sagasim::scenario::{Scenario, BUILT_IN};
use sagasim::sweep::{sweep, SweepSpec};

fn clean(strategy: Strategy, scenario: &str, seeds: u64) {
    let s = Scenario::load(scenario).expect("built-in");
    // The command line's default exploration: a swarm mix per seed.
    let explore = Explore::default();
    let spec = SweepSpec { scenario: &s, strategy, bug: None, seeds: (0, seeds), jobs: 2, explore };
    let r = sweep(&spec);
    assert_eq!(r.runs, seeds);
    assert_eq!(r.failures, vec![], "{strategy:?} on {scenario}: no violation");
    assert_eq!(r.outcomes.unfinished, 0, "every order finished");
    let o = r.outcomes;
    assert!(
        o.confirmed > 0 && o.cancelled + o.rejected > 0,
        "success and failure both happen: {o:?}"
    );
    // saga-bench has only the peer's partitions (a service cut from the
    // broker, or from the orchestrator) and crash: a few per seed, and
    // only the crash for the monolith, which has no such link.
    let per_seed = match scenario {
        "calm" => 0,
        "saga-bench" if strategy == Strategy::Monolith => 1,
        "saga-bench" => 3,
        _ => 10,
    };
    assert!(r.faults >= seeds * per_seed, "faults were injected: {}", r.faults);
}

#[test]
fn clean_choreography_survives_2000_seeds_of_the_default_scenario() {
    clean(Strategy::Choreography, "default", 2000);
}

/// Every strategy that claims to survive faults survives every built-in
/// scenario; every strategy survives the calm one.
#[test]
fn every_strategy_survives_3000_seeds_of_every_scenario_it_claims() {
    for strategy in Strategy::ALL {
        for (name, _) in BUILT_IN {
            if strategy.survives_faults() || *name == "calm" {
                clean(strategy, name, 3000);
            }
        }
    }
}

/// §2.5's synchronous cancel calls each cancel once: under faults some are
/// lost and leave an order's effects half undone, where the orchestration,
/// retrying its compensations, repairs every one on the same seeds.
#[test]
fn sync_cancel_leaves_inconsistencies_that_orchestration_repairs() {
    let s = Scenario::load("default").expect("built-in");
    let sweep_of = |strategy| {
        let explore = Explore::AS_WRITTEN;
        sweep(&SweepSpec { scenario: &s, strategy, bug: None, seeds: (0, 300), jobs: 2, explore })
    };
    let sync = sweep_of(Strategy::SyncCancel);
    assert!(sync.violations > 30, "faults break the synchronous cancel: {}", sync.violations);
    for f in &sync.failures {
        assert!(["eventual-consistency", "no-stuck-saga"].contains(&f.invariant.as_str()), "{f:?}");
    }
    assert_eq!(sweep_of(Strategy::Orchestration).failures, vec![]);
}

/// §2.5's compensation coupon: a failure the system caused (a stock-out, a
/// step that never answered) earns the user a coupon; nothing else does, and
/// no other strategy issues one.
#[test]
fn compensation_coupon_apologises_for_system_failures_only() {
    use sagasim::harness::{self, RunSpec};
    let s = Scenario::load("flash-sale").expect("built-in");
    let (mut issued, mut system_failures) = (0, 0);
    for seed in 0..50 {
        let r = harness::run(&RunSpec::new(&s, Strategy::CompensationCoupon, None, seed));
        assert_eq!(r.violation, None);
        issued += r.coverage.apologies;
        let plain = harness::run(&RunSpec::new(&s, Strategy::Orchestration, None, seed));
        assert_eq!(plain.coverage.apologies, 0);
        system_failures += r.system_failures;
    }
    assert!(issued > 0, "stock-outs happen in a flash sale");
    assert_eq!(issued, system_failures, "one coupon per order the system failed");
}
