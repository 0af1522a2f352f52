//! The Payment service: one payment per order. It charges the card part of
//! the amount through the external payment gateway (PG) under an idempotency
//! key, tells the saga whether the charge went through, and refunds the card
//! when the saga rolls back.
//!
//! A call to the PG that times out leaves its outcome unknown: the charge may
//! have gone through behind the silence. Payment finds out by calling again
//! with the same key, which the PG answers with what it did the first time;
//! it never guesses. Calls in flight are volatile; after a crash, payments
//! still charging or refunding are taken up again from the database.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, OrderId, PgKey, UserId};
use crate::message::{CmdKind, CmdResult, Command, Event, Msg, PgOp, PgResult};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PaymentState {
    /// The card charge is in flight (or about to be).
    Charging,
    /// The card is charged; waiting for the points.
    Charged,
    Completed,
    Declined,
    /// The card refund is in flight.
    Refunding,
    Refunded,
}

impl PaymentState {
    pub fn is_terminal(self) -> bool {
        matches!(self, PaymentState::Completed | PaymentState::Declined | PaymentState::Refunded)
    }

    pub fn name(self) -> &'static str {
        match self {
            PaymentState::Charging => "charging",
            PaymentState::Charged => "charged",
            PaymentState::Completed => "completed",
            PaymentState::Declined => "declined",
            PaymentState::Refunding => "refunding",
            PaymentState::Refunded => "refunded",
        }
    }

    pub fn may_become(from: Option<PaymentState>, to: PaymentState) -> bool {
        use PaymentState::*;
        matches!(
            (from, to),
            (None, Charging)
                | (None, Declined)
                | (Some(Charging), Charged)
                | (Some(Charging), Declined)
                | (Some(Charged), Completed)
                | (Some(Charged), Refunding)
                | (Some(Refunding), Refunded)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Payment {
    pub user: UserId,
    pub card: u64,
    pub points: u64,
    pub state: PaymentState,
    /// A refund was asked for while the charge was in flight: once the
    /// charge settles it is refunded (the semantic lock).
    pub cancel: bool,
    /// The charge attempt in flight or last made: each "pay again" after a
    /// decline is a new attempt under its own PG key.
    pub attempt: u32,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentTables {
    /// Change rows through [`PaymentTables::apply`] or
    /// [`PaymentTables::insert`], which keep `calling` in step.
    pub payments: IdMap<OrderId, Payment>,
    /// The payments being charged or refunded, in order: what a recovery
    /// pass calls again, without reading every payment ever made (a pass
    /// runs every second, so a scan made long runs quadratic).
    calling: BTreeSet<OrderId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentWrite {
    Create {
        order: OrderId,
        row: Payment,
    },
    SetState {
        order: OrderId,
        state: PaymentState,
    },
    RequestCancel {
        order: OrderId,
    },
    /// "Pay again" after a decline: a declined payment charges once more,
    /// as attempt `attempt`.
    Retry {
        order: OrderId,
        attempt: u32,
    },
}

impl PaymentTables {
    /// Empty tables with room for payments of orders below `n`.
    pub fn with_capacity(n: usize) -> PaymentTables {
        PaymentTables { payments: IdMap::with_capacity(n), calling: BTreeSet::new() }
    }

    /// Put a row in (a write, or a row loaded from a real database).
    pub fn insert(&mut self, order: OrderId, row: Payment) {
        self.payments.insert(order, row);
        self.track(order, row.state);
    }

    fn track(&mut self, order: OrderId, state: PaymentState) {
        if call_of(state).is_some() {
            self.calling.insert(order);
        } else {
            self.calling.remove(&order);
        }
    }

    pub fn apply(&mut self, w: &PaymentWrite) {
        match *w {
            PaymentWrite::Create { order, row } => self.insert(order, row),
            PaymentWrite::SetState { order, state } => {
                let p = self.payments.get_mut(&order).expect("state is set on an existing payment");
                p.state = state;
                self.track(order, state);
            }
            PaymentWrite::Retry { order, attempt } => {
                let p = self.payments.get_mut(&order).expect("a retry is of an existing payment");
                (p.state, p.attempt) = (PaymentState::Charging, attempt);
                self.track(order, PaymentState::Charging);
            }
            PaymentWrite::RequestCancel { order } => {
                self.payments
                    .get_mut(&order)
                    .expect("a cancel is asked of an existing payment")
                    .cancel = true
            }
        }
    }
}

fn set(order: OrderId, state: PaymentState) -> Write {
    Write::Payment(PaymentWrite::SetState { order, state })
}

/// A PG call to start once the transaction that asked for it has committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PgCall {
    pub order: OrderId,
    pub op: PgOp,
}

/// Consume an event. Returns the PG call to start after the commit, if any.
pub fn on_event(t: &PaymentTables, ev: &Event, tx: &mut impl Tx) -> Option<PgCall> {
    let state = t.payments.get(&ev.order()).map(|p| p.state);
    match *ev {
        Event::OrderCreated { order, user, card, points } if state.is_none() => {
            let row = Payment {
                user,
                card,
                points,
                state: PaymentState::Charging,
                cancel: false,
                attempt: 0,
            };
            tx.write(Write::Payment(PaymentWrite::Create { order, row }));
            if card == 0 {
                tx.write(set(order, PaymentState::Charged));
                tx.publish(Event::PaymentCreated { order, user, points });
                return None;
            }
            Some(PgCall { order, op: PgOp::Charge })
        }
        Event::BalanceDeducted { order, .. } if state == Some(PaymentState::Charged) => {
            tx.write(set(order, PaymentState::Completed));
            None
        }
        Event::BalanceFailed { order, .. } if state == Some(PaymentState::Charged) => {
            let p = t.payments[&order];
            tx.write(set(order, PaymentState::Refunding));
            if p.card == 0 {
                tx.write(set(order, PaymentState::Refunded));
                tx.publish(Event::PaymentCancelled { order });
                return None;
            }
            Some(PgCall { order, op: PgOp::Refund })
        }
        _ => None,
    }
}

/// How Payment tells the saga what became of a payment: by publishing
/// events (choreography), or by answering the orchestrator's command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Events,
    Replies,
}

/// The PG's answer to a call for `order`.
pub fn on_reply(
    t: &PaymentTables,
    order: OrderId,
    key: Option<PgKey>,
    result: PgResult,
    mode: Mode,
    tx: &mut impl Tx,
) -> Outcome {
    let Some(p) = t.payments.get(&order) else { return Outcome::Ignored };
    if key.is_some_and(|k| k != PgKey::attempt(order, p.attempt)) {
        // About an earlier charge attempt, which was declined.
        return Outcome::Ignored;
    }
    let events = mode == Mode::Events;
    match (p.state, result) {
        (PaymentState::Charging, PgResult::Approved) if p.cancel => {
            // Cancelled while the charge was in flight: refund what went through.
            tx.write(set(order, PaymentState::Charged));
            tx.write(set(order, PaymentState::Refunding));
            Outcome::Retry(PgOp::Refund)
        }
        (PaymentState::Charging, PgResult::Approved) => {
            tx.write(set(order, PaymentState::Charged));
            if events {
                tx.publish(Event::PaymentCreated { order, user: p.user, points: p.points });
            }
            Outcome::Settled(Some((CmdKind::Pay, CmdResult::Paid)))
        }
        (PaymentState::Charging, PgResult::Declined) => {
            tx.write(set(order, PaymentState::Declined));
            if events {
                tx.publish(Event::PaymentFailed { order });
            }
            let reply = if p.cancel {
                (CmdKind::Refund, CmdResult::Ok)
            } else {
                (CmdKind::Pay, CmdResult::Declined { attempt: p.attempt })
            };
            Outcome::Settled(Some(reply))
        }
        // The PG never saw the charge: it can be sent again safely.
        (PaymentState::Charging, PgResult::Unknown) => Outcome::Retry(PgOp::Charge),
        // Still being processed at the gateway: the call's timer asks again.
        (_, PgResult::InProgress) => Outcome::Ignored,
        // Nothing was refunded: ask again, with the same key.
        (PaymentState::Refunding, PgResult::RefundFailed) => Outcome::Retry(PgOp::Refund),
        (PaymentState::Refunding, PgResult::Refunded | PgResult::Unknown) => {
            tx.write(set(order, PaymentState::Refunded));
            if events {
                tx.publish(Event::PaymentCancelled { order });
            }
            Outcome::Settled(Some((CmdKind::Refund, CmdResult::Ok)))
        }
        _ => Outcome::Ignored,
    }
}

/// A call timed out: what to do about it. `key_kept` says whether the
/// gateway still keeps the charge's key, so that sending the charge again
/// under it cannot charge twice; if it may have forgotten it, Payment asks
/// what became of the charge first.
pub fn on_timeout(
    t: &PaymentTables,
    order: OrderId,
    op: PgOp,
    (safety, key_kept): (&Safety, bool),
    mode: Mode,
    tx: &mut impl Tx,
) -> Outcome {
    let Some(p) = t.payments.get(&order) else { return Outcome::Ignored };
    match (p.state, op) {
        (PaymentState::Charging, PgOp::Charge | PgOp::Status) if !safety.pg_resolve_timeouts => {
            // The planted bug: silence taken for a decline.
            on_reply(t, order, None, PgResult::Declined, mode, tx)
        }
        (PaymentState::Charging, _) => Outcome::Retry(resend(PgOp::Charge, key_kept)),
        (PaymentState::Refunding, _) => Outcome::Retry(PgOp::Refund),
        _ => Outcome::Ignored,
    }
}

/// Take a step the orchestrator asks for. Returns the answer, unless it
/// waits for the PG, and the PG call to start after the commit, if any.
pub fn on_command(
    t: &PaymentTables,
    order: OrderId,
    cmd: &Command,
    safety: &Safety,
    tx: &mut impl Tx,
) -> (Option<CmdResult>, Option<PgCall>) {
    let state = t.payments.get(&order).map(|p| p.state);
    let row = |user, card, points, state| Payment {
        user,
        card,
        points,
        state,
        cancel: false,
        attempt: 0,
    };
    let create = |r| Write::Payment(PaymentWrite::Create { order, row: r });
    match (*cmd, state) {
        (Command::Pay { user, card, points, .. }, None) => {
            tx.write(create(row(user, card, points, PaymentState::Charging)));
            if card == 0 {
                tx.write(set(order, PaymentState::Charged));
                return (Some(CmdResult::Paid), None);
            }
            (None, Some(PgCall { order, op: PgOp::Charge }))
        }
        (Command::Pay { .. }, Some(PaymentState::Charged | PaymentState::Completed)) => {
            (Some(CmdResult::Paid), None)
        }
        (Command::Pay { .. }, Some(PaymentState::Charging)) => (None, None),
        // "Pay again": a declined payment charges once more, under a new key.
        (Command::Pay { attempt, .. }, Some(PaymentState::Declined))
            if attempt > t.payments[&order].attempt && !t.payments[&order].cancel =>
        {
            tx.write(Write::Payment(PaymentWrite::Retry { order, attempt }));
            (None, Some(PgCall { order, op: PgOp::Charge }))
        }
        (Command::Pay { .. }, Some(_)) => {
            (Some(CmdResult::Declined { attempt: t.payments[&order].attempt }), None)
        }
        // Refunded before the charge was ever asked for: the late charge
        // will find the payment void.
        (Command::Refund, None) => {
            tx.write(create(row(UserId(0), 0, 0, PaymentState::Declined)));
            (Some(CmdResult::Ok), None)
        }
        (Command::Refund, Some(PaymentState::Charging)) if safety.semantic_lock => {
            tx.write(Write::Payment(PaymentWrite::RequestCancel { order }));
            (None, None)
        }
        (Command::Refund, Some(PaymentState::Charging)) => {
            // The planted bug: "nothing charged yet", so voided at once.
            tx.write(set(order, PaymentState::Declined));
            (Some(CmdResult::Ok), None)
        }
        (Command::Refund, Some(PaymentState::Charged | PaymentState::Completed)) => {
            tx.write(set(order, PaymentState::Refunding));
            (None, Some(PgCall { order, op: PgOp::Refund }))
        }
        (Command::Refund, Some(PaymentState::Refunding)) => (None, None),
        // Void the payment for good: a "pay again" still in the network
        // must not charge an order that was compensated.
        (Command::Refund, Some(PaymentState::Declined)) if !t.payments[&order].cancel => {
            tx.write(Write::Payment(PaymentWrite::RequestCancel { order }));
            (Some(CmdResult::Ok), None)
        }
        (Command::Refund, Some(_)) => (Some(CmdResult::Ok), None),
        (Command::Complete, Some(PaymentState::Charged)) => {
            tx.write(set(order, PaymentState::Completed));
            (Some(CmdResult::Ok), None)
        }
        (Command::Complete, _) => (Some(CmdResult::Ok), None),
        (other, _) => panic!("payment cannot {other:?}"),
    }
}

/// What a reply or a timeout came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The payment moved on; no call is in flight for it any more. Under
    /// the orchestration, the answer to send to the orchestrator.
    Settled(Option<(CmdKind, CmdResult)>),
    /// Call again.
    Retry(PgOp),
    /// Nothing to do (a late or duplicate answer).
    Ignored,
}

/// The operation that takes up a call again whose outcome is unknown: a
/// charge goes again under its key only while the gateway keeps the key;
/// otherwise a status query comes first, and its "never seen" answer
/// charges (see [`on_reply`]).
pub fn resend(op: PgOp, key_kept: bool) -> PgOp {
    match op {
        PgOp::Charge if !key_kept => PgOp::Status,
        op => op,
    }
}

/// The calls to make again after a restart: payments caught mid-charge or
/// mid-refund.
pub fn recover(t: &PaymentTables) -> Vec<PgCall> {
    let call = |&order| call_of(t.payments[&order].state).map(|op| PgCall { order, op });
    t.calling.iter().filter_map(call).collect()
}

/// The PG call a payment in `state` is making, if any.
fn call_of(state: PaymentState) -> Option<PgOp> {
    match state {
        PaymentState::Charging => Some(PgOp::Charge),
        PaymentState::Refunding => Some(PgOp::Refund),
        _ => None,
    }
}

/// The message for a call, the `call_attempt`-th of its kind. A retried
/// charge carries its key unless a planted bug strips it or varies it.
pub fn request(
    t: &PaymentTables,
    call: PgCall,
    retry: bool,
    (call_attempt, now_us, deadline_us): (u32, u64, u64),
    safety: &Safety,
) -> Msg {
    let mut key = PgKey::attempt(call.order, t.payments[&call.order].attempt);
    if !safety.pg_key_per_payment {
        // The planted bug: every call of one charge gets a key of its own.
        key.0 |= (call_attempt as u64 & 0xff) << 56;
    }
    match call.op {
        PgOp::Charge => {
            let amount = t.payments[&call.order].card;
            let key = (!retry || safety.pg_retry_with_key).then_some(key);
            Msg::Charge { key, order: call.order, amount, deadline_us }
        }
        PgOp::Refund => Msg::Refund { key, order: call.order },
        PgOp::Status => Msg::Status { key, order: call.order, asked_us: now_us },
    }
}

/// Payment's volatile record of its PG calls in flight: the attempt number
/// of each, so that a timer for an older attempt is recognised as stale,
/// and when calls were sent, so that a late answer and a forgotten key are
/// recognised too.
#[derive(Clone, Debug, Default)]
pub struct Calls {
    inflight: BTreeMap<OrderId, Flight>,
    /// Each call's attempt as the last recovery pass saw it.
    seen_at_sweep: BTreeMap<OrderId, u32>,
}

#[derive(Clone, Copy, Debug)]
struct Flight {
    attempt: u32,
    /// When the latest call was sent.
    last_sent_us: u64,
    /// When this incarnation sent the first call of the charge attempt: the
    /// gateway took its key no earlier. Unknown after a restart.
    first_sent_us: Option<u64>,
}

impl Calls {
    /// Start (or restart) a call at `now_us`; returns the timer tag for its
    /// timeout. `first` marks the first call of a charge attempt.
    pub fn start(&mut self, call: PgCall, now_us: u64, first: bool) -> u64 {
        let f = self.inflight.entry(call.order).or_insert(Flight {
            attempt: u32::MAX,
            last_sent_us: now_us,
            first_sent_us: None,
        });
        f.attempt = f.attempt.wrapping_add(1);
        f.last_sent_us = now_us;
        if first {
            f.first_sent_us = Some(now_us);
        }
        let attempt = f.attempt;
        (call.op as u64) << 60 | (attempt as u64 & 0x0fff_ffff) << 32 | call.order.0 as u64
    }

    /// Whether a call for `order` that reaches the gateway by `arrives_us`
    /// finds the charge's key still kept, when the gateway keeps keys for
    /// `retention_us` (0: for ever). Unknown counts as forgotten.
    pub fn key_kept(&self, order: OrderId, arrives_us: u64, retention_us: u64) -> bool {
        retention_us == 0
            || self
                .inflight
                .get(&order)
                .and_then(|f| f.first_sent_us)
                .is_some_and(|at| arrives_us <= at + retention_us)
    }

    /// Whether a call asked at `asked_us` is the latest call for `order`.
    pub fn is_latest(&self, order: OrderId, asked_us: u64) -> bool {
        self.inflight.get(&order).is_some_and(|f| f.last_sent_us == asked_us)
    }

    /// The attempt number of the call in flight for `order` (0 if none).
    pub fn attempt(&self, order: OrderId) -> u32 {
        self.inflight.get(&order).map_or(0, |f| f.attempt)
    }

    pub fn is_retry(&self, order: OrderId) -> bool {
        self.inflight.contains_key(&order)
    }

    /// A timer fired: the call it belongs to, if that call is still the
    /// latest attempt in flight.
    pub fn timed_out(&self, tag: u64) -> Option<PgCall> {
        let order = OrderId(tag as u32);
        let attempt = ((tag >> 32) & 0x0fff_ffff) as u32;
        let op = match tag >> 60 {
            0 => PgOp::Charge,
            1 => PgOp::Refund,
            _ => PgOp::Status,
        };
        (self.attempt_in_flight(order) == Some(attempt)).then_some(PgCall { order, op })
    }

    fn attempt_in_flight(&self, order: OrderId) -> Option<u32> {
        self.inflight.get(&order).map(|f| f.attempt)
    }

    pub fn finish(&mut self, order: OrderId) {
        self.inflight.remove(&order);
        self.seen_at_sweep.remove(&order);
    }

    /// Of the calls the tables want made, those nothing is driving: not in
    /// flight, or in flight at the attempt the last recovery pass saw (a
    /// call in flight moves on within its timeout, which is shorter than the
    /// pass's period).
    pub fn stuck(&self, wanted: Vec<PgCall>) -> Vec<PgCall> {
        wanted
            .into_iter()
            .filter(|c| match self.attempt_in_flight(c.order) {
                None => true,
                Some(a) => self.seen_at_sweep.get(&c.order) == Some(&a),
            })
            .collect()
    }

    /// Remember each call's attempt, for the next recovery pass.
    pub fn mark_swept(&mut self) {
        self.seen_at_sweep = self.inflight.iter().map(|(&o, f)| (o, f.attempt)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STATES: [PaymentState; 6] = [
        PaymentState::Charging,
        PaymentState::Charged,
        PaymentState::Completed,
        PaymentState::Declined,
        PaymentState::Refunding,
        PaymentState::Refunded,
    ];

    proptest! {
        /// The index of payments being charged or refunded follows every
        /// write: recovery finds exactly the calls a scan of every payment
        /// finds, in order.
        #[test]
        fn recovery_finds_what_a_scan_of_every_payment_finds(
            writes in proptest::collection::vec((0u32..40, 0u8..4, 0usize..6), 0..200)
        ) {
            let mut t = PaymentTables::default();
            for (o, kind, s) in writes {
                let order = OrderId(o);
                let exists = t.payments.get(&order).is_some();
                let w = match kind {
                    0 if !exists => {
                        let state = STATES[s];
                        let row = Payment { user: UserId(0), card: 1, points: 0, state, cancel: false, attempt: 0 };
                        PaymentWrite::Create { order, row }
                    }
                    1 if exists => PaymentWrite::SetState { order, state: STATES[s] },
                    2 if exists => PaymentWrite::Retry { order, attempt: s as u32 },
                    3 if exists => PaymentWrite::RequestCancel { order },
                    _ => continue,
                };
                t.apply(&w);
            }
            let scan: Vec<PgCall> = t
                .payments
                .iter()
                .filter_map(|(&order, p)| call_of(p.state).map(|op| PgCall { order, op }))
                .collect();
            prop_assert_eq!(recover(&t), scan);
        }
    }

    #[test]
    fn the_recovery_pass_takes_up_calls_not_in_flight_or_not_moved_since_it_last_looked() {
        let call = |o: u32| PgCall { order: OrderId(o), op: PgOp::Charge };
        let mut calls = Calls::default();
        calls.start(call(1), 0, true);
        calls.start(call(2), 0, true);
        // Order 3's call is wanted but was never started (its commit
        // reported a failure): stuck at once.
        assert_eq!(calls.stuck(vec![call(1), call(2), call(3)]), [call(3)]);
        calls.mark_swept();
        // Order 1's call moved on (a retry), order 2's did not.
        calls.start(call(1), 0, true);
        assert_eq!(calls.stuck(vec![call(1), call(2)]), [call(2)]);
        // A call finished and started afresh is not taken for the old one.
        calls.finish(OrderId(2));
        calls.start(call(2), 0, true);
        assert_eq!(calls.stuck(vec![call(1), call(2)]), []);
    }

    #[test]
    fn a_key_is_trusted_only_within_the_retention_of_the_first_call_this_incarnation_sent() {
        let call = |op| PgCall { order: OrderId(4), op };
        let mut calls = Calls::default();
        assert!(!calls.key_kept(OrderId(4), 0, 100), "unknown counts as forgotten");
        assert!(calls.key_kept(OrderId(4), 0, 0), "kept for ever");
        calls.start(call(PgOp::Charge), 1_000, true);
        calls.start(call(PgOp::Charge), 1_050, false);
        assert!(calls.key_kept(OrderId(4), 1_100, 100));
        assert!(!calls.key_kept(OrderId(4), 1_101, 100), "timed from the first call");
        // A restart forgets when the first call went out.
        let mut after_restart = Calls::default();
        after_restart.start(call(PgOp::Status), 1_060, false);
        assert!(!after_restart.key_kept(OrderId(4), 1_061, 100));
    }

    #[test]
    fn only_the_latest_call_s_answer_counts_as_current() {
        let call = |op| PgCall { order: OrderId(2), op };
        let mut calls = Calls::default();
        calls.start(call(PgOp::Status), 10, false);
        assert!(calls.is_latest(OrderId(2), 10));
        calls.start(call(PgOp::Charge), 20, false);
        assert!(!calls.is_latest(OrderId(2), 10), "overtaken by a later call");
        calls.finish(OrderId(2));
        assert!(!calls.is_latest(OrderId(2), 20), "nothing in flight");
    }
}
