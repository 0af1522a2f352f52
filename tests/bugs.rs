//! Each planted bug is found by a sweep of a named built-in scenario: the
//! invariant that must catch it is among the failures, every failure is one
//! the bug explains, and failures reproduce through the binary with the same
//! invariant, step and digest.

use std::process::Command;

use domain::{Bug, Strategy};
use reports::{Failure, RunResult};
use sagasim::scenario::Scenario;
use sagasim::sweep::{sweep, SweepSpec};

/// A bug, the scenario that finds it, the invariant that must catch it, and
/// every invariant its failures may name.
struct Case {
    bug: Bug,
    scenario: &'static str,
    catches: &'static str,
    may_break: &'static [&'static str],
}

const EC: &str = "eventual-consistency";
const SIDE: &str = "exactly-once-side-effects";
const STUCK: &str = "no-stuck-saga";

const CASES: &[Case] = &[
    Case { bug: Bug::NoOutbox, scenario: "default", catches: EC, may_break: &[EC, SIDE, STUCK] },
    Case {
        bug: Bug::NoInbox,
        scenario: "default",
        catches: "no-double-charge",
        may_break: &["no-double-charge", SIDE, "confirmed-is-complete", EC],
    },
    Case {
        bug: Bug::NoIdempotencyKey,
        scenario: "default",
        catches: "idempotent-responses",
        may_break: &["idempotent-responses"],
    },
    Case {
        bug: Bug::PgRetryWithoutKey,
        scenario: "default",
        catches: "no-double-charge",
        may_break: &["no-double-charge", EC],
    },
    Case {
        bug: Bug::CouponCheckThenAct,
        scenario: "default",
        catches: "coupon-single-use",
        may_break: &["coupon-single-use", EC],
    },
    Case {
        bug: Bug::CommitOffsetBeforeProcess,
        scenario: "default",
        catches: EC,
        may_break: &[EC, STUCK, SIDE],
    },
    Case { bug: Bug::NoDlq, scenario: "default", catches: STUCK, may_break: &[EC, STUCK, SIDE] },
    Case { bug: Bug::PgTimeoutAsFailure, scenario: "default", catches: EC, may_break: &[EC] },
    Case { bug: Bug::EarlyEventDropped, scenario: "default", catches: SIDE, may_break: &[SIDE] },
    Case {
        bug: Bug::KeyPayloadUnchecked,
        scenario: "default",
        catches: "idempotent-responses",
        may_break: &["idempotent-responses"],
    },
];

fn failures(bug: Bug, scenario: &str, seeds: u64) -> Vec<Failure> {
    let s = Scenario::load(scenario).expect("built-in");
    let spec = SweepSpec {
        scenario: &s,
        strategy: Strategy::Choreography,
        bug: Some(bug),
        seeds: (0, seeds),
        jobs: 2,
    };
    sweep(&spec).failures
}

/// Run a failure's `repro` line with the built binary and return its result.
fn reproduce(f: &Failure) -> (RunResult, i32) {
    let mut words = f.repro.split_whitespace();
    assert_eq!(words.next(), Some("sagasim"));
    let out = Command::new(env!("CARGO_BIN_EXE_sagasim"))
        .args(words)
        .args(["--format", "json"])
        .output()
        .expect("the binary runs");
    let result = serde_json::from_slice(&out.stdout).expect("replay prints a run result");
    (result, out.status.code().expect("exited"))
}

fn check_reproduces(found: &[Failure]) {
    for f in found {
        let (r, code) = reproduce(f);
        assert_eq!(code, 1, "the reproduction fails");
        let again = r.failure.expect("the reproduction reports the violation");
        assert_eq!(
            (&again.invariant, &again.digest, again.step),
            (&f.invariant, &f.digest, f.step)
        );
    }
}

#[test]
fn every_planted_bug_is_found_within_2000_seeds_of_its_scenario() {
    assert_eq!(CASES.len(), Bug::ALL.len(), "every bug has a case");
    for c in CASES {
        let found = failures(c.bug, c.scenario, 2000);
        let names: Vec<&str> = found.iter().map(|f| f.invariant.as_str()).collect();
        assert!(
            names.contains(&c.catches),
            "{} not caught by {}: {names:?}",
            c.bug.name(),
            c.catches
        );
        for n in &names {
            assert!(
                c.may_break.contains(n),
                "{} broke {n}, which it does not explain",
                c.bug.name()
            );
        }
        check_reproduces(&found[..found.len().min(10)]);
    }
}

/// The first slice's two bugs, checked harder: within 500 seeds, and every
/// failure reproduces.
#[test]
fn no_inbox_and_no_outbox_are_found_within_500_seeds_and_all_reproduce() {
    for bug in [Bug::NoInbox, Bug::NoOutbox] {
        let found = failures(bug, "default", 500);
        assert!(!found.is_empty(), "{} found within 500 seeds", bug.name());
        check_reproduces(&found);
    }
}
