//! The external payment gateway (PG): a system outside our control that
//! charges cards, refunds charges and answers status queries. It honours an
//! idempotency key when one is sent: a second charge under a known key gets
//! the first answer and charges nothing.
//!
//! Its faults are part of its model: it may decline, stall, lose a request
//! before acting on it, act and then fail to answer (the caller times out
//! not knowing the card was charged), or fail a refund.
//!
//! Like a real gateway it keeps an idempotency key only for a while
//! (`key_retention_us`; 0 keeps them for ever). Past that, a charge under
//! the key is a new charge. The charge a key named stays findable by that
//! key for status queries and refunds: what expires is the deduplication,
//! not the payment's record.

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
    /// Key → the charge made under it (`None` if it was declined), and when
    /// the gateway took the request.
    pub keys: BTreeMap<PgKey, (Option<usize>, u64)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PgWrite {
    /// A charge (`key` absent when the caller sent none).
    Charge {
        key: Option<PgKey>,
        order: OrderId,
        amount: u64,
        at_us: u64,
    },
    Decline {
        key: Option<PgKey>,
        order: OrderId,
        at_us: u64,
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
            PgWrite::Charge { key, order, amount, at_us } => {
                self.charges.push(Charge { order, amount, refunded: false });
                if let Some(k) = key {
                    self.keys.insert(k, (Some(self.charges.len() - 1), at_us));
                }
            }
            PgWrite::Decline { key, at_us, .. } => {
                if let Some(k) = key {
                    self.keys.insert(k, (None, at_us));
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
    /// How long the gateway keeps an idempotency key for deduplication
    /// (0: for ever). A charge under an older key charges again.
    pub key_retention_us: u64,
}

impl PgFaults {
    /// Whether a key the gateway took at `at_us` still deduplicates a charge
    /// at `now_us`.
    pub fn key_kept(&self, at_us: u64, now_us: u64) -> bool {
        self.key_retention_us == 0 || now_us.saturating_sub(at_us) <= self.key_retention_us
    }
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
    /// When a status query was asked, echoed in its answer.
    asked_us: u64,
    writes: Vec<PgWrite>,
    result: PgResult,
    /// A new charge, to approve or decline: its key and amount.
    new_charge: Option<(Option<PgKey>, u64)>,
    /// The charge came under a key the gateway no longer keeps.
    pub key_expired: bool,
    /// The request came after its caller's deadline: nothing is done and
    /// nothing answered.
    pub past_deadline: bool,
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
        Msg::Status { key, order, .. } => Some((order, key, PgOp::Status)),
        _ => None,
    }
}

/// The answer to `msg`, which echoes what the request asks to be echoed.
pub fn reply(msg: &Msg, key: Option<PgKey>, op: PgOp, result: PgResult) -> Msg {
    let (order, asked_us) = match *msg {
        Msg::Status { order, asked_us, .. } => (order, asked_us),
        Msg::Charge { order, .. } | Msg::Refund { order, .. } => (order, 0),
        ref other => panic!("the payment gateway does not answer {other:?}"),
    };
    Msg::PgReply { order, key, op, result, asked_us }
}

/// Read a request against the tables at `now_us`.
pub fn prepare(t: &PgTables, msg: &Msg, faults: &PgFaults, now_us: u64) -> Prepared {
    let asked_us = match *msg {
        Msg::Status { asked_us, .. } => asked_us,
        _ => 0,
    };
    let p = |order, key, op, result| Prepared {
        order,
        key,
        op,
        asked_us,
        writes: Vec::new(),
        result,
        new_charge: None,
        key_expired: false,
        past_deadline: false,
    };
    match *msg {
        Msg::Charge { key, order, deadline_us, .. } if now_us > deadline_us => {
            Prepared { past_deadline: true, ..p(order, key, PgOp::Charge, PgResult::Unknown) }
        }
        Msg::Charge { key, order, amount, .. } => match key.and_then(|k| t.keys.get(&k)) {
            Some(&(Some(_), at)) if faults.key_kept(at, now_us) => {
                p(order, key, PgOp::Charge, PgResult::Approved)
            }
            Some(&(None, at)) if faults.key_kept(at, now_us) => {
                p(order, key, PgOp::Charge, PgResult::Declined)
            }
            seen => Prepared {
                new_charge: Some((key, amount)),
                key_expired: seen.is_some(),
                ..p(order, key, PgOp::Charge, PgResult::Approved)
            },
        },
        Msg::Refund { key, order } => match t.keys.get(&key).map(|k| k.0) {
            Some(Some(i)) => {
                let c = t.charges[i];
                let mut r = p(order, Some(key), PgOp::Refund, PgResult::Refunded);
                if !c.refunded {
                    r.writes.push(PgWrite::Refund { charge: i as u32, order, amount: c.amount });
                }
                r
            }
            _ => p(order, Some(key), PgOp::Refund, PgResult::Unknown),
        },
        Msg::Status { key, order, .. } => {
            let result = match t.keys.get(&key).map(|k| k.0) {
                Some(Some(i)) if t.charges[i].refunded => PgResult::Refunded,
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
    if p.past_deadline || port.fault("pg-timeout-before", faults.timeout_before_ppm) {
        return PgAction::default();
    }
    let Prepared { order, key: asked, op, asked_us, mut writes, mut result, new_charge, .. } = p;
    let at_us = port.now_us();
    if op == PgOp::Refund
        && !writes.is_empty()
        && port.fault("pg-refund-fail", faults.refund_fail_ppm)
    {
        writes.clear();
        result = PgResult::RefundFailed;
    }
    if let Some((key, amount)) = new_charge {
        if port.fault("pg-decline", faults.decline_ppm) {
            writes.push(PgWrite::Decline { key, order, at_us });
            result = PgResult::Declined;
        } else {
            writes.push(PgWrite::Charge { key, order, amount, at_us });
        }
    }
    if port.fault("pg-timeout-after", faults.timeout_after_ppm) {
        return PgAction { writes, reply: None };
    }
    let delay =
        if port.fault("pg-slow", faults.slow_ppm) { port.random_us(faults.slow_max_us) } else { 0 };
    let reply = Msg::PgReply { order, key: asked, op, result, asked_us };
    PgAction { writes, reply: Some((reply, delay)) }
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
        t.apply(&PgWrite::Charge { key: Some(key), order, amount: 40, at_us: 0 });
        let faults = PgFaults { refund_fail_ppm: 1_000_000, ..PgFaults::default() };
        let act =
            finish(prepare(&t, &Msg::Refund { key, order }, &faults, 0), &faults, &mut Always);
        assert!(act.writes.is_empty(), "{:?}", act.writes);
        let reply = Msg::PgReply {
            order,
            key: Some(key),
            op: PgOp::Refund,
            result: PgResult::RefundFailed,
            asked_us: 0,
        };
        assert_eq!(act.reply, Some((reply, 0)));
    }

    /// Faults off, and a clock the test sets.
    struct At(u64);

    impl PgPort for At {
        fn fault(&mut self, _: &str, _: u32) -> bool {
            false
        }
        fn random_us(&mut self, _: u64) -> u64 {
            0
        }
        fn now_us(&self) -> u64 {
            self.0
        }
    }

    /// A resend that waited in the gateway's line until after its caller
    /// gave up (and after the key's retention) charges nothing and answers
    /// nothing; in time, it is a charge like any other.
    #[test]
    fn a_charge_past_its_callers_deadline_is_dropped() {
        let (order, key) = (OrderId(5), PgKey::of(OrderId(5)));
        let faults = PgFaults { key_retention_us: 100, ..PgFaults::default() };
        let mut t = PgTables::default();
        let first = Msg::Charge { key: Some(key), order, amount: 70, deadline_us: 50 };
        finish(prepare(&t, &first, &faults, 10), &faults, &mut At(10))
            .writes
            .iter()
            .for_each(|w| t.apply(w));
        let late = Msg::Charge { key: Some(key), order, amount: 70, deadline_us: 150 };
        let p = prepare(&t, &late, &faults, 151);
        assert!(p.past_deadline);
        let act = finish(p, &faults, &mut At(151));
        assert!(act.writes.is_empty() && act.reply.is_none(), "{act:?}");
        assert_eq!(t.charges.len(), 1);
        let in_time = prepare(&t, &late, &faults, 150);
        assert!(!in_time.past_deadline && in_time.key_expired);
    }

    #[test]
    fn a_key_past_its_retention_charges_again_but_still_names_its_charge() {
        let (order, key) = (OrderId(5), PgKey::of(OrderId(5)));
        let faults = PgFaults { key_retention_us: 100, ..PgFaults::default() };
        let mut t = PgTables::default();
        let charge = Msg::Charge { key: Some(key), order, amount: 70, deadline_us: u64::MAX };
        let first = finish(prepare(&t, &charge, &faults, 10), &faults, &mut At(10));
        first.writes.iter().for_each(|w| t.apply(w));
        assert_eq!(t.keys[&key], (Some(0), 10));
        // Within the retention: the first answer, nothing charged.
        let kept = prepare(&t, &charge, &faults, 110);
        assert!(!kept.key_expired && kept.new_charge_key().is_none());
        assert!(finish(kept, &faults, &mut At(110)).writes.is_empty());
        // Past it: a second charge, and the key now names it.
        let again = prepare(&t, &charge, &faults, 111);
        assert!(again.key_expired);
        finish(again, &faults, &mut At(111)).writes.iter().for_each(|w| t.apply(w));
        assert_eq!(t.charges.len(), 2);
        assert_eq!(t.keys[&key], (Some(1), 111));
        // A status query is answered from the record whatever the key's age.
        let status = prepare(&t, &Msg::Status { key, order, asked_us: 9 }, &faults, 10_000);
        assert_eq!(status.result, PgResult::Approved);
        // Kept for ever when the retention is 0.
        let forever = PgFaults::default();
        assert!(prepare(&t, &charge, &forever, u64::MAX).new_charge_key().is_none());
    }
}
