//! The order system as a kernel [`App`]: which node runs which service, and
//! how a message, a record or a timer reaches the domain's node. The node's
//! logic is the domain's ([`domain::node`]); this file only carries messages,
//! timers and commits between it and the kernel.

use domain::client::Client;
use domain::gateway::{self, KeyEntry};
use domain::meter::Meter;
use domain::node::{Node, Peer, Settings, Vol};
use domain::ports::TxBuf;
use domain::{Checker, EndState, Msg, Service, Store, Topic, Violation};
use sim::{App, Cx, Handled, NodeId, Record, TopicId, View};

use crate::harness::ports::{ClientAdapter, GatewayAdapter, SimHost, Stores};

/// Counts of what a run exercised: the domain nodes' counters.
pub use domain::node::Counters as Coverage;

/// Where everything runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nodes {
    pub client: NodeId,
    pub gateway: NodeId,
    pub cache: NodeId,
    pub broker: NodeId,
    /// In [`Service::ALL`] order: each service's first instance.
    pub services: [NodeId; 7],
    /// How many instances each service runs; a service's instances have
    /// consecutive ids from its first.
    pub instances: [u16; 7],
    /// Where orders enter: Product in the choreography, the orchestrator in
    /// the orchestration.
    pub entry: NodeId,
}

impl Nodes {
    pub fn of(&self, s: Service) -> NodeId {
        self.services[s as usize]
    }

    /// The node a peer names (a service's first instance).
    pub fn at(&self, p: Peer) -> NodeId {
        match p {
            Peer::Gateway => self.gateway,
            Peer::Service(s) => self.of(s),
        }
    }

    /// Every instance of `s`.
    pub fn all(&self, s: Service) -> impl Iterator<Item = NodeId> {
        let first = self.of(s).0;
        (first..first + self.instances[s as usize].max(1)).map(NodeId)
    }

    /// The service `node` is an instance of, if any (the monolith's node is
    /// Product's, the first service it runs).
    pub fn service_of(&self, node: NodeId) -> Option<Service> {
        Service::ALL.into_iter().find(|&s| {
            let first = self.of(s).0;
            (first..first + self.instances[s as usize].max(1)).contains(&node.0)
        })
    }

    /// Whether `node` is an instance of the service whose first instance
    /// is `first`.
    pub fn instance_of(&self, first: NodeId, node: NodeId) -> bool {
        self.service_of(first)
            .is_some_and(|s| self.of(s) == first && self.service_of(node) == Some(s))
    }

    /// One of the instances of the service whose first instance is `first`,
    /// drawn from the application's stream (as a load balancer spreads
    /// requests); `first` itself when it runs alone, with no draw.
    pub fn spread(&self, first: NodeId, cx: &mut Cx<'_, SagaApp>) -> NodeId {
        let n = self.service_of(first).map_or(1, |s| self.instances[s as usize].max(1));
        match n {
            1 => first,
            n => NodeId(first.0 + cx.random().range(0, n as u64 - 1) as u16),
        }
    }

    /// What a node is, as the node it sends to sees it: the gateway, or the
    /// first service it runs (the monolith runs them all).
    pub fn peer(&self, node: NodeId) -> Peer {
        if node == self.gateway {
            return Peer::Gateway;
        }
        Peer::Service(self.service_of(node).expect("messages come from the gateway or a service"))
    }
}

pub struct SagaApp {
    pub settings: Settings,
    /// Check invariants after every step (off only to measure their cost).
    pub per_step_checks: bool,
    pub nodes: Nodes,
    /// The broker topic of each domain topic, in [`Topic::ALL`] order.
    pub topics: [TopicId; 12],
    pub client: Client,
    pub checker: Checker,
    pub meter: Meter,
    pub coverage: Coverage,
    /// Poison records to publish, by gateway timer tag.
    pub poisons: Vec<(u64, Topic)>,
    /// Share of the gateway's cache calls that time out, each way.
    pub cache_timeout_ppm: u32,
    /// Reused for every transaction, so handling a message does not allocate
    /// a fresh buffer.
    pub(crate) tx: TxBuf,
}

impl SagaApp {
    pub fn new(settings: Settings, client: Client, checker: Checker) -> SagaApp {
        SagaApp {
            meter: Meter::new(client.arrivals()),
            settings,
            per_step_checks: true,
            nodes: Nodes::default(),
            topics: [TopicId(0); 12],
            client,
            checker,
            coverage: Coverage::default(),
            poisons: Vec::new(),
            cache_timeout_ppm: 0,
            tx: TxBuf::default(),
        }
    }

    fn is_service(&self, node: NodeId) -> bool {
        node != self.nodes.client && node != self.nodes.gateway
    }

    /// Run `f` on the domain node at `cx`'s node, with the host around it.
    fn node<R>(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        from: Option<NodeId>,
        f: impl FnOnce(&mut Node<'_>, &mut SimHost<'_, '_>) -> R,
    ) -> R {
        let mut host = SimHost {
            from,
            cx,
            nodes: self.nodes,
            topics: &self.topics,
            outbox: self.settings.safety.outbox,
            checker: &mut self.checker,
            meter: &mut self.meter,
            coverage: &mut self.coverage,
        };
        let mut node = Node { settings: &self.settings, vol, tx: &mut self.tx };
        f(&mut node, &mut host)
    }
}

impl App for SagaApp {
    type Msg = Msg;
    type State = Store;
    type Write = domain::Write;
    type Volatile = Vol;
    type Violation = Violation;
    type Cached = KeyEntry;

    fn conflicts(read: &Store, now: &Store, writes: &[domain::Write]) -> bool {
        domain::commit_check::conflicts(read, now, writes)
    }

    fn boot(&mut self, cx: &mut Cx<'_, Self>) -> Vol {
        let mut vol = Vol::default();
        let node = cx.node();
        if node == self.nodes.client {
            let gateway = self.nodes.gateway;
            self.client.start(&mut ClientAdapter { cx, gateway });
        } else if node == self.nodes.gateway {
            // Poison records still to come (a restarted gateway does not
            // publish one again).
            let now = cx.now_us();
            for &(at_us, _) in self.poisons.iter().filter(|(t, _)| *t > now) {
                cx.set_timer(at_us - now, at_us);
            }
        } else if cx.has_db() {
            self.node(&mut vol, cx, None, |n, host| n.boot(host));
        }
        vol
    }

    fn on_message(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, from: NodeId, msg: Msg) {
        let (safety, settings, nodes) = (self.settings.safety, self.settings, self.nodes);
        let cache_timeout_ppm = self.cache_timeout_ppm;
        match msg {
            Msg::Submit { id, key, req } => gateway::on_submit(
                id,
                key,
                req,
                &safety,
                &mut GatewayAdapter { cx, nodes, settings, cache_timeout_ppm },
            ),
            Msg::Placed { id, key, hash, response } => gateway::on_placed(
                id,
                key,
                hash,
                response,
                &mut GatewayAdapter { cx, nodes, settings, cache_timeout_ppm },
            ),
            Msg::Answer { id, response } => {
                let gateway = self.nodes.gateway;
                self.client.on_answer(id, response, &mut ClientAdapter { cx, gateway })
            }
            Msg::Event(_) | Msg::Malformed { .. } => panic!("events travel through the broker"),
            msg => {
                let peer = nodes.peer(from);
                self.node(vol, cx, Some(from), |n, host| n.on_message(host, peer, msg))
            }
        }
    }

    fn on_record(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        record: Record<'_, Msg>,
    ) -> Handled {
        // A log is a topic's partition; a dead-letter topic is a topic.
        let log = (record.topic.0 as u64) << 16 | record.partition as u64;
        let at = domain::node::Delivery {
            event: domain::EventId(record.event),
            position: domain::node::Delivery::position_of(log, record.offset),
            dead_letter: record.dead_letter,
        };
        let handled = self.node(vol, cx, None, |n, host| n.on_record(host, record.msg, at));
        match handled {
            domain::node::Handled::Done => Handled::Done,
            domain::node::Handled::Retry => Handled::Retry,
        }
    }

    fn on_timer(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, tag: u64) {
        let node = cx.node();
        if node == self.nodes.client {
            let gateway = self.nodes.gateway;
            self.client.on_timer(tag, &mut ClientAdapter { cx, gateway });
        } else if node == self.nodes.gateway {
            if let Some(&(_, topic)) = self.poisons.iter().find(|(t, _)| *t == tag) {
                if cx.record_injected("poison") {
                    cx.publish_direct(self.topics[topic as usize], tag, Msg::Malformed { id: tag });
                }
            }
        } else if self.is_service(node) {
            self.node(vol, cx, None, |n, host| n.on_timer(host, tag));
        }
    }

    fn after_step(&mut self, view: &View<'_, Self>) -> Option<Violation> {
        // Most steps commit nothing: skip the meter's and the checker's calls.
        if self.checker.step_is_quiet() {
            return None;
        }
        self.meter.after_step(view.now_us(), &self.checker);
        if !self.per_step_checks {
            self.checker.skip_step();
            return None;
        }
        let nodes = self.nodes;
        self.checker.after_step(&Stores { view, nodes })
    }

    fn is_settled(&self) -> bool {
        self.checker.sagas_done() && self.client.is_idle()
    }

    fn at_end(&mut self, view: &View<'_, Self>, settled: bool) -> Option<Violation> {
        self.coverage.client_retries = self.client.retries;
        self.coverage.apologies = self.checker.apologies;
        let end = EndState {
            settled,
            outbox_backlog: view.outbox_backlog(),
            memory_backlog: view.memory_backlog(),
            broker_lag: view.broker().lag(),
            answers: self.client.answers.clone(),
            since_heal_us: view.healed_at_us().map(|h| view.now_us() - h),
        };
        let nodes = self.nodes;
        self.checker.at_end(&end, &Stores { view, nodes })
    }
}

/// The domain topics in broker order.
pub fn topic_names() -> impl Iterator<Item = &'static str> {
    Topic::ALL.into_iter().map(Topic::name)
}
