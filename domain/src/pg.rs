//! The external payment gateway (PG): a system outside our control that
//! charges cards, refunds charges and answers status queries. It honours an
//! idempotency key when one is sent: a second charge under a known key gets
//! the first answer and charges nothing.
//!
//! Its faults are part of its model: it may decline, stall, lose a request
//! before acting on it, act and then fail to answer (the caller times out
//! not knowing the card was charged), or fail a refund.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, PgKey};
use crate::message::{Msg, PgOp, PgResult};

/// One card charge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    pub order: OrderId,
    pub amount: u64,
    pub refunded: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PgTables {
    pub charges: Vec<Charge>,
    /// Key → the charge made under it, or `None` if it was declined.
    pub keys: BTreeMap<PgKey, Option<usize>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgWrite {
    /// A charge (`key` absent when the caller sent none).
    Charge {
        key: Option<PgKey>,
        order: OrderId,
        amount: u64,
    },
    Decline {
        key: Option<PgKey>,
        order: OrderId,
    },
    Refund {
        charge: u32,
        order: OrderId,
        amount: u64,
    },
}

impl PgTables {
    pub fn apply(&mut self, w: &PgWrite) {
        match *w {
            PgWrite::Charge { key, order, amount } => {
                self.charges.push(Charge { order, amount, refunded: false });
                if let Some(k) = key {
                    self.keys.insert(k, Some(self.charges.len() - 1));
                }
            }
            PgWrite::Decline { key, .. } => {
                if let Some(k) = key {
                    self.keys.insert(k, None);
                }
            }
            PgWrite::Refund { charge, .. } => self.charges[charge as usize].refunded = true,
        }
    }
}

/// The PG's fault rates, in parts per million.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PgFaults {
    pub decline_ppm: u32,
    /// The request is lost before the PG acts on it.
    pub timeout_before_ppm: u32,
    /// The PG acts, and its answer is lost.
    pub timeout_after_ppm: u32,
    /// The answer comes late, by up to `slow_max_us`.
    pub slow_ppm: u32,
    pub slow_max_us: u64,
    /// A refund fails at the gateway (a processor error): nothing is
    /// refunded, and the caller is told so.
    pub refund_fail_ppm: u32,
    /// A new charge takes up to this long to settle (uniform); a request
    /// under its key meanwhile is answered "in progress".
    pub processing_max_us: u64,
    /// An accepted refund stays pending at the gateway for up to this long
    /// (uniform) before it settles: its answer waits that long, and a
    /// request under its key meanwhile is answered "in progress".
    pub refund_pending_max_us: u64,
}

/// What the PG needs from its host: a way to decide (and record) its own
/// faults, and a little randomness for how slow it is.
pub trait PgPort {
    fn fault(&mut self, what: &str, ppm: u32) -> bool;
    fn random_us(&mut self, max_us: u64) -> u64;
    /// The PG's clock, for its processing window.
    fn now_us(&self) -> u64;
}

/// What the PG does with a request: the writes to commit, and the reply to
/// send after a delay, if it replies at all.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PgAction {
    pub writes: Vec<PgWrite>,
    pub reply: Option<(Msg, u64)>,
}

/// A request read against the PG's tables, before the PG decides its own
/// faults: either its answer is already known (a key seen before, a refund,
/// a status query) or it is a new charge.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    order: OrderId,
    key: Option<PgKey>,
    op: PgOp,
    writes: Vec<PgWrite>,
    result: PgResult,
    /// A new charge, to approve or decline: its key and amount.
    new_charge: Option<(Option<PgKey>, u64)>,
}

impl Prepared {
    /// The key of a charge the PG has not seen before.
    pub fn new_charge_key(&self) -> Option<PgKey> {
        self.new_charge.and_then(|(k, _)| k)
    }
}

/// The key and the operation of a request, for an "in progress" answer.
pub fn key_of(msg: &Msg) -> Option<(OrderId, PgKey, PgOp)> {
    match *msg {
        Msg::Charge { key, order, .. } => key.map(|k| (order, k, PgOp::Charge)),
        Msg::Refund { key, order } => Some((order, key, PgOp::Refund)),
        Msg::Status { key, order } => Some((order, key, PgOp::Status)),
        _ => None,
    }
}

/// Read a request against the tables.
pub fn prepare(t: &PgTables, msg: &Msg) -> Prepared {
    let p = |order, key, op, result| Prepared {
        order,
        key,
        op,
        writes: Vec::new(),
        result,
        new_charge: None,
    };
    match *msg {
        Msg::Charge { key, order, amount } => match key.and_then(|k| t.keys.get(&k)) {
            Some(Some(_)) => p(order, key, PgOp::Charge, PgResult::Approved),
            Some(None) => p(order, key, PgOp::Charge, PgResult::Declined),
            None => Prepared {
                new_charge: Some((key, amount)),
                ..p(order, key, PgOp::Charge, PgResult::Approved)
            },
        },
        Msg::Refund { key, order } => match t.keys.get(&key) {
            Some(Some(i)) => {
                let c = t.charges[*i];
                let mut r = p(order, Some(key), PgOp::Refund, PgResult::Refunded);
                if !c.refunded {
                    r.writes.push(PgWrite::Refund { charge: *i as u32, order, amount: c.amount });
                }
                r
            }
            _ => p(order, Some(key), PgOp::Refund, PgResult::Unknown),
        },
        Msg::Status { key, order } => {
            let result = match t.keys.get(&key) {
                Some(Some(i)) if t.charges[*i].refunded => PgResult::Refunded,
                Some(Some(_)) => PgResult::Approved,
                Some(None) => PgResult::Declined,
                None => PgResult::Unknown,
            };
            p(order, Some(key), PgOp::Status, result)
        }
        ref other => panic!("the payment gateway does not understand {other:?}"),
    }
}

/// Decide the PG's faults and finish handling: the writes to commit and the
/// reply to send after a delay, if it replies at all. A request lost before
/// the PG acts has no effect.
pub fn finish(p: Prepared, faults: &PgFaults, port: &mut impl PgPort) -> PgAction {
    if port.fault("pg-timeout-before", faults.timeout_before_ppm) {
        return PgAction::default();
    }
    let Prepared { order, key: asked, op, mut writes, mut result, new_charge } = p;
    if op == PgOp::Refund
        && !writes.is_empty()
        && port.fault("pg-refund-fail", faults.refund_fail_ppm)
    {
        writes.clear();
        result = PgResult::RefundFailed;
    }
    if let Some((key, amount)) = new_charge {
        if port.fault("pg-decline", faults.decline_ppm) {
            writes.push(PgWrite::Decline { key, order });
            result = PgResult::Declined;
        } else {
            writes.push(PgWrite::Charge { key, order, amount });
        }
    }
    if port.fault("pg-timeout-after", faults.timeout_after_ppm) {
        return PgAction { writes, reply: None };
    }
    let delay =
        if port.fault("pg-slow", faults.slow_ppm) { port.random_us(faults.slow_max_us) } else { 0 };
    PgAction { writes, reply: Some((Msg::PgReply { order, key: asked, op, result }, delay)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fault the PG is asked about strikes.
    struct Always;

    impl PgPort for Always {
        fn fault(&mut self, what: &str, _: u32) -> bool {
            what == "pg-refund-fail"
        }
        fn random_us(&mut self, _: u64) -> u64 {
            0
        }
        fn now_us(&self) -> u64 {
            0
        }
    }

    #[test]
    fn a_failed_refund_refunds_nothing_and_says_so() {
        let (order, key) = (OrderId(3), PgKey::of(OrderId(3)));
        let mut t = PgTables::default();
        t.apply(&PgWrite::Charge { key: Some(key), order, amount: 40 });
        let faults = PgFaults { refund_fail_ppm: 1_000_000, ..PgFaults::default() };
        let act = finish(prepare(&t, &Msg::Refund { key, order }), &faults, &mut Always);
        assert!(act.writes.is_empty(), "{:?}", act.writes);
        let reply = Msg::PgReply {
            order,
            key: Some(key),
            op: PgOp::Refund,
            result: PgResult::RefundFailed,
        };
        assert_eq!(act.reply, Some((reply, 0)));
    }
}
