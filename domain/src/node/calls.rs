//! Payment's calls to the external payment gateway, as a node makes them:
//! a call starts once the transaction that asked for it has committed, is
//! timed, and is made again (with its key) after a timeout or an answer that
//! says so; a settled call answers the orchestrator, or, in the monolith,
//! confirms or undoes the order in the same transaction. And the payment
//! gateway's side: a request read against its tables, its own faults
//! decided, its writes committed, and its answer sent after a delay.

use crate::ids::{OrderId, PgKey};
use crate::message::{CmdKind, CmdResult, Msg, PgOp, PgResult};
use crate::monolith;
use crate::node::{Host, Node, Peer};
use crate::payment::{self, Mode, Outcome, PgCall};
use crate::pg;
use crate::strategy::Strategy;
use crate::tables::{Service, Tables, Write};

impl Node<'_> {
    pub(super) fn start_call(&mut self, host: &mut impl Host, call: PgCall, retry: bool) {
        let (now, first) = (host.now_us(), !retry && call.op == PgOp::Charge);
        let tag = self.vol.calls.start(call, now, first);
        let t = host.store().payment().expect("PG calls start where payments are");
        let attempt = self.vol.calls.attempt(call.order);
        let deadline = now + self.settings.pg_timeout_us;
        let msg = payment::request(t, call, retry, (attempt, now, deadline), &self.settings.safety);
        if retry {
            host.counters().pg_retries += 1;
        }
        host.counters().rpcs += 1;
        host.send(Peer::Service(Service::Pg), msg);
        host.set_timer(self.settings.pg_timeout_us, tag);
    }

    /// Take up a call whose outcome is unknown (after a restart, or in the
    /// recovery pass).
    pub(super) fn resume_call(&mut self, host: &mut impl Host, call: PgCall) {
        let op = payment::resend(call.op, self.key_kept(host, call.order));
        if op != call.op {
            host.counters().pg_keys_distrusted += 1;
        }
        self.start_call(host, PgCall { op, ..call }, true);
    }

    /// Whether a charge for `order` sent now would still find its key at
    /// the gateway. The call's timeout bounds how long it travels. The
    /// planted bug trusts the key for ever.
    fn key_kept(&self, host: &impl Host, order: OrderId) -> bool {
        let arrives = host.now_us() + self.settings.pg_timeout_us;
        !self.settings.safety.pg_key_retention
            || self.vol.calls.key_kept(order, arrives, self.settings.pg.key_retention_us)
    }

    /// After a PG reply or timeout has been turned into writes.
    fn settle_call(&mut self, host: &mut impl Host, order: OrderId, out: Outcome) {
        match out {
            Outcome::Ignored => {}
            Outcome::Settled(reply) => {
                if self.commit(host) {
                    self.vol.calls.finish(order);
                    if let (Some((cmd, result)), Mode::Replies) = (reply, self.settings.mode()) {
                        self.reply(host, order, cmd, result);
                    }
                }
            }
            Outcome::Retry(op) => {
                if self.commit(host) {
                    self.start_call(host, PgCall { order, op }, true);
                }
            }
        }
    }

    /// Answer the orchestrator's command.
    pub(super) fn reply(
        &mut self,
        host: &mut impl Host,
        order: OrderId,
        cmd: CmdKind,
        result: CmdResult,
    ) {
        // The monolith has nobody to tell: it settles the order itself.
        if self.settings.strategy != Strategy::Monolith {
            host.send(Peer::Service(Service::Orchestrator), Msg::Done { order, cmd, result });
        }
    }

    pub(super) fn on_pg_reply(
        &mut self,
        host: &mut impl Host,
        order: OrderId,
        (key, op, asked_us): (Option<PgKey>, PgOp, u64),
        result: PgResult,
    ) {
        // "Never seen" holds only when it was said: an answer to an earlier
        // status query may have been overtaken by a charge sent since.
        // Other answers report what happened, which stays true.
        if (op, result) == (PgOp::Status, PgResult::Unknown)
            && !self.vol.calls.is_latest(order, asked_us)
        {
            return;
        }
        self.tx.clear();
        let t = host.store().payment().expect("PG replies go where payments are");
        let out = payment::on_reply(t, order, key, result, self.settings.mode(), self.tx);
        self.settle_payment(host, order, out);
    }

    pub(super) fn on_pg_timeout(&mut self, host: &mut impl Host, call: PgCall) {
        self.tx.clear();
        let t = host.store().payment().expect("PG timers run where payments are");
        let (safety, mode) = (self.settings.safety, self.settings.mode());
        let kept = self.key_kept(host, call.order);
        let out = payment::on_timeout(t, call.order, call.op, (&safety, kept), mode, self.tx);
        if !kept && out == Outcome::Retry(PgOp::Status) {
            host.counters().pg_keys_distrusted += 1;
        }
        self.settle_payment(host, call.order, out);
    }

    /// The payment gateway takes a request.
    pub(super) fn on_pg_request(&mut self, host: &mut impl Host, from: Peer, msg: &Msg) {
        let now = host.now_us();
        if let Some((_, key, op)) = pg::key_of(msg) {
            if self.vol.pg_processing.get(&key).is_some_and(|&until| until > now) {
                host.counters().pg_in_progress += 1;
                let reply = pg::reply(msg, Some(key), op, PgResult::InProgress);
                return host.send(from, reply);
            }
        }
        let Tables::Pg(t) = &host.store().tables else { panic!("PG requests go to the PG") };
        let prepared = pg::prepare(t, msg, &self.settings.pg, now);
        if prepared.key_expired {
            host.counters().pg_keys_expired += 1;
        }
        let new_key = prepared.new_charge_key();
        let refund_key = match pg::key_of(msg) {
            Some((_, key, PgOp::Refund)) => Some(key),
            _ => None,
        };
        let act = pg::finish(prepared, &self.settings.pg, host);
        self.tx.clear();
        self.tx.writes.extend(act.writes.iter().map(|w| Write::Pg(*w)));
        if !self.commit(host) {
            return;
        }
        // A new charge settles after its processing time; its answer waits
        // for that, and a request under its key meanwhile hears "in progress".
        // So does a refund it accepted, when refunds stay pending (drawn only
        // then, so that scenarios without it keep their random stream).
        let pending_max = self.settings.pg.refund_pending_max_us;
        let accepted = act.writes.iter().any(|w| matches!(w, pg::PgWrite::Refund { .. }));
        let mut processing = 0;
        let window = match (new_key, refund_key) {
            (Some(key), _) => Some((key, host.random_us(self.settings.pg.processing_max_us))),
            (None, Some(key)) if accepted && pending_max > 0 => {
                host.counters().pg_refunds_pending += 1;
                Some((key, host.random_us(pending_max)))
            }
            _ => None,
        };
        if let Some((key, took)) = window {
            processing = took;
            if self.vol.pg_processing.len() > 4096 {
                self.vol.pg_processing.retain(|_, until| *until > now);
            }
            self.vol.pg_processing.insert(key, now + processing);
        }
        if let Some((reply, delay)) = act.reply {
            host.send_after(from, reply, delay + processing);
        }
    }

    /// A payment settled or needs another call: in the monolith, a settled
    /// charge is followed, in the same transaction, by the order's
    /// confirmation or its undoing, and the client's answer.
    fn settle_payment(&mut self, host: &mut impl Host, order: OrderId, out: Outcome) {
        let settled = match out {
            Outcome::Settled(Some((CmdKind::Pay, r)))
                if self.settings.strategy == Strategy::Monolith =>
            {
                r
            }
            out => return self.settle_call(host, order, out),
        };
        let s = host.store();
        let Tables::Monolith(m) = &s.tables else { panic!("the monolith holds every table") };
        let response = monolith::settle(m, &s.entry, order, settled == CmdResult::Paid, self.tx);
        if self.commit(host) {
            self.vol.calls.finish(order);
            if let Some((id, key, hash)) = self.vol.answer_to.remove(&order) {
                host.send(Peer::Gateway, Msg::Placed { id, key, hash, response });
            }
        }
    }
}
