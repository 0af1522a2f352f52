//! The saga as a kernel [`App`]: which node runs which service, and the
//! adapters from the kernel's context to the domain's ports.

use domain::ports::{ClientPort, TxBuf};
use domain::tables::Consumed;
use domain::{Checker, EndState, Msg, Safety, Service, StateView, Tables, Topic, Violation};
use sim::trace::stable_hash;
use sim::{App, Cx, NodeId, Record, TopicId, View};

use domain::client::Client;

/// Counts of what a run exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub duplicates_absorbed: u64,
    pub client_retries: u64,
}

pub struct SagaApp {
    pub safety: Safety,
    /// Check invariants after every step (off only to measure their cost).
    pub per_step_checks: bool,
    pub client_node: NodeId,
    /// The node of each service, in [`Service::ALL`] order.
    pub service_nodes: [NodeId; 4],
    /// The broker topic of each domain topic, in [`Topic::ALL`] order.
    pub topics: [TopicId; 8],
    pub client: Client,
    pub checker: Checker,
    pub coverage: Coverage,
    /// Reused for every transaction, so handling a message does not allocate
    /// a fresh buffer.
    tx: TxBuf,
}

impl SagaApp {
    pub fn new(
        safety: Safety,
        client_node: NodeId,
        service_nodes: [NodeId; 4],
        topics: [TopicId; 8],
        client: Client,
        checker: Checker,
    ) -> SagaApp {
        let tx = TxBuf::default();
        let coverage = Coverage::default();
        SagaApp {
            safety,
            per_step_checks: true,
            client_node,
            service_nodes,
            topics,
            client,
            checker,
            coverage,
            tx,
        }
    }

    pub fn node_of(&self, service: Service) -> NodeId {
        self.service_nodes[service as usize]
    }

    /// Commit the buffered transaction: writes and events together through
    /// the outbox, or, with the outbox switched off, events published after
    /// the commit.
    fn commit(&mut self, cx: &mut Cx<'_, Self>) {
        if self.tx.is_empty() {
            return;
        }
        cx.fold(stable_hash(&(&self.tx.writes, &self.tx.events)));
        if cx.tracing() {
            let (w, e) = (&self.tx.writes, &self.tx.events);
            cx.trace(|| format!("         commit writes={w:?} events={e:?}"));
        }
        let topics = self.topics;
        let events =
            self.tx.events.iter().map(|e| (topics[e.topic() as usize], e.key(), Msg::Event(*e)));
        if self.safety.outbox {
            cx.commit(&self.tx.writes, events);
        } else {
            cx.commit(&self.tx.writes, std::iter::empty());
            for (t, k, m) in events {
                cx.publish_direct(t, k, m);
            }
        }
        for w in &self.tx.writes {
            self.checker.observe(w);
        }
    }
}

fn tables<'a>(cx: &'a Cx<'_, SagaApp>) -> &'a Tables {
    cx.db().state()
}

struct ClientAdapter<'c, 'a> {
    cx: &'c mut Cx<'a, SagaApp>,
    product: NodeId,
}

impl ClientPort for ClientAdapter<'_, '_> {
    fn now_us(&self) -> u64 {
        self.cx.now_us()
    }
    fn send(&mut self, msg: Msg) {
        self.cx.send(self.product, msg);
    }
    fn set_timer(&mut self, delay_us: u64, tag: u64) {
        self.cx.set_timer(delay_us, tag);
    }
    fn jitter_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
}

struct Tablesview<'v, 'a> {
    view: &'v View<'a, SagaApp>,
    nodes: [NodeId; 4],
}

impl StateView for Tablesview<'_, '_> {
    fn tables(&self, service: Service) -> &Tables {
        self.view.db(self.nodes[service as usize]).expect("services have databases").state()
    }
}

impl App for SagaApp {
    type Msg = Msg;
    type State = Tables;
    type Write = domain::Write;
    type Volatile = ();
    type Violation = Violation;

    fn boot(&mut self, cx: &mut Cx<'_, Self>) {
        if cx.node() == self.client_node {
            let product = self.node_of(Service::Product);
            self.client.start(&mut ClientAdapter { cx, product });
        }
    }

    fn on_message(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Place(req) => {
                self.tx.clear();
                let Tables::Product(t) = tables(cx) else { panic!("orders are placed at product") };
                let accepted = domain::product::place(t, &req, &mut self.tx);
                self.commit(cx);
                cx.send(from, Msg::Placed { order: req.order, accepted });
            }
            Msg::Placed { order, .. } => self.client.on_reply(order),
            Msg::Event(_) => panic!("events travel through the broker, not as RPCs"),
        }
    }

    fn on_record(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, record: Record<'_, Msg>) {
        let Msg::Event(ev) = record.msg else { panic!("only events are published") };
        self.tx.clear();
        match tables(cx).consume(ev, &self.safety, &mut self.tx) {
            Consumed::Handled => self.commit(cx),
            Consumed::Duplicate => self.coverage.duplicates_absorbed += 1,
        }
    }

    fn on_timer(&mut self, _: &mut (), cx: &mut Cx<'_, Self>, tag: u64) {
        let product = self.node_of(Service::Product);
        self.client.on_timer(tag, &mut ClientAdapter { cx, product });
    }

    fn after_step(&mut self, view: &View<'_, Self>) -> Option<Violation> {
        if !self.per_step_checks {
            self.checker.skip_step();
            return None;
        }
        let nodes = self.service_nodes;
        self.checker.after_step(&Tablesview { view, nodes })
    }

    fn is_settled(&self) -> bool {
        self.checker.sagas_done() && self.client.is_idle()
    }

    fn at_end(&mut self, view: &View<'_, Self>, settled: bool) -> Option<Violation> {
        self.coverage.client_retries = self.client.retries;
        self.checker.at_end(&EndState {
            settled,
            outbox_backlog: view.outbox_backlog(),
            memory_backlog: view.memory_backlog(),
            broker_lag: view.broker().lag(),
        })
    }
}

/// The domain topics in broker order.
pub fn topic_names() -> impl Iterator<Item = &'static str> {
    Topic::ALL.into_iter().map(Topic::name)
}
