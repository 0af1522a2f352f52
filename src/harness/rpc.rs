//! The orchestration's wiring: the orchestrator's saga steps sent as
//! commands with timeouts and retries, and the services' command handlers.

use domain::message::{CmdKind, CmdResult, Command};
use domain::monolith;
use domain::orchestrator::{self, Next};
use domain::payment::Outcome;
use domain::two_phase;
use domain::{Msg, OrderId, Request, RequestKey, Strategy, Tables};
use sim::{Cx, NodeId};

use crate::harness::app::{store, SagaApp, Vol};

fn timer_tag(order: OrderId, attempt: u32) -> u64 {
    (attempt as u64) << 32 | order.0 as u64
}

impl SagaApp {
    /// A request reached the orchestrator.
    pub(crate) fn orchestrate_place(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        id: u32,
        key: Option<RequestKey>,
        req: Request,
    ) {
        self.tx.clear();
        let s = store(cx);
        let safety = self.settings.safety;
        let (order, next) = match &s.tables {
            Tables::Saga(_) => {
                let policy = self.settings.policy;
                orchestrator::place(&s.entry, key, &req, &safety, policy, &mut self.tx)
            }
            Tables::Xa(_) => two_phase::place(&s.entry, key, &req, &safety, &mut self.tx),
            _ => panic!("requests go to the coordinator"),
        };
        if !self.commit(cx) {
            return;
        }
        match next {
            Next::Finish(response) => {
                cx.send(from, Msg::Placed { id, key, hash: req.hash(), response })
            }
            next => {
                vol.answer_to.insert(order, (id, key, req.hash()));
                self.follow(vol, cx, order, next);
            }
        }
    }

    /// Do what the saga log says comes next.
    fn follow(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, order: OrderId, next: Next) {
        match next {
            Next::Ignore => {}
            Next::Send(svc, cmd) => self.send_step(vol, cx, order, svc, cmd, 0),
            Next::PayAgain(svc, cmd) => {
                let think_us = self.settings.pay_again_after_us;
                self.send_step(vol, cx, order, svc, cmd, think_us)
            }
            Next::Wait => {
                // The rows are locked: ask again shortly, as a new attempt.
                let (kind, attempt, timeouts) =
                    vol.steps.get(&order).copied().unwrap_or((CmdKind::PrepareStock, 0, 0));
                vol.steps.insert(order, (kind, attempt + 1, timeouts));
                self.coverage.lock_wait_us += self.settings.lock_retry_us;
                cx.set_timer(self.settings.lock_retry_us, timer_tag(order, attempt + 1));
            }
            Next::Finish(response) => {
                vol.steps.remove(&order);
                if let Some((id, key, hash)) = vol.answer_to.remove(&order) {
                    cx.send(self.nodes.gateway, Msg::Placed { id, key, hash, response });
                }
            }
        }
    }

    /// Send a saga step's command after `delay_us`, and time its answer.
    fn send_step(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        svc: domain::Service,
        cmd: Command,
        delay_us: u64,
    ) {
        let kind = cmd.kind();
        let (attempt, timeouts) = match vol.steps.get(&order) {
            Some(&(k, a, t)) if k == kind => (a + 1, t),
            Some(&(_, a, _)) => (a + 1, 0),
            None => (0, 0),
        };
        vol.steps.insert(order, (kind, attempt, timeouts));
        self.coverage.rpcs += 1;
        let (to, msg) = (self.nodes.of(svc), Msg::Command { order, cmd });
        if delay_us == 0 {
            cx.send(to, msg);
        } else {
            cx.send_after(to, msg, delay_us);
        }
        cx.set_timer(delay_us + self.settings.step_timeout_us, timer_tag(order, attempt));
    }

    /// A service answered a step.
    pub(crate) fn on_step_done(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        order: OrderId,
        cmd: CmdKind,
        result: CmdResult,
    ) {
        self.tx.clear();
        let max_busy = self.settings.max_busy;
        let next = match &store(cx).tables {
            Tables::Saga(t) => orchestrator::on_done(t, order, cmd, result, &mut self.tx),
            Tables::Xa(t) => {
                let from = self.service_at(from);
                two_phase::on_done(t, order, from, cmd, result, max_busy, &mut self.tx)
            }
            _ => panic!("answers go to the coordinator"),
        };
        if next != Next::Ignore && self.commit(cx) {
            self.follow(vol, cx, order, next);
        }
    }

    /// A step's answer did not come in time: ask again, or give the step up.
    pub(crate) fn on_step_timeout(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>, tag: u64) {
        let (order, attempt) = (OrderId(tag as u32), (tag >> 32) as u32);
        let Some(&(kind, current, timeouts)) = vol.steps.get(&order) else { return };
        if current != attempt {
            return;
        }
        vol.steps.insert(order, (kind, current, timeouts + 1));
        self.tx.clear();
        let silent_enough = timeouts + 1 >= self.settings.give_up_after;
        let sync_cancel = self.settings.strategy == domain::Strategy::SyncCancel;
        let next = match &store(cx).tables {
            // The synchronous cancel calls each cancel once: silence moves on.
            Tables::Saga(t) if sync_cancel && orchestrator::compensating(t, order) => {
                self.coverage.compensations_dropped += 1;
                orchestrator::skip(t, order, &mut self.tx)
            }
            Tables::Saga(t) if silent_enough && orchestrator::may_give_up(t, order) => {
                self.coverage.steps_given_up += 1;
                self.meter.gave_up(order, kind);
                orchestrator::give_up(t, order, &mut self.tx)
            }
            Tables::Saga(t) => orchestrator::command(&t.sagas[&order]),
            Tables::Xa(t) if silent_enough && two_phase::may_give_up(t, order) => {
                self.coverage.steps_given_up += 1;
                self.meter.gave_up(order, kind);
                two_phase::give_up(t, order, &mut self.tx)
            }
            Tables::Xa(t) => two_phase::command(&t.txs[&order]),
            _ => panic!("step timers run at the coordinator"),
        };
        if self.commit(cx) {
            self.follow(vol, cx, order, next);
        } else {
            // Giving up could not be recorded: wait, then decide again.
            cx.set_timer(self.settings.step_timeout_us, tag);
        }
    }

    /// The service a node runs.
    fn service_at(&self, node: NodeId) -> domain::Service {
        domain::Service::ALL
            .into_iter()
            .find(|&s| self.nodes.of(s) == node)
            .expect("answers come from service nodes")
    }

    /// After a restart: take every unfinished saga up where the log left it.
    pub(crate) fn resume_sagas(&mut self, vol: &mut Vol, cx: &mut Cx<'_, Self>) {
        let pending: Vec<(OrderId, Next)> = match &store(cx).tables {
            Tables::Saga(t) => t
                .unfinished()
                .into_iter()
                .map(|o| (o, orchestrator::command(&t.sagas[&o])))
                .collect(),
            Tables::Xa(t) => {
                t.unfinished().into_iter().map(|o| (o, two_phase::command(&t.txs[&o]))).collect()
            }
            _ => panic!("only a coordinator resumes sagas"),
        };
        for (order, next) in pending {
            self.follow(vol, cx, order, next);
        }
    }

    /// A service takes a step the orchestrator asked for, and answers it
    /// (Payment answers a charge or a refund only once the PG has).
    pub(crate) fn on_command(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        cmd: Command,
    ) {
        self.tx.clear();
        let safety = self.settings.safety;
        let tx = &mut self.tx;
        let st = store(cx);
        let (result, call) = match &st.tables {
            _ if matches!(
                cmd,
                Command::PrepareStock { .. }
                    | Command::PrepareOrder { .. }
                    | Command::PreparePoints { .. }
            ) =>
            {
                (Some(two_phase::prepare(st, order, &cmd, tx)), None)
            }
            _ if matches!(cmd, Command::CommitTx | Command::AbortTx) => {
                (Some(two_phase::decide(st, order, cmd == Command::CommitTx, tx)), None)
            }
            Tables::Product(t) => {
                (Some(domain::product::on_command(t, order, &cmd, &safety, tx)), None)
            }
            Tables::Order(t) => {
                (Some(domain::order::on_command(t, order, &cmd, &safety, tx)), None)
            }
            Tables::User(t) => (Some(domain::user::on_command(t, order, &cmd, tx)), None),
            Tables::Platform(t) => (Some(domain::platform::on_command(t, order, &cmd, tx)), None),
            Tables::Payment(t) => domain::payment::on_command(t, order, &cmd, &safety, tx),
            other => panic!("{other:?} takes no commands"),
        };
        if !self.commit(cx) {
            return;
        }
        if result == Some(CmdResult::Busy) {
            self.coverage.lock_waits += 1;
            cx.trace(|| {
                format!("blocked: order {order}'s rows are locked by a prepared transaction")
            });
        }
        if let Some(result) = result {
            self.reply(cx, order, cmd.kind(), result);
        }
        if let Some(call) = call {
            self.start_call(vol, cx, call, false);
        }
    }
}

impl SagaApp {
    /// A request reached the monolith: one transaction takes it, and the
    /// card charge follows.
    pub(crate) fn monolith_place(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        from: NodeId,
        id: u32,
        key: Option<RequestKey>,
        req: Request,
    ) {
        self.tx.clear();
        let s = store(cx);
        let Tables::Monolith(m) = &s.tables else { panic!("the monolith holds every table") };
        let (_, taken) =
            monolith::place(m, &s.entry, key, &req, &self.settings.safety, &mut self.tx);
        if !self.commit(cx) {
            return;
        }
        match taken {
            monolith::Taken::Answer(response) => {
                cx.send(from, Msg::Placed { id, key, hash: req.hash(), response })
            }
            monolith::Taken::Charge(order) => {
                vol.answer_to.insert(order, (id, key, req.hash()));
                self.start_call(vol, cx, monolith::charge(order), false);
            }
        }
    }

    /// A payment settled or needs another call: in the monolith, a settled
    /// charge is followed, in the same transaction, by the order's
    /// confirmation or its undoing, and the client's answer.
    pub(crate) fn settle_payment(
        &mut self,
        vol: &mut Vol,
        cx: &mut Cx<'_, Self>,
        order: OrderId,
        out: Outcome,
    ) {
        let settled = match out {
            Outcome::Settled(Some((CmdKind::Pay, r)))
                if self.settings.strategy == Strategy::Monolith =>
            {
                r
            }
            out => return self.settle_call(vol, cx, order, out),
        };
        let s = store(cx);
        let Tables::Monolith(m) = &s.tables else { panic!("the monolith holds every table") };
        let response =
            monolith::settle(m, &s.entry, order, settled == CmdResult::Paid, &mut self.tx);
        if self.commit(cx) {
            vol.calls.finish(order);
            if let Some((id, key, hash)) = vol.answer_to.remove(&order) {
                cx.send(self.nodes.gateway, Msg::Placed { id, key, hash, response });
            }
        }
    }
}
