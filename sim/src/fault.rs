//! Faults as data. Every fault decision a run takes is a [`FaultRecord`]: the
//! scheduled ones (crashes, restarts, partitions) are drawn from the fault
//! stream before the run starts, the per-message ones (drop, duplicate, delay)
//! when a message is sent. The list is the run's fault plan: it is printed,
//! saved with a failure, and is what a shrinker switches off piece by piece.

use serde::{Deserialize, Serialize};

use crate::node::NodeId;
use crate::seed::Stream;

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The network lost a message.
    Drop {
        from: NodeId,
        to: NodeId,
    },
    /// The network delivered a message twice.
    Duplicate {
        from: NodeId,
        to: NodeId,
    },
    /// The network held a message back, so later ones overtake it.
    Delay {
        from: NodeId,
        to: NodeId,
        extra_us: u64,
    },
    /// A node lost its volatile state and timers.
    Crash {
        node: NodeId,
    },
    /// A crashed node came back and rebuilt itself from its database.
    Restart {
        node: NodeId,
    },
    /// Messages between `a` and `b` are lost, both ways, until healed.
    Partition {
        a: NodeId,
        b: NodeId,
    },
    Heal {
        a: NodeId,
        b: NodeId,
    },
    /// Messages from `from` to `to` are lost until healed, while the other
    /// way still works: `to` hears nothing, `from` hears every answer.
    OneWay {
        from: NodeId,
        to: NodeId,
    },
    HealOneWay {
        from: NodeId,
        to: NodeId,
    },
    /// The relay on `node` could not mark acknowledged outbox rows sent: they
    /// stay in the outbox and are published again.
    MarkSentFail {
        node: NodeId,
    },
    /// A consumer on `node` could not write a record to its dead-letter
    /// topic: the record stays at the head of its partition, tried again.
    DeadLetterFail {
        node: NodeId,
    },
    /// The database of `node` is unreachable for `for_us`: every commit
    /// fails meanwhile, while the service itself stays up.
    DbOutage {
        node: NodeId,
        for_us: u64,
    },
    /// The consumer group of `node` rebalanced: its fetch positions fall back
    /// to the committed offsets, so consumed but uncommitted records return.
    Rebalance {
        node: NodeId,
    },
    /// `node` froze (a long GC pause, a stalled VM) for `for_us` without
    /// losing anything; meanwhile its consumer session expired and its
    /// partitions went to a new generation, so on waking it is a zombie.
    Pause {
        node: NodeId,
        for_us: u64,
    },
    /// The cache on `node` restarted and lost every entry.
    Flush {
        node: NodeId,
    },
    /// A database commit on `node` failed: nothing of it was applied.
    CommitFail {
        node: NodeId,
    },
    /// A database commit on `node` applied, but its answer was lost (the
    /// connection broke after COMMIT reached the server): the caller was
    /// told it failed.
    CommitLostAck {
        node: NodeId,
    },
    /// A database commit on `node` hung and applied nothing: the caller heard
    /// nothing until its statement timeout, and `node` was stuck waiting for
    /// `for_us`.
    CommitHang {
        node: NodeId,
        for_us: u64,
    },
    /// A fault the application's own model decided (a payment gateway that
    /// declines, stalls or times out, say), named by the application.
    Injected {
        node: NodeId,
        what: String,
    },
}

impl Fault {
    /// The nodes the fault strikes: one, or the two ends of a link.
    pub fn nodes(&self) -> (NodeId, Option<NodeId>) {
        match *self {
            Fault::Drop { from, to }
            | Fault::Duplicate { from, to }
            | Fault::Delay { from, to, .. } => (from, Some(to)),
            Fault::Partition { a, b } | Fault::Heal { a, b } => (a, Some(b)),
            Fault::OneWay { from, to } | Fault::HealOneWay { from, to } => (from, Some(to)),
            Fault::Crash { node }
            | Fault::Restart { node }
            | Fault::Rebalance { node }
            | Fault::Pause { node, .. }
            | Fault::Flush { node }
            | Fault::CommitFail { node }
            | Fault::CommitLostAck { node }
            | Fault::CommitHang { node, .. }
            | Fault::DbOutage { node, .. }
            | Fault::MarkSentFail { node }
            | Fault::DeadLetterFail { node }
            | Fault::Injected { node, .. } => (node, None),
        }
    }

    /// A short kebab-case name, as `sagasim list faults` shows it.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Drop { .. } => "drop",
            Fault::Duplicate { .. } => "duplicate",
            Fault::Delay { .. } => "delay",
            Fault::Crash { .. } => "crash",
            Fault::Restart { .. } => "restart",
            Fault::Partition { .. } => "partition",
            Fault::Heal { .. } => "heal",
            Fault::OneWay { .. } => "one-way-partition",
            Fault::HealOneWay { .. } => "heal-one-way",
            Fault::DbOutage { .. } => "db-outage",
            Fault::MarkSentFail { .. } => "mark-sent-fail",
            Fault::DeadLetterFail { .. } => "dead-letter-fail",
            Fault::Rebalance { .. } => "rebalance",
            Fault::Flush { .. } => "cache-flush",
            Fault::Pause { .. } => "pause",
            Fault::CommitFail { .. } => "commit-fail",
            Fault::CommitLostAck { .. } => "commit-lost-ack",
            Fault::CommitHang { .. } => "commit-hang",
            Fault::Injected { .. } => "injected",
        }
    }
}

/// One fault decision: what, when, and at which step it was taken (for
/// scheduled faults, step 0: they are decided before the run starts).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultRecord {
    pub step: u64,
    pub time_us: u64,
    #[serde(flatten)]
    pub fault: Fault,
    /// The decision's key for the kernel's fault mask (absent for the heal
    /// phase's restarts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<u64>,
}

/// What the scheduled-fault draw may produce. Ranges are inclusive.
#[derive(Clone, Debug, Default)]
pub struct ScheduleOptions {
    pub crashes: (u64, u64),
    pub crash_at_us: (u64, u64),
    pub restart_after_us: (u64, u64),
    /// Nodes that may crash.
    pub crash_targets: Vec<NodeId>,
    pub partitions: (u64, u64),
    pub partition_at_us: (u64, u64),
    pub partition_for_us: (u64, u64),
    /// Pairs that may be cut off from each other.
    pub partition_targets: Vec<(NodeId, NodeId)>,
    pub rebalances: (u64, u64),
    pub rebalance_at_us: (u64, u64),
    pub rebalance_targets: Vec<NodeId>,
    pub flushes: (u64, u64),
    pub flush_at_us: (u64, u64),
    pub flush_targets: Vec<NodeId>,
    /// Outages of the broker (a crash and restart of `outage_targets`).
    pub outages: (u64, u64),
    pub outage_at_us: (u64, u64),
    pub outage_for_us: (u64, u64),
    pub outage_targets: Vec<NodeId>,
    pub pauses: (u64, u64),
    pub pause_at_us: (u64, u64),
    pub pause_for_us: (u64, u64),
    pub pause_targets: Vec<NodeId>,
    /// One-way partitions, over the links of `partition_targets`, each in a
    /// drawn direction.
    pub one_ways: (u64, u64),
    pub one_way_at_us: (u64, u64),
    pub one_way_for_us: (u64, u64),
    /// Windows in which a service's database is unreachable.
    pub db_outages: (u64, u64),
    pub db_outage_at_us: (u64, u64),
    pub db_outage_for_us: (u64, u64),
    pub db_outage_targets: Vec<NodeId>,
}

/// `count` times, pick one of `targets` and let `f` draw the rest of the
/// fault; nothing, without a draw, when there are no targets.
fn each<T: Copy>(
    s: &mut Stream,
    count: (u64, u64),
    targets: &[T],
    mut f: impl FnMut(&mut Stream, T),
) {
    if targets.is_empty() {
        return;
    }
    for _ in 0..s.range(count.0, count.1) {
        let target = targets[s.range(0, targets.len() as u64 - 1) as usize];
        f(s, target);
    }
}

/// Draw the scheduled faults of a run, in time order. A crash always comes
/// with its restart, and a partition with its heal, so the fault phase never
/// leaves a node down for the heal phase to discover.
pub fn draw_schedule(o: &ScheduleOptions, s: &mut Stream) -> Vec<FaultRecord> {
    let mut out = Vec::new();
    let mut at = |time_us, fault| out.push(FaultRecord { step: 0, time_us, fault, decision: None });
    let window = |s: &mut Stream, start: (u64, u64), length: (u64, u64)| {
        let t = s.range(start.0, start.1);
        (t, t + s.range(length.0, length.1).max(1))
    };
    each(s, o.crashes, &o.crash_targets, |s, node| {
        let (t, back) = window(s, o.crash_at_us, o.restart_after_us);
        at(t, Fault::Crash { node });
        at(back, Fault::Restart { node });
    });
    each(s, o.partitions, &o.partition_targets, |s, (a, b)| {
        let (t, end) = window(s, o.partition_at_us, o.partition_for_us);
        at(t, Fault::Partition { a, b });
        at(end, Fault::Heal { a, b });
    });
    each(s, o.rebalances, &o.rebalance_targets, |s, node| {
        at(s.range(o.rebalance_at_us.0, o.rebalance_at_us.1), Fault::Rebalance { node })
    });
    each(s, o.flushes, &o.flush_targets, |s, node| {
        at(s.range(o.flush_at_us.0, o.flush_at_us.1), Fault::Flush { node })
    });
    each(s, o.outages, &o.outage_targets, |s, node| {
        let (t, back) = window(s, o.outage_at_us, o.outage_for_us);
        at(t, Fault::Crash { node });
        at(back, Fault::Restart { node });
    });
    each(s, o.pauses, &o.pause_targets, |s, node| {
        let t = s.range(o.pause_at_us.0, o.pause_at_us.1);
        let for_us = s.range(o.pause_for_us.0, o.pause_for_us.1).max(1);
        at(t, Fault::Pause { node, for_us });
    });
    // Drawn after every older kind, so that their draws stay as they were.
    each(s, o.one_ways, &o.partition_targets, |s, (a, b)| {
        let (t, end) = window(s, o.one_way_at_us, o.one_way_for_us);
        let (from, to) = if s.range(0, 1) == 0 { (a, b) } else { (b, a) };
        at(t, Fault::OneWay { from, to });
        at(end, Fault::HealOneWay { from, to });
    });
    each(s, o.db_outages, &o.db_outage_targets, |s, node| {
        let t = s.range(o.db_outage_at_us.0, o.db_outage_at_us.1);
        let for_us = s.range(o.db_outage_for_us.0, o.db_outage_for_us.1).max(1);
        at(t, Fault::DbOutage { node, for_us });
    });
    // Stable sort: equal times keep draw order, which is itself seeded.
    out.sort_by_key(|r| r.time_us);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Purpose;

    #[test]
    fn every_crash_is_followed_by_its_restart() {
        let opts = ScheduleOptions {
            crashes: (1, 3),
            crash_at_us: (0, 1000),
            restart_after_us: (10, 50),
            crash_targets: vec![NodeId(1), NodeId(2)],
            ..Default::default()
        };
        for seed in 0..50 {
            let plan = draw_schedule(&opts, &mut Stream::new(seed, Purpose::Faults));
            let crashes = plan.iter().filter(|r| matches!(r.fault, Fault::Crash { .. })).count();
            let restarts = plan.iter().filter(|r| matches!(r.fault, Fault::Restart { .. })).count();
            assert!((1..=3).contains(&crashes));
            assert_eq!(crashes, restarts);
            assert!(plan.windows(2).all(|w| w[0].time_us <= w[1].time_us));
        }
    }
}
