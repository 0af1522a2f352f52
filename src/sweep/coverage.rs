//! Coverage: which saga paths and fault kinds a run actually exercised, so
//! that a sweep that exercises nothing is noticed. Each run yields a set of
//! named points (a 64-bit mask over [`POINTS`], which the scenario owns,
//! since `run.expect` names them); a sweep reports the share of seeds that
//! hit each, warns about any no seed hit, and fails if the scenario
//! expected one that none did.

use crate::harness::RunReport;
use crate::scenario::points::bit;

fn fault_point(f: &sim::Fault) -> Option<&'static str> {
    use sim::Fault;
    Some(match f {
        Fault::Crash { .. } => "crash",
        Fault::Partition { .. } => "partition",
        Fault::OneWay { .. } => "one-way partition",
        Fault::DbOutage { .. } => "database unavailable",
        Fault::Pause { .. } => "pause",
        Fault::Rebalance { .. } => "rebalance",
        Fault::Flush { .. } => "cache flush",
        Fault::Drop { .. } => "message dropped",
        Fault::Duplicate { .. } => "message duplicated",
        Fault::Delay { .. } => "message delayed",
        Fault::CommitFail { .. } => "commit failed",
        Fault::CommitLostAck { .. } => "commit applied, answer lost",
        Fault::CommitHang { .. } => "commit hung",
        Fault::MarkSentFail { .. } => "sent-mark failed",
        Fault::DeadLetterFail { .. } => "dead-letter write failed",
        Fault::Injected { what, .. } => match what.as_str() {
            "pg-decline" => "pg declined",
            "pg-timeout-before" => "pg timed out before charging",
            "pg-timeout-after" => "pg timed out after charging",
            "pg-slow" => "pg slow",
            "pg-refund-fail" => "pg refund failed",
            "poison" => "poison published",
            "cache-timeout-before" | "cache-timeout-after" => "cache timed out",
            _ => return None,
        },
        Fault::Restart { .. } | Fault::Heal { .. } | Fault::HealOneWay { .. } => return None,
    })
}

/// The points one run hit, as a bit mask over [`POINTS`].
pub fn hits(r: &RunReport) -> u64 {
    let (m, c, s) = (&r.measures, &r.coverage, &r.stats);
    let paths = [
        ("compensation ran", m.compensations),
        ("false compensation", m.false_compensations),
        ("card refunded", m.refunds),
        ("apology coupon issued", m.coupons_issued),
        ("duplicate absorbed by the inbox", c.duplicates_absorbed),
        ("early event retried", c.early_events),
        ("dead letter written", s.dead_letters),
        ("poison record parked", c.parked),
        ("client retried", c.client_retries),
        ("PG call retried", c.pg_retries),
        ("pg answered in progress", c.pg_in_progress),
        ("pg refund pending", c.pg_refunds_pending),
        ("pg key past its retention", c.pg_keys_distrusted + c.pg_keys_expired),
        ("step given up", c.steps_given_up),
        ("lock wait", c.lock_waits),
        ("zombie commit fenced", s.fenced_commits),
        ("waited for a busy service", s.queued),
        ("stuck saga swept", c.sagas_swept),
        ("stuck payment swept", c.payments_swept),
        ("partition moved to another instance", s.reassignments),
        ("stale read committed", s.stale_reads),
        ("commit refused by a conflict", s.commit_conflicts),
        ("outbox id committed late", s.late_rows),
    ];
    let mut mask = 0u64;
    let mut hit = |name: &str| mask |= 1u64 << bit(name).expect("a known point");
    for (name, n) in paths {
        if n > 0 {
            hit(name);
        }
    }
    for f in &r.faults {
        if let Some(name) = fault_point(&f.fault) {
            hit(name);
        }
    }
    mask
}
