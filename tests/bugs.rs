//! Each planted bug is found by a sweep of the default scenario, and every
//! failure's reproduce command, run again, fails the same way.

use std::process::Command;

use domain::{Bug, Strategy};
use reports::{Failure, RunResult};
use sagasim::scenario::Scenario;
use sagasim::sweep::{sweep, SweepSpec};

fn failures(bug: Bug) -> Vec<Failure> {
    let s = Scenario::load("default").expect("built-in");
    let spec = SweepSpec {
        scenario: &s,
        strategy: Strategy::Choreography,
        bug: Some(bug),
        seeds: (0, 500),
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

fn check(bug: Bug, expected: &[&str]) {
    let found = failures(bug);
    assert!(!found.is_empty(), "{} found within 500 seeds", bug.name());
    for f in &found {
        assert!(expected.contains(&f.invariant.as_str()), "{} broke {}", bug.name(), f.invariant);
    }
    for f in &found {
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
fn no_inbox_is_found_and_reproduces() {
    check(Bug::NoInbox, &["no-double-charge", "eventual-consistency"]);
}

#[test]
fn no_outbox_is_found_and_reproduces() {
    check(Bug::NoOutbox, &["eventual-consistency", "no-stuck-saga"]);
}
