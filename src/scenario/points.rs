//! The coverage points a run can hit, by name: the vocabulary of a
//! scenario's `run.expect`, checked when the scenario is parsed. The
//! harness sets them and the sweep counts them (`sweep/coverage.rs`); both
//! import the names from here, below them.

/// Every coverage point, by name. Saga paths first, then fault kinds.
pub const POINTS: [&str; 45] = [
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
    "pg answered in progress",
    "pg refund pending",
    "pg key past its retention",
    "step given up",
    "lock wait",
    "zombie commit fenced",
    "waited for a busy service",
    "stuck saga swept",
    "stuck payment swept",
    "partition moved to another instance",
    "stale read committed",
    "commit refused by a conflict",
    "outbox id committed late",
    "commit failed",
    "commit applied, answer lost",
    "commit hung",
    "sent-mark failed",
    "dead-letter write failed",
    "crash",
    "partition",
    "one-way partition",
    "database unavailable",
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
    "pg refund failed",
    "poison published",
    "cache timed out",
];

/// The bit of a point, by name; `None` for an unknown name.
pub fn bit(name: &str) -> Option<u32> {
    POINTS.iter().position(|p| *p == name).map(|i| i as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_fit_the_mask_and_are_named_once() {
        assert!(POINTS.len() <= 64);
        for (i, p) in POINTS.iter().enumerate() {
            assert_eq!(bit(p), Some(i as u32));
        }
        assert_eq!(bit("no such path"), None);
    }
}
