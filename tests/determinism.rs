//! Determinism: the same scenario, strategy, bug and seed give the same trace
//! digest, whether run again, with a trace kept, or on another worker thread.

use domain::{Bug, Strategy};
use sagasim::harness::{self, RunSpec};
use sagasim::scenario::Scenario;
use sagasim::sweep::{run_seeds, SweepSpec};

fn spec(s: &Scenario, bug: Option<Bug>, seed: u64, trace: bool) -> RunSpec<'_> {
    RunSpec { trace, ..RunSpec::new(s, Strategy::Choreography, bug, seed) }
}

#[test]
fn rerunning_a_seed_reproduces_its_digest() {
    let s = Scenario::load("default").expect("built-in");
    for bug in [None, Some(Bug::NoInbox), Some(Bug::NoOutbox)] {
        for seed in [0, 1, 7, 12345] {
            let a = harness::run(&spec(&s, bug, seed, false));
            let b = harness::run(&spec(&s, bug, seed, false));
            assert_eq!(a.digest, b.digest, "seed {seed} bug {bug:?}");
            assert_eq!(
                (a.step, a.time_us, a.faults.clone()),
                (b.step, b.time_us, b.faults.clone())
            );
        }
    }
}

#[test]
fn keeping_a_trace_does_not_change_the_run() {
    let s = Scenario::load("default").expect("built-in");
    for seed in 0..5 {
        let quiet = harness::run(&spec(&s, None, seed, false));
        let traced = harness::run(&spec(&s, None, seed, true));
        assert_eq!(quiet.digest, traced.digest);
        assert!(traced.trace.len() as u64 >= traced.step, "a line per step at least");
        assert!(quiet.trace.is_empty());
    }
}

#[test]
fn per_step_checks_do_not_change_the_run() {
    let s = Scenario::load("default").expect("built-in");
    for seed in 0..5 {
        let on = harness::run(&spec(&s, None, seed, false));
        let off = harness::run(&RunSpec { per_step_checks: false, ..spec(&s, None, seed, false) });
        assert_eq!(on.digest, off.digest);
    }
}

#[test]
fn different_seeds_give_different_digests() {
    let s = Scenario::load("default").expect("built-in");
    let mut digests: Vec<u64> =
        (0..100).map(|seed| harness::run(&spec(&s, None, seed, false)).digest).collect();
    digests.sort();
    digests.dedup();
    assert_eq!(digests.len(), 100);
}

#[test]
fn per_seed_results_are_the_same_with_one_job_or_two() {
    let s = Scenario::load("default").expect("built-in");
    let sweep = |jobs| {
        run_seeds(&SweepSpec {
            scenario: &s,
            strategy: Strategy::Choreography,
            bug: Some(Bug::NoInbox),
            seeds: (0, 500),
            jobs,
            explore: sagasim::harness::explore::Explore::default(),
        })
    };
    let (one, two) = (sweep(1), sweep(2));
    assert_eq!(one.len(), 500);
    assert_eq!(one, two);
}

#[test]
fn the_workload_depends_on_the_seed_alone() {
    let s = Scenario::load("default").expect("built-in");
    let a = harness::workload::draw(&s.workload, 42);
    let b = harness::workload::draw(&s.workload, 42);
    let c = harness::workload::draw(&s.workload, 43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a.arrivals.len() as u64 >= s.workload.orders, "every order, and some sent twice");
    assert!(a.arrivals.windows(2).all(|w| w[0].at_us <= w[1].at_us), "arrivals in time order");
}

#[test]
fn every_strategy_reruns_to_the_same_digest() {
    let s = Scenario::load("default").expect("built-in");
    for strategy in Strategy::ALL {
        for seed in [3, 99] {
            let spec = RunSpec::new(&s, strategy, None, seed);
            let (a, b) = (harness::run(&spec), harness::run(&spec));
            assert_eq!(a.digest, b.digest, "{strategy:?} seed {seed}");
            assert_eq!(a.outcomes, b.outcomes);
        }
    }
}

#[test]
fn seed_n_has_the_same_workload_under_every_strategy_and_bug() {
    let s = Scenario::load("coupon-rush").expect("built-in");
    for seed in [0, 7, 4242] {
        let arrivals = |strategy, bug| {
            let sim = harness::build(&RunSpec::new(&s, strategy, bug, seed));
            sim.app.client.arrivals().to_vec()
        };
        let first = arrivals(Strategy::Monolith, None);
        assert!(!first.is_empty());
        for strategy in Strategy::ALL {
            assert_eq!(arrivals(strategy, None), first, "{strategy:?}");
            for &bug in Bug::ALL.iter().filter(|b| b.strategies().contains(&strategy)) {
                assert_eq!(arrivals(strategy, Some(bug)), first, "{strategy:?} {bug:?}");
            }
        }
    }
}

/// Several instances per service (shared databases, consumer groups, read
/// and commit steps, requests spread over instances) rerun to the same
/// digest, with or without a trace kept, under every strategy that runs
/// them.
#[test]
fn several_instances_rerun_to_the_same_digest() {
    let s = Scenario::load("crash-storm").expect("built-in");
    assert!(s.instances.iter().any(|&n| n > 1));
    for strategy in [Strategy::Choreography, Strategy::Orchestration, Strategy::TwoPhaseCommit] {
        for seed in [0, 5, 42] {
            let spec = RunSpec::new(&s, strategy, None, seed);
            let (a, b) = (harness::run(&spec), harness::run(&spec));
            assert_eq!(a.digest, b.digest, "{strategy:?} seed {seed}");
            assert_eq!(a.stats, b.stats);
            let traced = harness::run(&RunSpec { trace: true, ..spec });
            assert_eq!(traced.digest, a.digest);
        }
    }
}
