//! Scheduling strategies: which of the events due at about the same time
//! runs first.
//!
//! `Seeded` takes events in time order, and equal times in a seeded
//! tie-break order. `Pct` adapts PCT (probabilistic concurrency testing,
//! Burckhardt et al., ASPLOS 2010) to simulated time. Every node draws a
//! random priority. Among the events due within `window_us` of the earliest,
//! the earliest event of the highest-priority node runs first, as if that
//! node's machine and links were faster; the others wait. At `depth - 1`
//! change points, drawn uniformly over the run's fault phase, the node about
//! to run drops below every other node. A bug that needs one node to fall
//! behind at a few chosen moments, which the seeded order hits only by luck,
//! is then found with a probability that depends on the number of change
//! points, not on the length of the run.
//!
//! What PCT may do stays within what the system could see: a node's own
//! events keep their order, and no event runs later than `window_us` after
//! its time (the earliest pending event bounds every pick), so each
//! schedule is one that slower links or machines could have produced.

use serde::{Deserialize, Serialize};

use crate::node::NodeId;
use crate::seed::{Purpose, Stream};

/// How the kernel orders events due at about the same time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Schedule {
    /// Time order; equal times in a seeded tie-break order.
    #[default]
    Seeded,
    /// PCT-style priorities with `depth - 1` change points.
    Pct { depth: u32, window_us: u64 },
}

impl Schedule {
    /// The PCT defaults: three change points' worth of depth, and a window
    /// about the network's mean latency.
    pub const PCT: Schedule = Schedule::Pct { depth: 3, window_us: 5_000 };
}

/// The PCT scheduler's state for one run.
#[derive(Clone, Debug)]
pub(crate) struct Pct {
    pub window_us: u64,
    priority: Vec<u32>,
    /// Change points, earliest first, and how many have passed.
    change_at_us: Vec<u64>,
    passed: usize,
}

/// The priority of events that belong to no node (scheduled faults): they
/// strike when due.
const ENVIRONMENT: u32 = u32::MAX;

impl Pct {
    /// Priorities for `nodes` nodes and `depth - 1` change points in
    /// `0..horizon_us`, drawn from the seed's priority stream.
    pub fn new(seed: u64, depth: u32, window_us: u64, nodes: usize, horizon_us: u64) -> Pct {
        let mut s = Stream::new(seed, Purpose::Priority);
        let mut order: Vec<u32> = (0..nodes as u32).collect();
        for i in (1..order.len()).rev() {
            order.swap(i, s.range(0, i as u64) as usize);
        }
        // Initial priorities sit above `depth`, so that each change point
        // can drop a node below all of them and below the nodes dropped
        // before it.
        let priority = order.into_iter().map(|p| p + depth).collect();
        let mut change_at_us: Vec<u64> =
            (1..depth).map(|_| s.range(0, horizon_us.max(1) - 1)).collect();
        change_at_us.sort_unstable();
        Pct { window_us, priority, change_at_us, passed: 0 }
    }

    pub fn priority(&self, node: Option<NodeId>) -> u32 {
        node.map_or(ENVIRONMENT, |n| self.priority[n.index()])
    }

    /// The event of `node` runs at `now_us`: if a change point has come,
    /// `node` drops below every other node.
    pub fn ran(&mut self, node: Option<NodeId>, now_us: u64) {
        let Some(node) = node else { return };
        if self.change_at_us.get(self.passed).is_some_and(|&t| now_us >= t) {
            self.passed += 1;
            // Change point i (from 1) gives priority depth - i: the lowest yet.
            let depth = self.change_at_us.len() as u32 + 1;
            self.priority[node.index()] = depth - self.passed as u32;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_a_permutation_above_the_depth() {
        for seed in 0..20 {
            let p = Pct::new(seed, 3, 1_000, 9, 1_000_000);
            let mut seen: Vec<u32> = p.priority.clone();
            seen.sort_unstable();
            assert_eq!(seen, (3..12).collect::<Vec<_>>());
            assert_eq!(p.change_at_us.len(), 2);
            assert!(p.change_at_us.windows(2).all(|w| w[0] <= w[1]));
        }
    }

    #[test]
    fn each_change_point_drops_a_node_below_every_other() {
        let mut p = Pct::new(4, 3, 1_000, 5, 100);
        let (a, b) = (NodeId(0), NodeId(1));
        p.ran(Some(a), 1_000);
        assert_eq!(p.priority(Some(a)), 2, "first change point: depth - 1");
        p.ran(Some(b), 1_000);
        assert_eq!(p.priority(Some(b)), 1, "second: lower still");
        assert!((2..5).all(|i| p.priority(Some(NodeId(i))) >= 3));
        p.ran(Some(NodeId(2)), 1_000);
        assert!(p.priority(Some(NodeId(2))) >= 3, "no change point left");
        assert_eq!(p.priority(None), ENVIRONMENT);
    }
}
