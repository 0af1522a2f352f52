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
        "one-way-partition",
        "heal-one-way",
        "db-outage",
        "mark-sent-fail",
        "dead-letter-fail",
        "rebalance",
        "pause",
        "cache-flush",
        "commit-fail",
        "commit-lost-ack",
        "commit-hang",
        "poison",
        "pg-decline",
        "pg-timeout-before",
        "pg-timeout-after",
        "pg-slow",
        "pg-refund-fail",
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

/// Under two-phase commit a crashed coordinator leaves its participants
/// prepared, rows locked, until it comes back: other orders for those rows
/// are blocked meanwhile, and the trace says so.
#[test]
fn a_crashed_coordinator_blocks_its_participants_until_it_recovers() {
    let s = Scenario::load("crash-storm").expect("built-in");
    let mut blocked_while_down = 0;
    for seed in 0..40 {
        let spec =
            RunSpec { trace: true, ..RunSpec::new(&s, Strategy::TwoPhaseCommit, None, seed) };
        let sim = harness::build(&spec);
        let coordinator = sim.app.nodes.of(domain::Service::Orchestrator);
        let r = harness::run(&spec);
        assert_eq!(r.violation, None, "seed {seed}");
        let mut down = false;
        for line in r.trace.iter().map(|r| r.text.as_str()) {
            if line.contains(&format!("fault Crash {{ node: {coordinator:?} }}")) {
                down = true;
            } else if line.contains(&format!("fault Restart {{ node: {coordinator:?} }}")) {
                down = false;
            } else if down && line.contains("blocked: order") {
                blocked_while_down += 1;
            }
        }
    }
    assert!(blocked_while_down > 0, "some order waited on locks held for a crashed coordinator");
}

/// Regression: poison records duplicated by a slow network filled whole
/// batches; their retries outlasted the fetch timeout, the broker reset the
/// session, and the consumer started over for ever (a rebalance storm, as
/// when Kafka's max.poll.interval is exceeded). Consumers now heartbeat
/// while they retry.
#[test]
fn slow_poison_batches_keep_their_session() {
    let s = Scenario::load("slow-network").expect("built-in");
    let r = harness::run(&RunSpec::new(&s, Strategy::Choreography, None, 245));
    assert_eq!((r.violation, r.end), (None, End::Settled));
}

/// The payment gateway's processing window is seen: a retry or a status
/// query under a charge's key during it is answered "in progress"; and the
/// recovery pass finds stuck sagas and payment calls to take up (left by
/// commits whose answer was lost). The runs stay clean.
#[test]
fn the_gateway_answers_in_progress_and_the_recovery_pass_takes_up_stuck_work() {
    let s = Scenario::load("default").expect("built-in");
    let (mut in_progress, mut sagas, mut payments) = (0, 0, 0);
    for seed in 0..100 {
        let r = harness::run(&RunSpec::new(&s, Strategy::Orchestration, None, seed));
        assert_eq!((r.violation, r.end), (None, End::Settled), "seed {seed}");
        in_progress += r.coverage.pg_in_progress;
        sagas += r.coverage.sagas_swept;
        payments += r.coverage.payments_swept;
    }
    assert!(in_progress > 0 && sagas > 0 && payments > 0, "{in_progress} {sagas} {payments}");
}

/// Run one seed: it must end settled with no violation, and a rerun must
/// give the same digest.
fn clean_and_repeatable(s: &Scenario, strategy: Strategy, seed: u64) -> harness::RunReport {
    let r = harness::run(&RunSpec::new(s, strategy, None, seed));
    assert_eq!((r.violation.clone(), r.end), (None, End::Settled), "seed {seed}");
    let again = harness::run(&RunSpec::new(s, strategy, None, seed));
    assert_eq!(again.digest, r.digest, "seed {seed}: the same seed is the same run");
    r
}

/// Refunds that stay pending: in `pg-trouble` the gateway leaves an accepted
/// refund pending for up to 500 ms, longer than Payment's 150 ms call
/// timeout, so Payment's retried refunds hear "in progress" until it
/// settles. Every cancelled order still ends refunded, and the runs stay
/// clean; the same seed is the same run.
#[test]
fn pending_refunds_are_waited_out() {
    let s = Scenario::load("pg-trouble").expect("built-in");
    let (mut pending, mut in_progress) = (0, 0);
    for seed in 0..30 {
        let r = clean_and_repeatable(&s, Strategy::Orchestration, seed);
        pending += r.coverage.pg_refunds_pending;
        in_progress += r.coverage.pg_in_progress;
    }
    assert!(pending > 0 && in_progress > 0, "{pending} {in_progress}");
    let mut none = s.clone();
    none.pg.refund_pending_max_us = 0;
    let r = harness::run(&RunSpec::new(&none, Strategy::Orchestration, None, 0));
    assert_eq!(r.coverage.pg_refunds_pending, 0, "off when the scenario says 0");
}

/// Redis behind a network link: in `slow-network` 5 % of the gateway's
/// cache calls time out each way, lost on the way or applied with the
/// answer lost. Both strike; the gateway then knows nothing, the client
/// hears "in progress" and asks again, and every run stays clean and ends
/// with every submission answered. The same seed is the same run.
#[test]
fn cache_timeouts_strike_both_ways_and_the_gateway_survives_them() {
    let s = Scenario::load("slow-network").expect("built-in");
    let (mut before, mut after) = (0, 0);
    for seed in 0..30 {
        let r = clean_and_repeatable(&s, Strategy::Orchestration, seed);
        for f in &r.faults {
            match &f.fault {
                Fault::Injected { what, .. } if what == "cache-timeout-before" => before += 1,
                Fault::Injected { what, .. } if what == "cache-timeout-after" => after += 1,
                _ => {}
            }
        }
    }
    assert!(before > 0 && after > 0, "{before} {after}");
}

/// A gateway that forgets idempotency keys: in `pg-trouble` it keeps them
/// 600 ms. Payment takes up a charge that late (or after a restart, not
/// knowing how late) by asking its status first, so no charge reaches the
/// gateway under a forgotten key and every run stays clean, under each
/// strategy that charges cards. The same seed is the same run.
#[test]
fn charges_taken_up_past_the_key_retention_ask_their_status_first() {
    let s = Scenario::load("pg-trouble").expect("built-in");
    for strategy in [Strategy::Choreography, Strategy::Orchestration, Strategy::Monolith] {
        let (mut distrusted, mut expired) = (0, 0);
        for seed in 0..30 {
            let r = clean_and_repeatable(&s, strategy, seed);
            distrusted += r.coverage.pg_keys_distrusted;
            expired += r.coverage.pg_keys_expired;
        }
        assert!(distrusted > 0, "{strategy:?}: no charge was taken up past the retention");
        assert_eq!(expired, 0, "{strategy:?}: a charge reached the gateway under a forgotten key");
    }
}

/// `saga-bench` strikes what the peer strikes and nothing else: a crash of
/// one of Product, Order, Payment and User, and partitions between one of
/// them and the broker. Never the gateway, its link, or Payment's link to
/// the PG (the scenario's `crash_nodes` and `partition_links`); the default
/// scenario, which allows all of those, does strike them.
#[test]
fn saga_bench_strikes_only_the_peers_faults() {
    let struck = |name: &str| {
        let s = Scenario::load(name).expect("built-in");
        let spec = |seed| RunSpec::new(&s, Strategy::Choreography, None, seed);
        let nodes = harness::build(&spec(0)).app.nodes;
        let ours: Vec<_> = domain::Service::OURS.iter().map(|&x| nodes.of(x)).collect();
        let (mut crashes, mut cuts, mut others) = (0, 0, 0);
        for seed in 0..200 {
            for f in harness::run(&spec(seed)).faults {
                match f.fault {
                    Fault::Crash { node } if ours.contains(&node) => crashes += 1,
                    Fault::Partition { a, b }
                        if (ours.contains(&a) && b == nodes.broker)
                            || (ours.contains(&b) && a == nodes.broker) =>
                    {
                        cuts += 1
                    }
                    Fault::Crash { .. } | Fault::Partition { .. } => others += 1,
                    _ => {}
                }
            }
        }
        (crashes, cuts, others)
    };
    let (crashes, cuts, others) = struck("saga-bench");
    assert_eq!(crashes, 200, "one crash of a service per seed");
    assert!(cuts >= 400, "2 to 4 service-broker partitions a seed, found {cuts}");
    assert_eq!(others, 0, "saga-bench struck a node or link the peer never strikes");
    let (_, _, others) = struck("default");
    assert!(others > 0, "the default scenario also strikes the gateway and its links");
}
