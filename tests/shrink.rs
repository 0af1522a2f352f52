//! Shrinking: the kernel's fault mask switches faults off and nothing else,
//! a shrunk failure still fails the same way and is never larger than its
//! input, and every planted bug's failure gets small.

use std::collections::BTreeSet;

use domain::{Bug, Strategy};
use proptest::prelude::*;
use sagasim::harness::{self, RunReport, RunSpec};
use sagasim::scenario::Scenario;
use sagasim::shrink::{shrink, starting_point, struck, Shrunk, Target};
use sagasim::sweep::failure_of;

fn run(s: &Scenario, strategy: Strategy, bug: Option<Bug>, seed: u64) -> RunReport {
    harness::run(&RunSpec::new(s, strategy, bug, seed))
}

#[test]
fn the_fault_mask_switches_faults_off_and_nothing_else() {
    let s = Scenario::load("default").expect("default");
    for seed in 0..10 {
        let plain = run(&s, Strategy::Choreography, None, seed);
        let keys: BTreeSet<u64> = struck(&plain).into_iter().collect();
        assert!(keys.len() > 10, "seed {seed} has faults to switch off");
        let all = RunSpec {
            fault_mask: Some(&keys),
            ..RunSpec::new(&s, Strategy::Choreography, None, seed)
        };
        let masked = harness::run(&all);
        assert_eq!((masked.digest, &masked.faults), (plain.digest, &plain.faults), "seed {seed}");
        let none = BTreeSet::new();
        let quiet = harness::run(&RunSpec { fault_mask: Some(&none), ..all });
        assert!(struck(&quiet).is_empty(), "seed {seed}: every fault switched off");
        assert_eq!(quiet.violation, None);
    }
}

/// A failing seed's target and its starting point: every fault that
/// struck, every submission.
fn start(
    scenario: &str,
    strategy: Strategy,
    bug: Bug,
    seed: u64,
) -> Option<(Target, Vec<u64>, Vec<u64>)> {
    let s = Scenario::load(scenario).expect("built in");
    let r = run(&s, strategy, Some(bug), seed);
    let f = failure_of(&r, &s, strategy, Some(bug))?;
    let target = Target { scenario: s, strategy, bug: Some(bug), seed, invariant: f.invariant };
    let (faults, arrivals) = starting_point(&r, None);
    Some((target, faults, arrivals))
}

/// Replay a shrunk plan from scratch, as `replay` of its file does.
fn replay(t: &Target, shrunk: &Shrunk) -> RunReport {
    let scenario = shrunk.size.apply(&t.scenario);
    let spec = RunSpec {
        fault_mask: Some(&shrunk.mask),
        arrivals: Some(&shrunk.arrivals),
        ..RunSpec::new(&scenario, t.strategy, t.bug, t.seed)
    };
    harness::run(&spec)
}

const QUICK: [(Bug, Strategy, &str); 4] = [
    (Bug::NoInbox, Strategy::Choreography, "default"),
    (Bug::NoOutbox, Strategy::Choreography, "crash-storm"),
    (Bug::PgRetryWithoutKey, Strategy::Choreography, "pg-trouble"),
    (Bug::PgTimeoutAsFailure, Strategy::Choreography, "pg-trouble"),
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// A shrunk failure still fails with the same invariant, replays to the
    /// same digest, and is never larger than its input in any dimension.
    #[test]
    fn a_shrunk_failure_still_fails_and_is_never_larger(case in 0usize..4, seed in 0u64..30) {
        let (bug, strategy, scenario) = QUICK[case];
        let Some((t, faults, arrivals)) = start(scenario, strategy, bug, seed) else {
            return Ok(());
        };
        let shrunk = shrink(&t, faults.clone(), arrivals.clone()).expect("the input fails");
        let again = replay(&t, &shrunk);
        let f = failure_of(&again, &shrunk.size.apply(&t.scenario), strategy, Some(bug));
        prop_assert_eq!(f.map(|f| f.invariant), Some(t.invariant.clone()));
        prop_assert_eq!(again.digest, shrunk.report.digest);
        prop_assert!(shrunk.mask.len() <= faults.len());
        prop_assert!(shrunk.arrivals.len() <= arrivals.len());
        let (small, big) = (shrunk.size, sagasim::shrink::Size::of(&t.scenario));
        prop_assert!(small.users <= big.users && small.products <= big.products);
        prop_assert!(small.fault_phase_us <= big.fault_phase_us);
        // Deterministic: the same input shrinks to the same failure.
        let twice = shrink(&t, faults, arrivals).expect("the input fails");
        prop_assert_eq!((twice.mask, twice.arrivals, twice.report.digest), (shrunk.mask, shrunk.arrivals, shrunk.report.digest));
    }
}

/// Every planted bug's first failure shrinks to at most 5 faults; the ones
/// whose failure does not hang on the timing of many orders get down to a
/// handful of submissions, the others at least lose some.
#[test]
fn every_planted_bug_s_failure_shrinks() {
    let cases: [(Bug, Strategy, &str, Option<usize>); 13] = [
        (Bug::NoOutbox, Strategy::Choreography, "crash-storm", Some(5)),
        (Bug::NoInbox, Strategy::Choreography, "default", Some(6)),
        (Bug::NoIdempotencyKey, Strategy::Choreography, "default", Some(5)),
        (Bug::PgRetryWithoutKey, Strategy::Choreography, "pg-trouble", Some(5)),
        (Bug::CouponCheckThenAct, Strategy::Choreography, "coupon-rush", Some(5)),
        (Bug::CommitOffsetBeforeProcess, Strategy::Choreography, "crash-storm", None),
        (Bug::NoDlq, Strategy::Choreography, "default", None),
        (Bug::PgTimeoutAsFailure, Strategy::Choreography, "pg-trouble", Some(5)),
        (Bug::KeyPayloadUnchecked, Strategy::Choreography, "default", Some(5)),
        (Bug::EarlyEventDropped, Strategy::Choreography, "default", None),
        (Bug::NonIdempotentCompensation, Strategy::Orchestration, "default", None),
        (Bug::CompensationBeforeAction, Strategy::Orchestration, "slow-network", None),
        (Bug::NoSemanticLock, Strategy::Orchestration, "pg-trouble", None),
    ];
    assert_eq!(cases.len(), Bug::ALL.len());
    for (bug, strategy, scenario, small) in cases {
        let (t, faults, arrivals) = (0..50)
            .find_map(|seed| start(scenario, strategy, bug, seed))
            .unwrap_or_else(|| panic!("{} fails within 50 seeds", bug.name()));
        let shrunk = shrink(&t, faults.clone(), arrivals.clone()).expect("the input fails");
        let (n_faults, n_arrivals) = (shrunk.mask.len(), shrunk.arrivals.len());
        assert!(n_faults <= 5, "{}: {n_faults} faults left of {}", bug.name(), faults.len());
        match small {
            Some(max) => assert!(n_arrivals <= max, "{}: {n_arrivals} submissions", bug.name()),
            None => assert!(n_arrivals < arrivals.len(), "{}: no submission removed", bug.name()),
        }
    }
}
