//! The coordinators' saga steps, as a node runs them: each step a command
//! to one service, timed; a silent step asked again, given up (and
//! compensated) once it has been silent often enough, or, under the
//! synchronous cancel, skipped; a step whose rows are locked asked again
//! shortly. And the other side: a service taking the step and answering it,
//! and the monolith taking a request in one transaction.

use crate::message::{CmdKind, CmdResult, Command, Msg};
use crate::monolith;
use crate::node::{Host, Node, Peer};
use crate::orchestrator::{self, Next};
use crate::strategy::Strategy;
use crate::tables::{Service, Tables};
use crate::two_phase;
use crate::{OrderId, Request, RequestKey};

/// A step's timer: its order and the attempt it times.
fn timer_tag(order: OrderId, attempt: u32) -> u64 {
    (attempt as u64) << 32 | order.0 as u64
}

impl Node<'_> {
    /// A request reached the coordinator.
    pub(super) fn orchestrate_place(
        &mut self,
        host: &mut impl Host,
        from: Peer,
        id: u32,
        key: Option<RequestKey>,
        req: Request,
    ) {
        self.tx.clear();
        let s = host.store();
        let safety = self.settings.safety;
        let (order, next) = match &s.tables {
            Tables::Saga(_) => {
                let policy = self.settings.policy;
                orchestrator::place(&s.entry, key, &req, &safety, policy, self.tx)
            }
            Tables::Xa(_) => two_phase::place(&s.entry, key, &req, &safety, self.tx),
            _ => panic!("requests go to the coordinator"),
        };
        if !self.commit(host) {
            return;
        }
        match next {
            Next::Finish(response) => {
                host.send(from, Msg::Placed { id, key, hash: req.hash(), response })
            }
            next => {
                self.vol.answer_to.insert(order, (id, key, req.hash()));
                self.follow(host, order, next);
            }
        }
    }

    /// Do what the saga log says comes next.
    fn follow(&mut self, host: &mut impl Host, order: OrderId, next: Next) {
        match next {
            Next::Ignore => {}
            Next::Send(svc, cmd) => self.send_step(host, order, svc, cmd, 0),
            Next::PayAgain(svc, cmd) => {
                let think_us = self.settings.pay_again_after_us;
                self.send_step(host, order, svc, cmd, think_us)
            }
            Next::Wait => {
                // The rows are locked: ask again shortly, as a new attempt.
                let (kind, attempt, timeouts) =
                    self.vol.steps.get(&order).copied().unwrap_or((CmdKind::PrepareStock, 0, 0));
                self.vol.steps.insert(order, (kind, attempt + 1, timeouts));
                host.counters().lock_wait_us += self.settings.lock_retry_us;
                host.set_timer(self.settings.lock_retry_us, timer_tag(order, attempt + 1));
            }
            Next::Finish(response) => {
                self.vol.steps.remove(&order);
                if let Some((id, key, hash)) = self.vol.answer_to.remove(&order) {
                    host.send(Peer::Gateway, Msg::Placed { id, key, hash, response });
                }
            }
        }
    }

    /// Send a saga step's command after `delay_us`, and time its answer.
    fn send_step(
        &mut self,
        host: &mut impl Host,
        order: OrderId,
        svc: Service,
        cmd: Command,
        delay_us: u64,
    ) {
        let kind = cmd.kind();
        let (attempt, timeouts) = match self.vol.steps.get(&order) {
            Some(&(k, a, t)) if k == kind => (a + 1, t),
            Some(&(_, a, _)) => (a + 1, 0),
            None => (0, 0),
        };
        self.vol.steps.insert(order, (kind, attempt, timeouts));
        host.counters().rpcs += 1;
        let (to, msg) = (Peer::Service(svc), Msg::Command { order, cmd });
        if delay_us == 0 {
            host.send(to, msg);
        } else {
            host.send_after(to, msg, delay_us);
        }
        host.set_timer(delay_us + self.settings.step_timeout_us, timer_tag(order, attempt));
    }

    /// A service answered a step.
    pub(super) fn on_step_done(
        &mut self,
        host: &mut impl Host,
        from: Peer,
        order: OrderId,
        cmd: CmdKind,
        result: CmdResult,
    ) {
        self.tx.clear();
        let lock_wait = (host.now_us(), self.settings.lock_wait_max_us);
        let next = match &host.store().tables {
            Tables::Saga(t) => orchestrator::on_done(t, order, cmd, result, self.tx),
            Tables::Xa(t) => {
                let Peer::Service(from) = from else { panic!("answers come from services") };
                two_phase::on_done(t, order, from, cmd, result, lock_wait, self.tx)
            }
            _ => panic!("answers go to the coordinator"),
        };
        if next != Next::Ignore && self.commit(host) {
            self.follow(host, order, next);
        }
    }

    /// A step's answer did not come in time: ask again, give the step up,
    /// or (the synchronous cancel) move past a silent compensation.
    pub(super) fn on_step_timeout(&mut self, host: &mut impl Host, tag: u64) {
        let (order, attempt) = (OrderId(tag as u32), (tag >> 32) as u32);
        let Some(&(kind, current, timeouts)) = self.vol.steps.get(&order) else { return };
        if current != attempt {
            return;
        }
        self.vol.steps.insert(order, (kind, current, timeouts + 1));
        self.tx.clear();
        let silent_enough = timeouts + 1 >= self.settings.give_up_after;
        let sync_cancel = self.settings.strategy == Strategy::SyncCancel;
        let tx = &mut *self.tx;
        let (next, given_up) = match &host.store().tables {
            // The synchronous cancel calls each cancel once: silence moves on.
            Tables::Saga(t) if sync_cancel && orchestrator::compensating(t, order) => {
                (orchestrator::skip(t, order, tx), Silence::Skipped)
            }
            Tables::Saga(t) if silent_enough && orchestrator::may_give_up(t, order) => {
                (orchestrator::give_up(t, order, tx), Silence::GivenUp)
            }
            Tables::Saga(t) => (orchestrator::command(&t.sagas[&order]), Silence::AskAgain),
            Tables::Xa(t) if silent_enough && two_phase::may_give_up(t, order) => {
                (two_phase::give_up(t, order, tx), Silence::GivenUp)
            }
            Tables::Xa(t) => (two_phase::command(&t.txs[&order]), Silence::AskAgain),
            _ => panic!("step timers run at the coordinator"),
        };
        match given_up {
            Silence::Skipped => host.counters().compensations_dropped += 1,
            Silence::GivenUp => {
                host.counters().steps_given_up += 1;
                host.gave_up(order, kind);
            }
            Silence::AskAgain => {}
        }
        if self.commit(host) {
            self.follow(host, order, next);
        } else {
            // Giving up could not be recorded: wait, then decide again.
            host.set_timer(self.settings.step_timeout_us, tag);
        }
    }

    /// Take up every unfinished saga that has no step in flight, where the
    /// log left it: all of them after a restart, and in the periodic
    /// recovery pass those whose step a commit that reported a failure
    /// (but applied) left undriven. Returns how many were taken up.
    pub(super) fn resume_sagas(&mut self, host: &mut impl Host) -> usize {
        let idle = |o: &OrderId| !self.vol.steps.contains_key(o);
        let pending: Vec<(OrderId, Next)> = match &host.store().tables {
            Tables::Saga(t) => t
                .unfinished()
                .into_iter()
                .filter(idle)
                .map(|o| (o, orchestrator::command(&t.sagas[&o])))
                .collect(),
            Tables::Xa(t) => t
                .unfinished()
                .into_iter()
                .filter(idle)
                .map(|o| (o, two_phase::command(&t.txs[&o])))
                .collect(),
            _ => panic!("only a coordinator resumes sagas"),
        };
        let n = pending.len();
        for (order, next) in pending {
            self.follow(host, order, next);
        }
        n
    }

    /// A service takes a step the orchestrator asked for, and answers it
    /// (Payment answers a charge or a refund only once the PG has).
    pub(super) fn on_command(&mut self, host: &mut impl Host, order: OrderId, cmd: Command) {
        self.tx.clear();
        let safety = self.settings.safety;
        let tx = &mut *self.tx;
        let st = host.store();
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
                (Some(crate::product::on_command(t, order, &cmd, &safety, tx)), None)
            }
            Tables::Order(t) => (Some(crate::order::on_command(t, order, &cmd, &safety, tx)), None),
            Tables::User(t) => (Some(crate::user::on_command(t, order, &cmd, tx)), None),
            Tables::Platform(t) => (Some(crate::platform::on_command(t, order, &cmd, tx)), None),
            Tables::Payment(t) => crate::payment::on_command(t, order, &cmd, &safety, tx),
            other => panic!("{other:?} takes no commands"),
        };
        if !self.commit(host) {
            return;
        }
        if result == Some(CmdResult::Busy) {
            host.counters().lock_waits += 1;
            host.trace(|| {
                format!("blocked: order {order}'s rows are locked by a prepared transaction")
            });
        }
        if let Some(result) = result {
            self.reply(host, order, cmd.kind(), result);
        }
        if let Some(call) = call {
            self.start_call(host, call, false);
        }
    }

    /// A request reached the monolith: one transaction takes it, and the
    /// card charge follows.
    pub(super) fn monolith_place(
        &mut self,
        host: &mut impl Host,
        from: Peer,
        id: u32,
        key: Option<RequestKey>,
        req: Request,
    ) {
        self.tx.clear();
        let s = host.store();
        let Tables::Monolith(m) = &s.tables else { panic!("the monolith holds every table") };
        let (_, taken) = monolith::place(m, &s.entry, key, &req, &self.settings.safety, self.tx);
        if !self.commit(host) {
            return;
        }
        match taken {
            monolith::Taken::Answer(response) => {
                host.send(from, Msg::Placed { id, key, hash: req.hash(), response })
            }
            monolith::Taken::Charge(order) => {
                self.vol.answer_to.insert(order, (id, key, req.hash()));
                self.start_call(host, monolith::charge(order), false);
            }
        }
    }
}

/// What a silent step came to.
enum Silence {
    AskAgain,
    GivenUp,
    Skipped,
}
