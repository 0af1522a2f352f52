//! Clean strategies are clean: sweeps of the default scenario and of every
//! stress scenario find nothing.

use domain::Strategy;
use sagasim::scenario::{Scenario, BUILT_IN};
use sagasim::sweep::{sweep, SweepSpec};

fn clean(strategy: Strategy, scenario: &str, seeds: u64) {
    let s = Scenario::load(scenario).expect("built-in");
    let spec = SweepSpec { scenario: &s, strategy, bug: None, seeds: (0, seeds), jobs: 2 };
    let r = sweep(&spec);
    assert_eq!(r.runs, seeds);
    assert_eq!(r.failures, vec![], "{strategy:?} on {scenario}: no violation");
    assert_eq!(r.outcomes.unfinished, 0, "every order finished");
    let o = r.outcomes;
    assert!(
        o.confirmed > 0 && o.cancelled + o.rejected > 0,
        "success and failure both happen: {o:?}"
    );
    assert!(r.faults > seeds * 10, "faults were injected: {}", r.faults);
}

#[test]
fn clean_choreography_survives_2000_seeds_of_the_default_scenario() {
    clean(Strategy::Choreography, "default", 2000);
}

#[test]
fn every_strategy_survives_3000_seeds_of_every_built_in_scenario() {
    for strategy in Strategy::ALL {
        for (name, _) in BUILT_IN {
            clean(strategy, name, 3000);
        }
    }
}
