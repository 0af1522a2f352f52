//! Clean strategies are clean: a sweep of the default scenario finds nothing.

use domain::Strategy;
use sagasim::scenario::Scenario;
use sagasim::sweep::{sweep, SweepSpec};

#[test]
fn clean_choreography_survives_2000_seeds_of_the_default_scenario() {
    let s = Scenario::load("default").expect("built-in");
    let spec = SweepSpec {
        scenario: &s,
        strategy: Strategy::Choreography,
        bug: None,
        seeds: (0, 2000),
        jobs: 2,
    };
    let r = sweep(&spec);
    assert_eq!(r.runs, 2000);
    assert_eq!(r.failures, vec![], "no violation");
    assert_eq!(r.outcomes.unfinished, 0, "every order finished");
    assert!(
        r.outcomes.confirmed > 0 && r.outcomes.cancelled > 0 && r.outcomes.rejected > 0,
        "the workload exercises success, balance failure and stock failure: {:?}",
        r.outcomes
    );
    assert!(r.faults > 2000 * 10, "faults were injected: {}", r.faults);
}
