//! Coverage: which saga paths and fault kinds a run actually exercised, so
//! that a sweep that exercises nothing is noticed. Each run yields a set of
//! named points (a bit mask over [`POINTS`]); a sweep reports the share of
//! seeds that hit each, warns about any no seed hit, and fails if the
//! scenario expected one (`run.expect`) that none did.

use crate::harness::RunReport;

/// Every coverage point, by name. Saga paths first, then fault kinds.
pub const POINTS: [&str; 27] = [
    "compensation ran",
    "false compensation",
    "card refunded",
    "apology coupon issued",
    "duplicate absorbed by the inbox",
    "early event retried",
    "dead letter written",
    "poison record parked",
    "client retried",
    "PG call retried",
    "step given up",
    "lock wait",
    "zombie commit fenced",
    "commit failed",
    "crash",
    "partition",
    "pause",
    "rebalance",
    "cache flush",
    "message dropped",
    "message duplicated",
    "message delayed",
    "pg declined",
    "pg timed out before charging",
    "pg timed out after charging",
    "pg slow",
    "poison published",
];

/// The bit of a point, by name; `None` for an unknown name.
pub fn bit(name: &str) -> Option<u32> {
    POINTS.iter().position(|p| *p == name).map(|i| i as u32)
}

fn fault_point(f: &sim::Fault) -> Option<&'static str> {
    use sim::Fault;
    Some(match f {
        Fault::Crash { .. } => "crash",
        Fault::Partition { .. } => "partition",
        Fault::Pause { .. } => "pause",
        Fault::Rebalance { .. } => "rebalance",
        Fault::Flush { .. } => "cache flush",
        Fault::Drop { .. } => "message dropped",
        Fault::Duplicate { .. } => "message duplicated",
        Fault::Delay { .. } => "message delayed",
        Fault::CommitFail { .. } => "commit failed",
        Fault::Injected { what, .. } => match what.as_str() {
            "pg-decline" => "pg declined",
            "pg-timeout-before" => "pg timed out before charging",
            "pg-timeout-after" => "pg timed out after charging",
            "pg-slow" => "pg slow",
            "poison" => "poison published",
            _ => return None,
        },
        Fault::Restart { .. } | Fault::Heal { .. } => return None,
    })
}

/// The points one run hit, as a bit mask over [`POINTS`].
pub fn hits(r: &RunReport) -> u32 {
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
        ("step given up", c.steps_given_up),
        ("lock wait", c.lock_waits),
        ("zombie commit fenced", s.fenced_commits),
    ];
    let mut mask = 0u32;
    let mut hit = |name: &str| mask |= 1 << bit(name).expect("a known point");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fit_the_mask_and_are_named_once() {
        assert!(POINTS.len() <= 32);
        for (i, p) in POINTS.iter().enumerate() {
            assert_eq!(bit(p), Some(i as u32));
        }
        assert_eq!(bit("no such path"), None);
    }
}
