//! The network: latency, loss, duplication, reordering and partitions
//! between nodes. Deciding a message's fate is the whole job; the world
//! schedules the deliveries.
//!
//! A partition drops messages sent across it and messages still in flight when
//! they arrive, as a cut cable would. A caller whose reply is lost sees only
//! silence and cannot tell whether the callee acted.

use crate::fault::Fault;
use crate::node::NodeId;
use crate::seed::Stream;

/// Field names carry their unit last; probabilities are parts per million.
#[derive(Clone, Debug)]
pub struct NetOptions {
    pub latency_min_us: u64,
    pub latency_max_us: u64,
    /// Mean of the exponential part above the minimum; the draw is clamped to
    /// the maximum, which skews latencies towards the low end.
    pub latency_mean_extra_us: u64,
    pub loss_ppm: u32,
    pub duplicate_ppm: u32,
    pub delay_ppm: u32,
    /// A delayed message is held back by up to this long.
    pub delay_max_us: u64,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            latency_min_us: 1_000,
            latency_max_us: 20_000,
            latency_mean_extra_us: 3_300,
            loss_ppm: 0,
            duplicate_ppm: 0,
            delay_ppm: 0,
            delay_max_us: 50_000,
        }
    }
}

/// The fate of one message: up to two deliveries (a duplicate is the second)
/// and the fault decision behind it, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub delays_us: [Option<u64>; 2],
    pub fault: Option<Fault>,
    /// The delivery delay had no fault struck: what a suppressed fault
    /// (see `Core::admit`) leaves.
    pub plain_us: u64,
}

pub struct Network {
    pub options: NetOptions,
    nodes: usize,
    /// Count of active partitions per ordered pair; overlapping partitions of
    /// one pair nest. Invariant: symmetric.
    cut: Vec<u32>,
    /// Off during the heal phase: messages still take time, but none is lost.
    pub faults_on: bool,
}

impl Network {
    pub fn new(options: NetOptions, nodes: usize) -> Network {
        Network { options, nodes, cut: vec![0; nodes * nodes], faults_on: true }
    }

    pub fn is_cut(&self, a: NodeId, b: NodeId) -> bool {
        self.cut[a.index() * self.nodes + b.index()] > 0
    }

    pub fn partition(&mut self, a: NodeId, b: NodeId) {
        self.cut[a.index() * self.nodes + b.index()] += 1;
        self.cut[b.index() * self.nodes + a.index()] += 1;
    }

    pub fn heal(&mut self, a: NodeId, b: NodeId) {
        let (i, j) = (a.index() * self.nodes + b.index(), b.index() * self.nodes + a.index());
        self.cut[i] = self.cut[i].saturating_sub(1);
        self.cut[j] = self.cut[j].saturating_sub(1);
    }

    pub fn heal_all(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = 0);
    }

    fn latency(&self, lat: &mut Stream) -> u64 {
        let o = &self.options;
        let extra = lat.exponential(o.latency_mean_extra_us);
        (o.latency_min_us + extra).min(o.latency_max_us.max(o.latency_min_us))
    }

    /// Decide what happens to a message from `from` to `to`. Draws a fixed
    /// number of values from each stream whatever the outcome, so one
    /// message's fate never shifts the draws of the next.
    pub fn route(&self, from: NodeId, to: NodeId, net: &mut Stream, lat: &mut Stream) -> Route {
        let first = self.latency(lat);
        let second = self.latency(lat);
        let lost = net.chance(self.options.loss_ppm);
        let dup = net.chance(self.options.duplicate_ppm);
        let delayed = net.chance(self.options.delay_ppm);
        let extra = net.range(1, self.options.delay_max_us.max(1));
        let route = |delays_us, fault| Route { delays_us, fault, plain_us: first };
        if self.is_cut(from, to) {
            return route([None, None], None);
        }
        if !self.faults_on {
            return route([Some(first), None], None);
        }
        if lost {
            return route([None, None], Some(Fault::Drop { from, to }));
        }
        if dup {
            return route([Some(first), Some(second)], Some(Fault::Duplicate { from, to }));
        }
        if delayed {
            return route(
                [Some(first + extra), None],
                Some(Fault::Delay { from, to, extra_us: extra }),
            );
        }
        route([Some(first), None], None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::Purpose;

    #[test]
    fn partitions_nest_and_heal_symmetrically() {
        let mut n = Network::new(NetOptions::default(), 3);
        let (a, b) = (NodeId(0), NodeId(2));
        n.partition(a, b);
        n.partition(b, a);
        assert!(n.is_cut(a, b) && n.is_cut(b, a));
        n.heal(a, b);
        assert!(n.is_cut(b, a), "one of two overlapping partitions still stands");
        n.heal(a, b);
        assert!(!n.is_cut(a, b));
    }

    #[test]
    fn latency_stays_within_bounds_and_is_skewed_low() {
        let n = Network::new(NetOptions::default(), 2);
        let (mut s, mut l) = (Stream::new(1, Purpose::Network), Stream::new(1, Purpose::Latency));
        let mut sum = 0;
        for _ in 0..10_000 {
            let r = n.route(NodeId(0), NodeId(1), &mut s, &mut l);
            let d = r.delays_us[0].expect("no faults configured");
            assert!((1_000..=20_000).contains(&d));
            sum += d;
        }
        let mean = sum / 10_000;
        assert!((3_800..4_800).contains(&mean), "mean {mean}");
    }

    #[test]
    fn a_cut_link_delivers_nothing() {
        let mut n = Network::new(NetOptions::default(), 2);
        n.partition(NodeId(0), NodeId(1));
        let (mut s, mut l) = (Stream::new(1, Purpose::Network), Stream::new(1, Purpose::Latency));
        let r = n.route(NodeId(1), NodeId(0), &mut s, &mut l);
        assert_eq!(r.delays_us, [None, None]);
    }
}
