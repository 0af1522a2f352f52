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

/// The fate of one message as the seed draws it: its latencies (a
/// duplicate takes the second), whether a fault could strike it at all, and
/// the fault drawn, if any. The world turns it into deliveries, after the
/// fault mask or a recording being followed has had its say.
#[derive(Clone, Debug, PartialEq)]
pub struct Route {
    pub first_us: u64,
    pub second_us: u64,
    /// False when no fault decision is taken: the link is cut (nothing
    /// arrives) or the faults have healed.
    pub open: bool,
    pub cut: bool,
    pub fault: Option<Fault>,
}

impl Route {
    /// When the message arrives, after `fault` (none, one or two deliveries).
    pub fn deliveries(&self, fault: Option<&Fault>) -> [Option<u64>; 2] {
        match fault {
            _ if self.cut => [None, None],
            Some(Fault::Drop { .. }) => [None, None],
            Some(Fault::Duplicate { .. }) => [Some(self.first_us), Some(self.second_us)],
            Some(Fault::Delay { extra_us, .. }) => [Some(self.first_us + extra_us), None],
            _ => [Some(self.first_us), None],
        }
    }

    /// Whether `fault` is one this message could suffer: a recorded network
    /// fault still applies here if it strikes the same link.
    pub fn fits(from: NodeId, to: NodeId, fault: &Fault) -> bool {
        matches!(*fault,
            Fault::Drop { from: f, to: t }
            | Fault::Duplicate { from: f, to: t }
            | Fault::Delay { from: f, to: t, .. } if (f, t) == (from, to))
    }
}

pub struct Network {
    pub options: NetOptions,
    nodes: usize,
    /// Count of active cuts per ordered pair (sender, receiver); overlapping
    /// partitions of one pair nest. A partition cuts both directions, a
    /// one-way partition only one.
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

    /// Cut only the direction `from` → `to`.
    pub fn cut_one_way(&mut self, from: NodeId, to: NodeId) {
        self.cut[from.index() * self.nodes + to.index()] += 1;
    }

    pub fn heal_one_way(&mut self, from: NodeId, to: NodeId) {
        let i = from.index() * self.nodes + to.index();
        self.cut[i] = self.cut[i].saturating_sub(1);
    }

    pub fn heal_all(&mut self) {
        self.cut.iter_mut().for_each(|c| *c = 0);
    }

    /// A message's latency and its duplicate's, from one draw.
    fn latencies(&self, lat: &mut Stream) -> (u64, u64) {
        let o = &self.options;
        let (a, b) = crate::dist::exponential_pair(lat, o.latency_mean_extra_us);
        let max = o.latency_max_us.max(o.latency_min_us);
        ((o.latency_min_us + a).min(max), (o.latency_min_us + b).min(max))
    }

    /// Decide what happens to a message from `from` to `to`. How many
    /// values it draws from each stream depends on the run's options alone
    /// (one latency draw; one draw for the three fault chances if any is
    /// on; one for a delay's length if delays are on), never on an outcome,
    /// so one message's fate never shifts the draws of the next.
    pub fn route(&self, from: NodeId, to: NodeId, net: &mut Stream, lat: &mut Stream) -> Route {
        let o = &self.options;
        // Both latencies are drawn whatever the fault rates, so that a
        // failure file with message faults switched off keeps every latency.
        let (first, second) = self.latencies(lat);
        let [lost, dup, delayed] = net.chances3([o.loss_ppm, o.duplicate_ppm, o.delay_ppm]);
        // Only a delay uses its length: with delays off, no draw.
        let extra = if o.delay_ppm > 0 { net.range(1, o.delay_max_us.max(1)) } else { 1 };
        let cut = self.is_cut(from, to);
        let open = !cut && self.faults_on;
        let fault = if !open {
            None
        } else if lost {
            Some(Fault::Drop { from, to })
        } else if dup {
            Some(Fault::Duplicate { from, to })
        } else if delayed {
            Some(Fault::Delay { from, to, extra_us: extra })
        } else {
            None
        };
        Route { first_us: first, second_us: second, open, cut, fault }
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
    fn a_one_way_partition_cuts_one_direction_only() {
        let mut n = Network::new(NetOptions::default(), 3);
        let (a, b) = (NodeId(0), NodeId(2));
        n.cut_one_way(a, b);
        assert!(n.is_cut(a, b) && !n.is_cut(b, a));
        n.partition(a, b);
        n.heal_one_way(a, b);
        assert!(n.is_cut(a, b) && n.is_cut(b, a), "the two-way partition still stands");
        n.heal(a, b);
        assert!(!n.is_cut(a, b) && !n.is_cut(b, a));
    }

    #[test]
    fn latency_stays_within_bounds_and_is_skewed_low() {
        let n = Network::new(NetOptions::default(), 2);
        let (mut s, mut l) = (Stream::new(1, Purpose::Network), Stream::new(1, Purpose::Latency));
        let mut sum = 0;
        for _ in 0..10_000 {
            let r = n.route(NodeId(0), NodeId(1), &mut s, &mut l);
            let d = r.deliveries(r.fault.as_ref())[0].expect("no faults configured");
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
        assert_eq!(r.deliveries(r.fault.as_ref()), [None, None]);
        assert!(!r.open, "no fault decision is taken on a cut link");
    }
}
