//! A panic inside one simulated run is that seed's failure: the sweep goes on
//! and loses no result. A run that blows its step budget is a failure too.

use domain::Strategy;
use sagasim::harness::{self, RunReport, RunSpec};
use sagasim::scenario::Scenario;
use sagasim::sweep::{run_seeds, run_seeds_with, SweepSpec};

fn panics_on_every_seventh(spec: &RunSpec<'_>) -> RunReport {
    if spec.seed % 7 == 3 {
        panic!("planted panic in seed {}", spec.seed);
    }
    harness::run(spec)
}

#[test]
fn a_panicking_run_becomes_its_seeds_failure_and_the_sweep_goes_on() {
    let s = Scenario::load("default").expect("built-in");
    let spec = SweepSpec {
        scenario: &s,
        strategy: Strategy::Choreography,
        bug: None,
        seeds: (0, 50),
        jobs: 2,
        explore: sagasim::harness::explore::Explore::default(),
    };
    let with_panics = run_seeds_with(&spec, &panics_on_every_seventh);
    let clean = run_seeds(&spec);
    assert_eq!(with_panics.len(), 50, "no result lost");
    for (p, c) in with_panics.iter().zip(&clean) {
        assert_eq!(p.seed, c.seed);
        if p.seed % 7 == 3 {
            let f = p.failure.as_ref().expect("the panic is a failure");
            assert_eq!(f.invariant, "panic");
            assert_eq!(f.detail, format!("planted panic in seed {}", p.seed));
            assert!(f.repro.contains(&format!("--seed {}", p.seed)));
        } else {
            assert_eq!(p, c, "the other seeds are untouched");
        }
    }
}

#[test]
fn a_blown_step_budget_is_a_failure() {
    let mut s = Scenario::load("default").expect("built-in");
    s.step_budget = 500;
    let spec = SweepSpec {
        scenario: &s,
        strategy: Strategy::Choreography,
        bug: None,
        seeds: (0, 5),
        jobs: 1,
        explore: sagasim::harness::explore::Explore::default(),
    };
    let results = run_seeds(&spec);
    for r in &results {
        let f = r.failure.as_ref().expect("every run needs more than 500 steps");
        assert_eq!((f.invariant.as_str(), f.step), ("step-budget", 500));
    }
}
