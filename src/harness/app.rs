//! The order system as a kernel [`App`]: which node runs which service, how
//! a message, a record or a timer reaches the domain, and how the domain's
//! transactions are committed.

use std::collections::BTreeMap;

use domain::client::Client;
use domain::gateway::{self, KeyEntry};
use domain::message::{CmdKind, CmdResult, PgResult};
use domain::meter::Meter;
use domain::payment::{self, Calls, Mode, Outcome, PgCall};
use domain::pg::{self, PgFaults};
use domain::ports::TxBuf;
use domain::{
    Checker, Consumed, EndState, Msg, OrderId, PgKey, RequestKey, Safety, Service, Store, Strategy,
    Tables, Topic, Violation,
};
use sim::trace::stable_hash;
use sim::{App, Cx, Handled, NodeId, Record, TopicId, View};

use crate::harness::ports::{ClientAdapter, GatewayAdapter, PgAdapter, Stores};

/// Counts of what a run exercised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Coverage {
    pub duplicates_absorbed: u64,
    pub client_retries: u64,
    pub parked: u64,
    pub pg_retries: u64,
    pub early_events: u64,
    pub steps_given_up: u64,
    pub step_retries: u64,
    /// Prepares refused because another prepared transaction held the rows.
    pub lock_waits: u64,
    /// Compensations a synchronous cancel gave up after one silent call.
    pub compensations_dropped: u64,
    /// Apology coupons issued for system-caused failures.
    pub apologies: u64,
    /// Calls our services made: saga commands and PG requests.
    pub rpcs: u64,
    /// Time coordinators waited for rows locked by another transaction.
    pub lock_wait_us: u64,
}

/// Where everything runs.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nodes {
    pub client: NodeId,
    pub gateway: NodeId,
    pub cache: NodeId,
    pub broker: NodeId,
    /// In [`Service::ALL`] order.
    pub services: [NodeId; 7],
    /// Where orders enter: Product in the choreography, the orchestrator in
    /// the orchestration.
    pub entry: NodeId,
}

impl Nodes {
    pub fn of(&self, s: Service) -> NodeId {
        self.services[s as usize]
    }
}

/// Settings of the system under test that are not the kernel's.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub strategy: Strategy,
    pub safety: Safety,
    pub pg: PgFaults,
    pub pg_timeout_us: u64,
    /// How long the cache keeps an answered key, and an "in progress" mark.
    pub key_ttl_us: u64,
    pub in_progress_ttl_us: u64,
    /// The orchestrator's wait for a step's answer, and how many silent
    /// waits it takes before it gives a step up.
    pub step_timeout_us: u64,
    pub give_up_after: u32,
    /// Two-phase commit: how soon a step whose rows are locked is asked
    /// again, and how many "busy" answers end in an abort (the lock wait).
    pub lock_retry_us: u64,
    pub max_busy: u32,
    /// What the strategy adds to the orchestrator's sagas: an apology
    /// coupon, "pay again" offers.
    pub policy: domain::orchestrator::Policy,
    /// The user's think time before paying again after a decline.
    pub pay_again_after_us: u64,
}

impl Settings {
    pub fn mode(&self) -> Mode {
        match self.strategy {
            Strategy::Choreography => Mode::Events,
            _ => Mode::Replies,
        }
    }
}

/// A node's volatile state: the PG calls in flight (payment), the saga steps
/// in flight and whom to answer (orchestrator). Lost at a crash.
#[derive(Clone, Debug, Default)]
pub struct Vol {
    pub calls: Calls,
    /// Per order: the command waited for, its attempt, and how many waits
    /// for it timed out.
    pub steps: BTreeMap<OrderId, (CmdKind, u32, u32)>,
    /// Per order: the gateway's request to answer when the saga finishes.
    pub answer_to: BTreeMap<OrderId, (u32, Option<RequestKey>, u64)>,
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
    /// Reused for every transaction, so handling a message does not allocate
    /// a fresh buffer.
    pub(crate) tx: TxBuf,
}

pub(crate) fn store<'a>(cx: &'a Cx<'_, SagaApp>) -> &'a Store {
    cx.db().state()
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
            tx: TxBuf::default(),
        }
    }

    fn is_orchestrator(&self, node: NodeId) -> bool {
        self.settings.strategy.coordinated() && node == self.nodes.of(Service::Orchestrator)
    }

    /// Commit the buffered transaction: writes and events together through
    /// the outbox, or, with the outbox switched off, events published after
    /// the commit. False if the commit failed (nothing was applied).
    pub(crate) fn commit(&mut self, cx: &mut Cx<'_, Self>) -> bool {
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
            cx.trace(|| format!("commit writes={w:?} events={e:?}"));
        }
        if !outbox {
            for e in &self.tx.events {
                cx.publish_direct(topics[e.topic() as usize], e.key(), Msg::Event(*e));
            }
        }
        for w in &self.tx.writes {
            self.checker.observe(w);
            self.meter.observe(w);
        }
        true
    }

    pub(crate) fn start_call(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        call: PgCall,
        retry: bool,
    ) {
        let t = store(cx).payment().expect("PG calls start where payments are");
        let msg = payment::request(t, call, retry, &self.settings.safety);
        if retry {
            self.coverage.pg_retries += 1;
        }
        self.coverage.rpcs += 1;
        let tag = vol.calls.start(call);
        cx.send(self.nodes.of(Service::Pg), msg);
        cx.set_timer(self.settings.pg_timeout_us, tag);
    }

    /// After a PG reply or timeout has been turned into writes.
    pub(crate) fn settle_call(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        out: Outcome,
    ) {
        match out {
            Outcome::Ignored => {}
            Outcome::Settled(reply) => {
                if self.commit(cx) {
                    vol.calls.finish(order);
                    if let (Some((cmd, result)), Mode::Replies) = (reply, self.settings.mode()) {
                        self.reply(cx, order, cmd, result);
                    }
                }
            }
            Outcome::Retry(op) => {
                if self.commit(cx) {
                    self.start_call(vol, cx, PgCall { order, op }, true);
                }
            }
        }
    }

    /// Answer the orchestrator's command.
    pub(crate) fn reply(
        &mut self,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        cmd: CmdKind,
        result: CmdResult,
    ) {
        // The monolith has nobody to tell: it settles the order itself.
        if self.settings.strategy != Strategy::Monolith {
            cx.send(self.nodes.of(Service::Orchestrator), Msg::Done { order, cmd, result });
        }
    }

    fn on_pg_reply(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        key: Option<PgKey>,
        result: PgResult,
    ) {
        self.tx.clear();
        let t = store(cx).payment().expect("PG replies go where payments are");
        let out = payment::on_reply(t, order, key, result, self.settings.mode(), &mut self.tx);
        self.settle_payment(vol, cx, order, out);
    }

    fn on_pg_timeout(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, call: PgCall) {
        self.tx.clear();
        let t = store(cx).payment().expect("PG timers run where payments are");
        let (safety, mode) = (self.settings.safety, self.settings.mode());
        let out = payment::on_timeout(t, call.order, call.op, &safety, mode, &mut self.tx);
        self.settle_payment(vol, cx, call.order, out);
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
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        id: u32,
        key: Option<RequestKey>,
        req: domain::Request,
    ) {
        match self.settings.strategy {
            Strategy::Choreography => {}
            Strategy::Monolith => return self.monolith_place(vol, cx, from, id, key, req),
            _ => return self.orchestrate_place(vol, cx, from, id, key, req),
        }
        self.tx.clear();
        let s = store(cx);
        let Tables::Product(t) = &s.tables else { panic!("orders are placed at product") };
        let response =
            domain::product::place(t, &s.entry, key, &req, &self.settings.safety, &mut self.tx);
        if self.commit(cx) {
            cx.send(from, Msg::Placed { id, key, hash: req.hash(), response });
        }
    }

    fn on_event(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, ev: &domain::Event) -> Handled {
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
                    self.start_call(vol, cx, call, false);
                }
                Handled::Done
            }
        }
    }

    /// A record no attempt can read: the recovery pass parks it for people
    /// to look at; before that, it is retried like any failure.
    fn on_poison(&mut self, cx: &mut Cx<'_, Self>, dead_letter: bool) -> Handled {
        if !dead_letter {
            return Handled::Retry;
        }
        self.tx.clear();
        self.tx.writes.push(domain::Write::Park);
        if self.commit(cx) {
            self.coverage.parked += 1;
            Handled::Done
        } else {
            Handled::Retry
        }
    }
}

impl App for SagaApp {
    type Msg = Msg;
    type State = Store;
    type Write = domain::Write;
    type Volatile = Vol;
    type Violation = Violation;
    type Cached = KeyEntry;

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
        } else if node == self.nodes.of(Service::Payment) {
            let t = store(cx).payment().expect("payment holds payments");
            for call in payment::recover(t) {
                self.start_call(&mut vol, cx, call, true);
            }
        } else if self.is_orchestrator(node) {
            self.resume_sagas(&mut vol, cx);
        }
        vol
    }

    fn on_message(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, from: NodeId, msg: Msg) {
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
            Msg::Place { id, key, req } => self.on_place(vol, cx, from, id, key, req),
            Msg::Command { order, cmd } => self.on_command(vol, cx, order, cmd),
            Msg::Done { order, cmd, result } => {
                self.on_step_done(vol, cx, from, order, cmd, result)
            }
            Msg::Charge { .. } | Msg::Refund { .. } | Msg::Status { .. } => {
                self.on_pg_request(cx, from, &msg)
            }
            Msg::PgReply { order, key, result, .. } => {
                self.on_pg_reply(vol, cx, order, key, result)
            }
            Msg::Event(_) | Msg::Malformed { .. } => panic!("events travel through the broker"),
        }
    }

    fn on_record(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        record: Record<'_, Msg>,
    ) -> Handled {
        match record.msg {
            Msg::Event(ev) => self.on_event(vol, cx, ev),
            _ => self.on_poison(cx, record.dead_letter),
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
        } else if self.is_orchestrator(node) {
            self.on_step_timeout(vol, cx, tag);
        } else if let Some(call) = vol.calls.timed_out(tag) {
            self.on_pg_timeout(vol, cx, call);
        }
    }

    fn after_step(&mut self, view: &View<'_, Self>) -> Option<Violation> {
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
        };
        let nodes = self.nodes;
        self.checker.at_end(&end, &Stores { view, nodes })
    }
}

/// The domain topics in broker order.
pub fn topic_names() -> impl Iterator<Item = &'static str> {
    Topic::ALL.into_iter().map(Topic::name)
}
