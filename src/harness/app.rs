//! The order system as a kernel [`App`]: which node runs which service, and
//! the adapters from the kernel's context to the domain's ports.

use domain::client::Client;
use domain::gateway::{self, GatewayPort, KeyEntry};
use domain::message::PgOp;
use domain::payment::{self, Calls, Outcome, PgCall};
use domain::pg::{self, PgFaults, PgPort};
use domain::ports::{ClientPort, TxBuf};
use domain::{
    Checker, Consumed, EndState, Msg, RequestKey, Safety, Service, StateView, Store, Tables, Topic,
    Violation,
};
use sim::trace::stable_hash;
use sim::{App, Cx, Handled, NodeId, Record, TopicId, View};

/// Counts of what a run exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub duplicates_absorbed: u64,
    pub client_retries: u64,
    pub parked: u64,
    pub pg_retries: u64,
    pub early_events: u64,
}

/// Where everything runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nodes {
    pub client: NodeId,
    pub gateway: NodeId,
    pub cache: NodeId,
    pub broker: NodeId,
    /// In [`Service::ALL`] order.
    pub services: [NodeId; 6],
}

impl Nodes {
    pub fn of(&self, s: Service) -> NodeId {
        self.services[s as usize]
    }
}

/// Settings of the system under test that are not the kernel's.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub safety: Safety,
    pub pg: PgFaults,
    pub pg_timeout_us: u64,
    /// How long the cache keeps an answered key, and an "in progress" mark.
    pub key_ttl_us: u64,
    pub in_progress_ttl_us: u64,
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
    pub coverage: Coverage,
    /// Poison records to publish, by gateway timer tag.
    pub poisons: Vec<(u64, Topic)>,
    /// Reused for every transaction, so handling a message does not allocate
    /// a fresh buffer.
    tx: TxBuf,
}

impl SagaApp {
    pub fn new(settings: Settings, client: Client, checker: Checker) -> SagaApp {
        SagaApp {
            settings,
            per_step_checks: true,
            nodes: Nodes::default(),
            topics: [TopicId(0); 12],
            client,
            checker,
            coverage: Coverage::default(),
            poisons: Vec::new(),
            tx: TxBuf::default(),
        }
    }

    /// Commit the buffered transaction: writes and events together through
    /// the outbox, or, with the outbox switched off, events published after
    /// the commit. False if the commit failed (nothing was applied).
    fn commit(&mut self, cx: &mut Cx<'_, Self>) -> bool {
        if self.tx.is_empty() {
            return true;
        }
        let topics = self.topics;
        let outbox = self.settings.safety.outbox;
        let events =
            self.tx.events.iter().map(|e| (topics[e.topic() as usize], e.key(), Msg::Event(*e)));
        let committed = if outbox {
            cx.commit(&self.tx.writes, events)
        } else {
            cx.commit(&self.tx.writes, std::iter::empty())
        };
        if committed.is_err() {
            return false;
        }
        cx.fold(stable_hash(&(&self.tx.writes, &self.tx.events)));
        if cx.tracing() {
            let (w, e) = (&self.tx.writes, &self.tx.events);
            cx.trace(|| format!("         commit writes={w:?} events={e:?}"));
        }
        if !outbox {
            for e in &self.tx.events {
                cx.publish_direct(topics[e.topic() as usize], e.key(), Msg::Event(*e));
            }
        }
        for w in &self.tx.writes {
            self.checker.observe(w);
        }
        true
    }

    fn start_call(&mut self, calls: &mut Calls, cx: &mut Cx<'_, Self>, call: PgCall, retry: bool) {
        let Tables::Payment(t) = &store(cx).tables else { panic!("PG calls start at payment") };
        let msg = payment::request(t, call, retry, &self.settings.safety);
        if retry {
            self.coverage.pg_retries += 1;
        }
        let tag = calls.start(call);
        cx.send(self.nodes.of(Service::Pg), msg);
        cx.set_timer(self.settings.pg_timeout_us, tag);
    }

    /// After a reply or a timeout has been turned into writes.
    fn settle_call(
        &mut self,
        calls: &mut Calls,
        cx: &mut Cx<'_, Self>,
        order: domain::OrderId,
        out: Outcome,
    ) {
        match out {
            Outcome::Ignored => {}
            Outcome::Settled => {
                if self.commit(cx) {
                    calls.finish(order);
                }
            }
            Outcome::Retry(op) => self.start_call(calls, cx, PgCall { order, op }, true),
        }
    }

    fn on_pg_reply(
        &mut self,
        calls: &mut Calls,
        cx: &mut Cx<'_, Self>,
        order: domain::OrderId,
        result: domain::message::PgResult,
    ) {
        self.tx.clear();
        let Tables::Payment(t) = &store(cx).tables else { panic!("PG replies go to payment") };
        let out = payment::on_reply(t, order, result, &mut self.tx);
        self.settle_call(calls, cx, order, out);
    }

    fn on_pg_request(&mut self, cx: &mut Cx<'_, Self>, from: NodeId, msg: &Msg) {
        let Tables::Pg(t) = &store(cx).tables else { panic!("PG requests go to the PG") };
        let prepared = pg::prepare(t, msg);
        let act = pg::finish(prepared, &self.settings.pg, &mut PgAdapter { cx });
        self.tx.clear();
        self.tx.writes.extend(act.writes.iter().map(|w| domain::Write::Pg(*w)));
        if !self.commit(cx) {
            return;
        }
        if let Some((reply, delay)) = act.reply {
            cx.send_after(from, reply, delay);
        }
    }

    fn on_place(
        &mut self,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        id: u32,
        key: Option<RequestKey>,
        req: domain::Request,
    ) {
        self.tx.clear();
        let s = store(cx);
        let Tables::Product(t) = &s.tables else { panic!("orders are placed at product") };
        let response =
            domain::product::place(t, &s.entry, key, &req, &self.settings.safety, &mut self.tx);
        if self.commit(cx) {
            cx.send(from, Msg::Placed { id, key, hash: req.hash(), response });
        }
    }
}

fn store<'a>(cx: &'a Cx<'_, SagaApp>) -> &'a Store {
    cx.db().state()
}

struct ClientAdapter<'c, 'a> {
    cx: &'c mut Cx<'a, SagaApp>,
    gateway: NodeId,
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

struct GatewayAdapter<'c, 'a> {
    cx: &'c mut Cx<'a, SagaApp>,
    nodes: Nodes,
    settings: Settings,
}

impl GatewayAdapter<'_, '_> {
    fn ttl_us(&self, entry: &KeyEntry) -> u64 {
        match entry {
            KeyEntry::InProgress { .. } => self.settings.in_progress_ttl_us,
            KeyEntry::Done { .. } => self.settings.key_ttl_us,
        }
    }
}

impl GatewayPort for GatewayAdapter<'_, '_> {
    fn cache_get(&mut self, key: RequestKey) -> Option<KeyEntry> {
        let now = self.cx.now_us();
        self.cx.cache(self.nodes.cache).get(key.0, now).copied()
    }
    fn cache_set_nx(&mut self, key: RequestKey, entry: KeyEntry) -> bool {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        self.cx.cache(self.nodes.cache).set_nx(key.0, entry, ttl, now)
    }
    fn cache_set(&mut self, key: RequestKey, entry: KeyEntry) {
        let (now, ttl) = (self.cx.now_us(), self.ttl_us(&entry));
        self.cx.cache(self.nodes.cache).set(key.0, entry, ttl, now)
    }
    fn forward(&mut self, msg: Msg) {
        self.cx.send(self.nodes.of(Service::Product), msg);
    }
    fn answer(&mut self, msg: Msg) {
        self.cx.send(self.nodes.client, msg);
    }
}

struct PgAdapter<'c, 'a> {
    cx: &'c mut Cx<'a, SagaApp>,
}

impl PgPort for PgAdapter<'_, '_> {
    fn fault(&mut self, what: &str, ppm: u32) -> bool {
        self.cx.inject(what, ppm)
    }
    fn random_us(&mut self, max_us: u64) -> u64 {
        self.cx.random().range(0, max_us)
    }
}

struct Stores<'v, 'a> {
    view: &'v View<'a, SagaApp>,
    nodes: Nodes,
}

impl StateView for Stores<'_, '_> {
    fn store(&self, service: Service) -> &Store {
        self.view.db(self.nodes.of(service)).expect("services have databases").state()
    }
}

impl App for SagaApp {
    type Msg = Msg;
    type State = Store;
    type Write = domain::Write;
    type Volatile = Calls;
    type Violation = Violation;
    type Cached = KeyEntry;

    fn boot(&mut self, cx: &mut Cx<'_, Self>) -> Calls {
        let mut calls = Calls::default();
        let node = cx.node();
        if node == self.nodes.client {
            let gateway = self.nodes.gateway;
            self.client.start(&mut ClientAdapter { cx, gateway });
        } else if node == self.nodes.gateway {
            for &(at_us, _) in &self.poisons {
                cx.set_timer(at_us, at_us);
            }
        } else if node == self.nodes.of(Service::Payment) {
            let Tables::Payment(t) = &store(cx).tables else { panic!("payment holds payments") };
            for call in payment::recover(t) {
                self.start_call(&mut calls, cx, call, true);
            }
        }
        calls
    }

    fn on_message(&mut self, calls: &mut Calls, cx: &mut Cx<'_, Self>, from: NodeId, msg: Msg) {
        let (safety, settings, nodes) = (self.settings.safety, self.settings, self.nodes);
        match msg {
            Msg::Submit { id, key, req } => gateway::on_submit(
                id,
                key,
                req,
                &safety,
                &mut GatewayAdapter { cx, nodes, settings },
            ),
            Msg::Placed { id, key, hash, response } => gateway::on_placed(
                id,
                key,
                hash,
                response,
                &mut GatewayAdapter { cx, nodes, settings },
            ),
            Msg::Answer { id, response } => {
                let gateway = self.nodes.gateway;
                self.client.on_answer(id, response, &mut ClientAdapter { cx, gateway })
            }
            Msg::Place { id, key, req } => self.on_place(cx, from, id, key, req),
            Msg::Charge { .. } | Msg::Refund { .. } | Msg::Status { .. } => {
                self.on_pg_request(cx, from, &msg)
            }
            Msg::PgReply { order, result, .. } => self.on_pg_reply(calls, cx, order, result),
            Msg::Event(_) | Msg::Malformed { .. } => panic!("events travel through the broker"),
        }
    }

    fn on_record(
        &mut self,
        calls: &mut Calls,
        cx: &mut Cx<'_, Self>,
        record: Record<'_, Msg>,
    ) -> Handled {
        let ev = match record.msg {
            Msg::Event(ev) => ev,
            // A poison message: no attempt can read it. The recovery pass
            // parks it for people to look at.
            _ if record.dead_letter => {
                self.tx.clear();
                self.tx.writes.push(domain::Write::Park);
                return if self.commit(cx) {
                    self.coverage.parked += 1;
                    Handled::Done
                } else {
                    Handled::Retry
                };
            }
            _ => return Handled::Retry,
        };
        self.tx.clear();
        match store(cx).consume(ev, &self.settings.safety, &mut self.tx) {
            Consumed::Duplicate => {
                self.coverage.duplicates_absorbed += 1;
                Handled::Done
            }
            Consumed::Early => {
                self.coverage.early_events += 1;
                Handled::Retry
            }
            Consumed::Handled(call) => {
                if !self.commit(cx) {
                    return Handled::Retry;
                }
                if let Some(call) = call {
                    self.start_call(calls, cx, call, false);
                }
                Handled::Done
            }
        }
    }

    fn on_timer(&mut self, calls: &mut Calls, cx: &mut Cx<'_, Self>, tag: u64) {
        let node = cx.node();
        if node == self.nodes.client {
            let gateway = self.nodes.gateway;
            self.client.on_timer(tag, &mut ClientAdapter { cx, gateway });
        } else if node == self.nodes.gateway {
            if let Some(&(_, topic)) = self.poisons.iter().find(|(t, _)| *t == tag) {
                cx.record_injected("poison");
                cx.publish_direct(self.topics[topic as usize], tag, Msg::Malformed { id: tag });
            }
        } else if let Some(call) = calls.timed_out(tag) {
            self.tx.clear();
            let Tables::Payment(t) = &store(cx).tables else { panic!("PG timers run at payment") };
            let out =
                payment::on_timeout(t, call.order, call.op, &self.settings.safety, &mut self.tx);
            self.settle_call(calls, cx, call.order, out);
        }
    }

    fn after_step(&mut self, view: &View<'_, Self>) -> Option<Violation> {
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
        let end = EndState {
            settled,
            outbox_backlog: view.outbox_backlog(),
            memory_backlog: view.memory_backlog(),
            broker_lag: view.broker().lag(),
            answers: self.client.answers.clone(),
        };
        let nodes = self.nodes;
        self.checker.at_end(&end, &Stores { view, nodes })
    }
}

/// The domain topics in broker order.
pub fn topic_names() -> impl Iterator<Item = &'static str> {
    Topic::ALL.into_iter().map(Topic::name)
}

/// PG calls are named by their operation in traces.
pub fn op_name(op: PgOp) -> &'static str {
    match op {
        PgOp::Charge => "charge",
        PgOp::Refund => "refund",
        PgOp::Status => "status",
    }
}
