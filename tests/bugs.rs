//! Each planted bug is found by a sweep of a named built-in scenario: the
//! invariant that must catch it is among the failures, every failure is one
//! the bug explains, and failures reproduce through the binary with the same
//! invariant, step and digest.

use std::process::Command;

use domain::{Bug, Strategy};
use reports::{Failure, RunResult};
use sagasim::harness::explore::Explore;
use sagasim::harness::RunSpec;
use sagasim::scenario::Scenario;
use sagasim::sweep::{sweep, SweepSpec};

/// A bug, the strategy and scenario that find it, the invariant that must
/// catch it, and every invariant its failures may name.
struct Case {
    bug: Bug,
    strategy: Strategy,
    scenario: &'static str,
    catches: &'static str,
    may_break: &'static [&'static str],
}

const EC: &str = "eventual-consistency";
const SIDE: &str = "exactly-once-side-effects";
const STUCK: &str = "no-stuck-saga";
const IDEM: &str = "idempotent-responses";
const DOUBLE: &str = "no-double-charge";
const CHOREO: Strategy = Strategy::Choreography;
const ORCH: Strategy = Strategy::Orchestration;

const fn case(
    bug: Bug,
    strategy: Strategy,
    scenario: &'static str,
    catches: &'static str,
    may_break: &'static [&'static str],
) -> Case {
    Case { bug, strategy, scenario, catches, may_break }
}

const CASES: &[Case] = &[
    case(Bug::NoOutbox, CHOREO, "crash-storm", EC, &[EC, SIDE, STUCK]),
    case(Bug::NoInbox, CHOREO, "default", DOUBLE, &[DOUBLE, SIDE, "confirmed-is-complete", EC]),
    case(Bug::NoIdempotencyKey, CHOREO, "default", IDEM, &[IDEM]),
    case(Bug::PgRetryWithoutKey, CHOREO, "pg-trouble", DOUBLE, &[DOUBLE, EC]),
    case(
        Bug::CouponCheckThenAct,
        CHOREO,
        "coupon-rush",
        "coupon-single-use",
        &["coupon-single-use", EC],
    ),
    case(Bug::CommitOffsetBeforeProcess, CHOREO, "crash-storm", EC, &[EC, STUCK, SIDE]),
    case(Bug::NoDlq, CHOREO, "default", STUCK, &[EC, STUCK, SIDE, IDEM]),
    case(Bug::PgTimeoutAsFailure, CHOREO, "pg-trouble", EC, &[EC]),
    case(Bug::KeyPayloadUnchecked, CHOREO, "default", IDEM, &[IDEM, EC]),
    case(Bug::EarlyEventDropped, CHOREO, "default", SIDE, &[SIDE]),
    case(
        Bug::NonIdempotentCompensation,
        ORCH,
        "default",
        "stock-conservation",
        &["stock-conservation", EC],
    ),
    case(Bug::CompensationBeforeAction, ORCH, "slow-network", EC, &[EC]),
    case(Bug::NoSemanticLock, ORCH, "pg-trouble", EC, &[EC]),
    case(Bug::RecoveryAtBootOnly, CHOREO, "default", EC, &[EC, STUCK]),
    case(Bug::PgKeyPerAttempt, CHOREO, "default", DOUBLE, &[DOUBLE, EC]),
    case(
        Bug::UserInboxUnchecked,
        CHOREO,
        "default",
        DOUBLE,
        &[DOUBLE, EC, "confirmed-is-complete"],
    ),
    case(Bug::InboxWithoutUniqueKey, CHOREO, "crash-storm", SIDE, &[SIDE]),
    case(Bug::StaleReadStock, ORCH, "flash-sale", "stock-conservation", &["stock-conservation"]),
    case(Bug::RelayHighWaterCursor, CHOREO, "crash-storm", EC, &[EC, STUCK, SIDE]),
    case(
        Bug::InboxOnRecordPosition,
        CHOREO,
        "default",
        DOUBLE,
        &[DOUBLE, SIDE, "confirmed-is-complete", EC],
    ),
    case(Bug::PgKeyPastRetention, CHOREO, "pg-trouble", DOUBLE, &[DOUBLE, EC]),
];

fn failures(bug: Bug, strategy: Strategy, scenario: &str, seeds: u64) -> Vec<Failure> {
    let s = Scenario::load(scenario).expect("built-in");
    let explore = Explore::default();
    let spec =
        SweepSpec { scenario: &s, strategy, bug: Some(bug), seeds: (0, seeds), jobs: 2, explore };
    sweep(&spec).failures
}

/// The failures of the first 50 seeds, or, for a bug that rare (one seed in
/// a hundred fails), of the first 2,000: its first failure, wherever the
/// seed's draws put it, is what these tests need.
fn early_failures(c: &Case) -> Vec<Failure> {
    let found = failures(c.bug, c.strategy, c.scenario, 50);
    if found.is_empty() {
        return failures(c.bug, c.strategy, c.scenario, 2000);
    }
    found
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
    (result_line(&out.stdout), out.status.code().expect("exited"))
}

/// `replay --format json` prints a JSON line per step, then the result.
fn result_line(stdout: &[u8]) -> RunResult {
    let text = String::from_utf8_lossy(stdout);
    let last = text.lines().last().expect("replay prints lines");
    serde_json::from_str(last).expect("the last line is the run result")
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
        let found = failures(c.bug, c.strategy, c.scenario, 2000);
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

#[test]
fn every_case_is_the_scenario_and_a_strategy_bench_bugs_measures() {
    for c in CASES {
        // `bench --bugs` sweeps the scenario these cases do.
        assert_eq!(sagasim::measure::detection::scenario_of(c.bug), c.scenario, "{}", c.bug.name());
        assert!(
            c.bug.strategies().contains(&c.strategy),
            "{} under {:?}",
            c.bug.name(),
            c.strategy
        );
    }
}

/// The first slice's two bugs, checked harder: within 500 seeds, and every
/// failure reproduces.
#[test]
fn no_inbox_and_no_outbox_are_found_within_500_seeds_and_all_reproduce() {
    for bug in [Bug::NoInbox, Bug::NoOutbox] {
        let found = failures(bug, CHOREO, "default", 500);
        assert!(!found.is_empty(), "{} found within 500 seeds", bug.name());
        check_reproduces(&found);
    }
}

/// Every planted bug's failure file replays, through the binary, to the same
/// invariant and digest, from the file alone.
#[test]
fn every_planted_bug_s_failure_file_replays_to_the_same_digest() {
    let dir = std::env::temp_dir().join(format!("sagasim-failure-files-{}", std::process::id()));
    let mut recorded = 0;
    for c in CASES {
        let s = Scenario::load(c.scenario).expect("built-in");
        let found = early_failures(c);
        let f = found.first().unwrap_or_else(|| panic!("{} fails within 2000 seeds", c.bug.name()));
        let run = RunSpec {
            explore: Explore::default(),
            ..RunSpec::new(&s, c.strategy, Some(c.bug), f.seed)
        };
        let file = sagasim::investigate::failure_file::record(&run, f)
            .expect("the scenario's text is at hand");
        // A failure may need no fault at all (a stale read under load), so the
        // file is held to the run's own fault decisions, not to a count.
        let again = sagasim::harness::run(&run).faults;
        assert_eq!(
            file.faults.len(),
            again.len(),
            "{}: the file records the run's fault decisions",
            c.bug.name()
        );
        recorded += file.faults.len();
        let path = sagasim::investigate::failure_file::write(&dir, &file).expect("written");
        let out = Command::new(env!("CARGO_BIN_EXE_sagasim"))
            .arg("replay")
            .arg(&path)
            .args(["--format", "json"])
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let r = result_line(&out.stdout);
        let again = r.failure.expect("the violation again");
        assert_eq!((&again.invariant, &again.digest), (&f.invariant, &f.digest));
        assert!(String::from_utf8_lossy(&out.stderr).contains("reproduced:"));
    }
    assert!(recorded > 0, "some failure file records fault decisions to force on replay");
}

/// Check a Mermaid sequence diagram against the small grammar sagasim
/// writes: a header, participants, messages and notes, with every
/// participant used declared first. Returns the messages drawn.
fn check_mermaid(text: &str) -> usize {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("sequenceDiagram"));
    let ident = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut declared: Vec<String> = Vec::new();
    let mut messages = 0;
    for line in lines {
        let line = line.strip_prefix("    ").unwrap_or_else(|| panic!("indented: {line}"));
        if let Some(rest) = line.strip_prefix("participant ") {
            let (id, alias) = rest.split_once(" as ").expect("participant ID as NAME");
            assert!(ident(id) && !alias.is_empty(), "{line}");
            declared.push(id.to_string());
            continue;
        }
        let (head, text) = line.split_once(": ").unwrap_or_else(|| panic!("no text: {line}"));
        assert!(!text.is_empty() && !text.contains(';') && !text.contains('#'), "{line}");
        let ids: Vec<&str> = match head.strip_prefix("Note over ") {
            Some(over) => over.split(',').collect(),
            None => {
                messages += 1;
                head.split("->>").collect()
            }
        };
        assert!(ids.len() <= 2, "{line}");
        for id in ids {
            assert!(declared.iter().any(|d| d == id), "{id} is used before it is declared: {line}");
        }
    }
    messages
}

/// Every planted bug's failure, replayed for the order it names, draws as a
/// Mermaid diagram that parses, names every participant it uses, and ends
/// with the violation.
#[test]
fn every_planted_bug_s_failure_draws_as_a_mermaid_diagram() {
    for c in CASES {
        let found = early_failures(c);
        let f = found.first().unwrap_or_else(|| panic!("{} fails within 2000 seeds", c.bug.name()));
        let mut args = f.repro.split_whitespace().skip(1).map(str::to_string).collect::<Vec<_>>();
        args.extend(["--format".to_string(), "mermaid".to_string()]);
        if let Some(order) = f.entities.iter().find_map(|e| e.strip_prefix("order ")) {
            args.extend(["--order".to_string(), order.to_string()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_sagasim")).args(&args).output().expect("runs");
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8(out.stdout).expect("utf-8");
        assert!(check_mermaid(&text) > 0, "{}: nothing drawn", c.bug.name());
        let last = text.lines().last().expect("a last line");
        assert!(last.contains(&format!("VIOLATED {}", f.invariant)), "{}: {last}", c.bug.name());
    }
}

/// The two stuck states a commit that applies while reporting a failure
/// leaves when sagas and payment calls are taken up only at boot: a sweep
/// finds each (the orchestrator's saga left at its first step, so every
/// retry of its request hears "in progress"; Payment's call never started,
/// so the payment stays charging), and every seed that finds one is clean
/// with the periodic recovery pass.
#[test]
fn recovery_at_boot_only_leaves_two_stuck_states_that_the_recovery_pass_clears() {
    let stuck = |strategy: Strategy, sign: &str| {
        let found = failures(Bug::RecoveryAtBootOnly, strategy, "default", 300);
        let hits: Vec<&Failure> = found.iter().filter(|f| f.detail.contains(sign)).collect();
        assert!(!hits.is_empty(), "{strategy:?}: no failure says {sign:?}");
        let s = Scenario::load("default").expect("built-in");
        for f in hits.iter().take(20) {
            let spec =
                RunSpec { explore: Explore::default(), ..RunSpec::new(&s, strategy, None, f.seed) };
            let r = sagasim::harness::run(&spec);
            assert_eq!(r.violation, None, "{strategy:?} seed {} with the recovery pass", f.seed);
        }
    };
    stuck(ORCH, "never got a final answer");
    stuck(CHOREO, "(payment charging)");
}

/// The two bugs that only concurrency exposes: with two instances of every
/// service their scenario finds them, and the very seeds that fail pass
/// when each service runs alone (its handlers then read and commit with
/// nothing in between), as do the first 300 seeds.
#[test]
fn the_concurrency_bugs_are_found_only_with_several_instances() {
    for bug in [Bug::InboxWithoutUniqueKey, Bug::StaleReadStock, Bug::RelayHighWaterCursor] {
        let c = CASES.iter().find(|c| c.bug == bug).expect("a case");
        let s = Scenario::load(c.scenario).expect("built-in");
        assert!(s.instances.iter().any(|&n| n > 1), "{} runs several instances", c.scenario);
        let found = failures(bug, c.strategy, c.scenario, 300);
        assert!(!found.is_empty(), "{} found within 300 seeds", bug.name());
        let alone = Scenario { instances: [1; 7], ..s.clone() };
        for f in found.iter().take(20) {
            let spec = RunSpec {
                explore: Explore::default(),
                ..RunSpec::new(&alone, c.strategy, Some(bug), f.seed)
            };
            let r = sagasim::harness::run(&spec);
            assert_eq!(r.violation, None, "{} seed {} with one instance each", bug.name(), f.seed);
        }
        let explore = Explore::default();
        let spec = SweepSpec {
            scenario: &alone,
            strategy: c.strategy,
            bug: Some(bug),
            seeds: (0, 300),
            jobs: 2,
            explore,
        };
        assert!(sweep(&spec).failures.is_empty(), "{} with one instance each", bug.name());
    }
}

/// Deduplication on the wrong field is a partial break: keyed on the
/// record's broker position, the inbox still absorbs redeliveries of one
/// copy (a consumer that crashed before its offset commit), and lets
/// through only a copy published again, which is what fails these seeds.
#[test]
fn an_inbox_keyed_on_the_record_position_still_absorbs_redeliveries() {
    let s = Scenario::load("default").expect("built-in");
    let (mut absorbed, mut failed) = (0, 0);
    for seed in 0..100 {
        let bug = Some(Bug::InboxOnRecordPosition);
        let spec = RunSpec { explore: Explore::default(), ..RunSpec::new(&s, CHOREO, bug, seed) };
        let r = sagasim::harness::run(&spec);
        absorbed += r.coverage.duplicates_absorbed;
        failed += u64::from(r.violation.is_some());
    }
    assert!(absorbed > 0, "redeliveries are still absorbed");
    assert!(failed > 0, "republished copies are handled twice");
}

/// A key trusted past the gateway's retention charges twice only because
/// the gateway forgets keys: with keys kept for ever, the seeds that fail
/// pass, and so do the first 300. With the retention and no bug, Payment
/// asked for the status of charges it took up late.
#[test]
fn a_key_trusted_past_its_retention_fails_only_when_the_gateway_forgets_keys() {
    let bug = Bug::PgKeyPastRetention;
    let s = Scenario::load("pg-trouble").expect("built-in");
    assert!(s.pg.key_retention_us > 0, "pg-trouble forgets keys");
    let found = failures(bug, CHOREO, "pg-trouble", 300);
    assert!(!found.is_empty(), "found within 300 seeds");
    let mut forever = s.clone();
    forever.pg.key_retention_us = 0;
    for f in found.iter().take(20) {
        let spec = RunSpec {
            explore: Explore::default(),
            ..RunSpec::new(&forever, CHOREO, Some(bug), f.seed)
        };
        assert_eq!(sagasim::harness::run(&spec).violation, None, "seed {} kept for ever", f.seed);
    }
    let explore = Explore::default();
    let spec = SweepSpec {
        scenario: &forever,
        strategy: CHOREO,
        bug: Some(bug),
        seeds: (0, 300),
        jobs: 2,
        explore,
    };
    assert!(sweep(&spec).failures.is_empty(), "keys kept for ever");
    let distrusted: u64 = (0..50)
        .map(|seed| {
            let spec =
                RunSpec { explore: Explore::default(), ..RunSpec::new(&s, CHOREO, None, seed) };
            sagasim::harness::run(&spec).coverage.pg_keys_distrusted
        })
        .sum();
    assert!(distrusted > 0, "no charge was taken up past the retention");
}
