//! Adapters from the kernel's context to the domain's ports: the client's,
//! the gateway's, and the service node's host (with the payment gateway's
//! fault draws).

use domain::gateway::{GatewayPort, KeyEntry};
use domain::message::CmdKind;
use domain::meter::Meter;
use domain::node::{Host, Peer, Settings};
use domain::pg::PgPort;
use domain::ports::{ClientPort, TxBuf};
use domain::{Checker, Msg, OrderId, RequestKey, Service, StateView, Store};
use sim::trace::stable_hash;
use sim::{CommitFailed, Cx, NodeId, TopicId, View};

use crate::harness::app::{Coverage, Nodes, SagaApp};

pub struct ClientAdapter<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
    pub gateway: NodeId,
}

impl ClientPort for ClientAdapter<'_, '_> {
    fn now_us(&self) -> u64 {
        self.cx.now_us()
    }
    fn send(&mut self, msg: Msg) {
        self.cx.send(self.gateway, msg);
    }
    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        self.cx.set_timer(delay_us, tag);
    }
    fn jitter_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
}

pub struct GatewayAdapter<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
    pub nodes: Nodes,
    pub settings: Settings,
    /// Share of cache calls that time out, each way.
    pub cache_timeout_ppm: u32,
}

impl GatewayAdapter<'_, '_> {
    /// Whether this call to the cache times out, and if so whether the
    /// command had applied (its answer was lost) or not (it was lost on its
    /// way). The gateway hears an error either way, as the live one hears
    /// it from Redis: a read finds nothing, a claim claims nothing.
    fn timed_out(&mut self) -> Option<bool> {
        let ppm = self.cache_timeout_ppm;
        // No draw when off, so scenarios without it keep their streams.
        if ppm == 0 {
            return None;
        }
        if self.cx.inject("cache-timeout-before", ppm) {
            return Some(false);
        }
        self.cx.inject("cache-timeout-after", ppm).then_some(true)
    }

    fn ttl_us(&self, entry: &KeyEntry) -> u64 {
        match entry {
            KeyEntry::InProgress { .. } => self.settings.in_progress_ttl_us,
            KeyEntry::Done { .. } => self.settings.key_ttl_us,
        }
    }
}

impl GatewayPort for GatewayAdapter<'_, '_> {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        if self.timed_out().is_some() {
            return None;
        }
        let now = self.cx.now_us();
        self.cx.cache(self.nodes.cache).get(key.0, now).copied()
    }
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        match self.timed_out() {
            Some(false) => false,
            // Applied with its answer lost: the gateway claimed nothing it knows of.
            t => self.cx.cache(self.nodes.cache).set_nx(key.0, entry, ttl, now) && t.is_none(),
        }
    }
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry) {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        if self.timed_out() != Some(false) {
            self.cx.cache(self.nodes.cache).set(key.0, entry, ttl, now)
        }
    }
    fn forward(&mut self, msg: Msg) {
        let to = self.nodes.spread(self.nodes.entry, self.cx);
        self.cx.send(to, msg);
    }
    fn answer(&mut self, msg: Msg) {
        self.cx.send(self.nodes.client, msg);
    }
}

/// The domain node's host in the simulation: the node's database, the
/// network, timers, and the run's checker and meter, which learn every
/// committed write.
pub struct SimHost<'c, 'a> {
    pub cx: &'c mut Cx<'a, SagaApp>,
    pub nodes: Nodes,
    pub topics: &'c [TopicId; 12],
    pub outbox: bool,
    pub checker: &'c mut Checker,
    pub meter: &'c mut Meter,
    pub coverage: &'c mut Coverage,
    /// The node whose message is being handled: a reply to its service goes
    /// back to that instance.
    pub from: Option<NodeId>,
}

impl SimHost<'_, '_> {
    /// The node a message to `to` goes to: the instance that asked, for a
    /// reply; one of the service's instances, drawn, otherwise.
    fn route(&mut self, to: Peer) -> NodeId {
        let node = self.nodes.at(to);
        match self.from {
            Some(f) if self.nodes.instance_of(node, f) => f,
            _ => self.nodes.spread(node, self.cx),
        }
    }
}

impl PgPort for SimHost<'_, '_> {
    fn fault(&mut self, what: &str, ppm: u32) -> bool {
        self.cx.inject(what, ppm)
    }
    fn random_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
    fn now_us(&self) -> u64 {
        self.cx.now_us()
    }
}

impl Host for SimHost<'_, '_> {
    fn store(&self) -> &Store {
        self.cx.state()
    }

    /// Writes and events together through the outbox, or, with the outbox
    /// switched off, events published after the commit (a dual write). A
    /// commit whose answer was lost applied: the checker and the meter learn
    /// its writes, while the node is told it failed.
    fn commit(&mut self, tx: &TxBuf) -> bool {
        let topics = self.topics;
        let events =
            tx.events.iter().map(|e| (topics[e.topic() as usize], e.key(), Msg::Event(*e)));
        let committed = if self.outbox {
            self.cx.commit(&tx.writes, events)
        } else {
            self.cx.commit(&tx.writes, std::iter::empty())
        };
        match committed {
            Ok(()) => {}
            Err(CommitFailed::AnswerLost) => {
                self.applied(tx, "commit applied, answer lost");
                return false;
            }
            Err(CommitFailed::Refused | CommitFailed::TimedOut | CommitFailed::Conflict) => {
                return false
            }
        }
        self.applied(tx, "commit");
        if !self.outbox {
            for e in &tx.events {
                self.cx.publish_direct(topics[e.topic() as usize], e.key(), Msg::Event(*e));
            }
        }
        true
    }

    fn send(&mut self, to: Peer, msg: Msg) {
        let to = self.route(to);
        self.cx.send(to, msg);
    }
    fn send_after(&mut self, to: Peer, msg: Msg, delay_us: u64) {
        let to = self.route(to);
        self.cx.send_after(to, msg, delay_us);
    }
    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        self.cx.set_timer(delay_us, tag);
    }
    fn counters(&mut self) -> &mut Coverage {
        self.coverage
    }
    fn gave_up(&mut self, order: OrderId, step: CmdKind) {
        self.meter.gave_up(order, step);
    }
    fn trace(&mut self, line: impl FnOnce() -> String) {
        self.cx.trace(line);
    }
}

impl SimHost<'_, '_> {
    /// A transaction that applied: folded into the digest, traced, and shown
    /// to the checker and the meter.
    fn applied(&mut self, tx: &TxBuf, what: &str) {
        self.cx.fold(stable_hash(&(&tx.writes, &tx.events)));
        if self.cx.tracing() {
            let (w, e) = (&tx.writes, &tx.events);
            self.cx.trace(|| format!("{what} writes={w:?} events={e:?}"));
        }
        for w in &tx.writes {
            self.checker.observe(w);
            self.meter.observe(w);
        }
    }
}

/// The services' stores, as the invariant checker reads them.
pub struct Stores<'v, 'a> {
    pub view: &'v View<'a, SagaApp>,
    pub nodes: Nodes,
}

impl StateView for Stores<'_, '_> {
    fn store(&self, service: Service) -> &Store {
        self.view.db(self.nodes.of(service)).expect("services have databases").state()
    }
}
