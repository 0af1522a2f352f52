//! `sagasim list`: the scenarios, strategies, planted bugs, invariants,
//! coverage points and fault kinds there are to choose from.

use std::io::{self, Write};

use domain::{Bug, Invariant, Strategy};

use crate::cli::args::ListWhat;
use crate::scenario::{Scenario, BUILT_IN};

const FAULTS: &[(&str, &str)] = &[
    ("drop", "the network loses a message (network.loss)"),
    ("duplicate", "the network delivers a message twice (network.duplicate)"),
    ("delay", "the network holds a message back so later ones overtake it (network.delay)"),
    ("partition", "two nodes cannot reach each other for a while (faults.partitions)"),
    ("one-way-partition", "messages from one node to another are lost for a while, while the answers the other way get through (faults.one_way_partitions)"),
    ("db-outage", "a service's database is unreachable for a while: every commit fails while the service stays up (faults.db_outages)"),
    ("crash", "a service loses its volatile state and timers; its database survives (faults.crashes)"),
    ("restart", "a crashed service comes back and rebuilds itself from its database"),
    ("pause", "a service freezes past its consumer session and wakes up a zombie (faults.pauses)"),
    ("rebalance", "a consumer group rebalances: consumed but uncommitted records come again (faults.rebalances)"),
    ("broker-outage", "the broker is down for a while; its log survives (faults.broker_outages)"),
    ("commit-fail", "a database commit fails and nothing of it is applied (faults.commit_fail)"),
    ("commit-lost-ack", "a database commit applies but its answer is lost: the caller is told it failed (faults.commit_lost_ack)"),
    ("commit-hang", "a database commit hangs and applies nothing; the service waits out its statement timeout first (faults.commit_hang, faults.commit_hang_ms)"),
    ("mark-sent-fail", "the relay's update marking acknowledged outbox rows sent fails: they are published again (faults.mark_sent_fail)"),
    ("dead-letter-fail", "a consumer's write to its dead-letter topic fails: the record stays at the head of its partition and is tried again (faults.dead_letter_fail)"),
    ("cache-timeout", "a gateway's call to its key cache times out, lost on its way or applied with its answer lost; the gateway knows nothing and the client hears \"in progress\" (faults.cache_timeout)"),
    ("cache-flush", "the idempotency-key cache restarts and forgets every key (faults.cache_flushes)"),
    ("poison", "a record no consumer can read is published (faults.poisons)"),
    ("pg-decline", "the payment gateway declines a card (pg.decline)"),
    ("pg-timeout-before", "the payment gateway loses a request before acting on it (pg.timeout_before)"),
    ("pg-timeout-after", "the payment gateway charges and its answer is lost (pg.timeout_after)"),
    ("pg-slow", "the payment gateway answers late, past the caller's timeout (pg.slow)"),
    ("pg-in-progress", "a new charge takes time to settle at the gateway; a request under its key meanwhile is answered \"in progress\" (pg.processing_max_ms)"),
    ("service-time", "each request, timer or record holds its service for a while; what arrives meanwhile waits in line, so load makes callers time out (services.handler_ms)"),
    ("late-commit", "with several instances, a handler's commit takes longer than its handler, so transactions commit in another order than they took their outbox ids (services.commit_ms)"),
    ("pg-refund-pending", "the payment gateway accepts a refund and leaves it pending for a while; a request under its key meanwhile is answered \"in progress\" (pg.refund_pending_max_ms)"),
    ("pg-key-retention", "the payment gateway forgets an idempotency key after a while: a charge under an older key charges again, so Payment asks what became of a charge before sending it again that late (pg.key_retention_ms)"),
    ("pg-refund-fail", "the payment gateway fails a refund and refunds nothing; Payment asks again (pg.refund_fail)"),
    ("key-expiry", "an idempotency key's mark expires while its request is still running (gateway.in_progress_ttl_ms)"),
    ("client-retry", "the client retries on timeout with the same key, sends twice, or reuses a key (workload.double_submit, workload.key_reuse)"),
    ("contention", "orders crowd onto hot products and shared coupons (workload.hot_share, workload.coupon_share)"),
];

pub fn list(what: Option<ListWhat>, out: &mut impl Write) -> io::Result<()> {
    let all = what.is_none();
    let show = |w| all || what == Some(w);
    if show(ListWhat::Scenarios) {
        if all {
            writeln!(out, "scenarios:")?;
        }
        for (name, text) in BUILT_IN {
            let s = Scenario::parse(text, name, name).expect("built-in scenarios are valid");
            writeln!(out, "  {name:<28} {}", s.description)?;
        }
    }
    if show(ListWhat::Strategies) {
        if all {
            writeln!(out, "strategies:")?;
        }
        for s in Strategy::ALL {
            writeln!(out, "  {:<28} {}", s.name(), s.describe())?;
        }
    }
    if show(ListWhat::Bugs) {
        if all {
            writeln!(out, "bugs:")?;
        }
        for b in Bug::ALL {
            let strategies: Vec<_> = b.strategies().iter().map(|s| s.name()).collect();
            writeln!(out, "  {:<28} [{}] {}", b.name(), strategies.join(", "), b.describe())?;
        }
    }
    if show(ListWhat::Invariants) {
        if all {
            writeln!(out, "invariants:")?;
        }
        for i in Invariant::ALL {
            let when = match i.when() {
                domain::invariant::When::EveryStep => "every step",
                domain::invariant::When::AtQuiescence => "at quiescence",
                domain::invariant::When::Both => "every step and at quiescence",
            };
            writeln!(out, "  {:>2} {:<25} ({when}) {}", i.number(), i.name(), i.describe())?;
        }
    }
    if show(ListWhat::Coverage) {
        if all {
            writeln!(out, "coverage points (for run.expect):")?;
        }
        for p in crate::scenario::points::POINTS {
            writeln!(out, "  {p}")?;
        }
    }
    if show(ListWhat::Faults) {
        if all {
            writeln!(out, "faults:")?;
        }
        for (name, what) in FAULTS {
            writeln!(out, "  {name:<28} {what}")?;
        }
    }
    Ok(())
}
