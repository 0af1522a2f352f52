//! The orchestrator of §2.4.2 and §2.5 ("SAGA compensating transactions"):
//! it sits behind the gateway, runs each step of an order's saga as a
//! command to one service over RPC, and keeps a durable saga log, so that
//! after a crash it resumes every unfinished saga where it stood.
//!
//! Forward: reserve stock → create the order (coupon) → charge the card →
//! deduct points → confirm → complete the payment → the side effects of §3.1
//! (data platform, sales). On a failure it compensates the steps already
//! taken, in reverse: refund the card → cancel the order (coupon back) →
//! release the stock, retrying each compensation until it succeeds. A step
//! that stays silent too long (reserve, pay) is given up and compensated too.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{self, EntryTables};
use crate::ids::{OrderId, RequestKey};
use crate::message::{CmdKind, CmdResult, Command, Refusal, Request, Response};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::{Service, Write};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Phase {
    Reserve,
    Create,
    Pay,
    Deduct,
    Confirm,
    Complete,
    Receive,
    RecordSale,
    /// Compensations, in the order they run.
    RefundCard,
    CancelOrder,
    ReleaseStock,
    /// Save a refused order that Order never saw.
    RecordRejected,
    /// §2.5 "compensation coupon": a failure the system caused earns the
    /// user a discount coupon.
    IssueCoupon,
    Done,
}

/// One saga in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Saga {
    pub req: Request,
    pub key: Option<RequestKey>,
    pub price: u64,
    pub points: u64,
    pub card: u64,
    /// Order has answered the create step (so it holds a row).
    pub saved: bool,
    /// The value of the coupon a system-caused failure earns (0: none).
    pub apology: u64,
    /// "Pay again" offers left after a decline, and the charge attempt.
    pub pay_again: u32,
    pub attempt: u32,
    pub phase: Phase,
    /// Why the order failed, once it has.
    pub why: Option<Refusal>,
}

impl Saga {
    /// Where a failed saga ends: with an apology coupon if the system caused
    /// the failure (stock-out, a step that never answered) and the strategy
    /// offers one.
    fn end(&self) -> Phase {
        let system = matches!(self.why, Some(Refusal::OutOfStock | Refusal::Unavailable));
        if system && self.apology > 0 {
            Phase::IssueCoupon
        } else {
            Phase::Done
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SagaTables {
    pub sagas: BTreeMap<OrderId, Saga>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SagaWrite {
    Put { order: OrderId, saga: Saga },
}

impl SagaTables {
    pub fn apply(&mut self, w: &SagaWrite) {
        let SagaWrite::Put { order, saga } = *w;
        self.sagas.insert(order, saga);
    }

    /// Sagas to resume after a restart.
    pub fn unfinished(&self) -> Vec<OrderId> {
        self.sagas.iter().filter(|(_, s)| s.phase != Phase::Done).map(|(o, _)| *o).collect()
    }
}

/// What the orchestrator does next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Send this command to this service.
    Send(Service, Command),
    /// The saga is over: answer the client.
    Finish(Response),
    /// A stale or repeated answer: nothing to do.
    Ignore,
    /// Ask the same step again shortly (its rows are locked).
    Wait,
    /// Send this command once the user has read a decline and chosen to
    /// pay again (after the strategy's think time).
    PayAgain(Service, Command),
}

/// What a strategy built on the orchestrator adds to a saga.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// §2.5 compensation coupon: the coupon a system-caused failure earns
    /// (0: none).
    pub apology: u64,
    /// §2.5 UX retry: how many times a declined payment is offered again.
    pub pay_again: u32,
}

/// A request arrives from the gateway.
pub fn place(
    e: &EntryTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    policy: Policy,
    tx: &mut impl Tx,
) -> (OrderId, Next) {
    let order = match entry::open(e, key, req, safety, tx) {
        Ok(order) => order,
        Err((order, answer)) => return (order, Next::Finish(answer)),
    };
    let saga = Saga {
        req: *req,
        key,
        price: 0,
        points: 0,
        card: 0,
        saved: false,
        apology: policy.apology,
        pay_again: policy.pay_again,
        attempt: 0,
        phase: Phase::Reserve,
        why: None,
    };
    (order, put(order, saga, tx))
}

fn put(order: OrderId, saga: Saga, tx: &mut impl Tx) -> Next {
    tx.write(Write::Saga(SagaWrite::Put { order, saga }));
    match saga.phase {
        Phase::Done => Next::Finish(entry::close(order, saga.key, saga.why, tx)),
        _ => command(&saga),
    }
}

/// The command of the saga's current phase.
pub fn command(s: &Saga) -> Next {
    let Request { user, product, qty, .. } = s.req;
    let (svc, cmd) = match s.phase {
        Phase::Reserve => (Service::Product, Command::Reserve { product, qty }),
        Phase::Create => (Service::Order, Command::Create { req: s.req, price: s.price }),
        Phase::Pay => (Service::Payment, pay(s)),
        Phase::Deduct => (Service::User, Command::Deduct { user, points: s.points }),
        Phase::Confirm => (Service::Order, Command::Confirm),
        Phase::Complete => (Service::Payment, Command::Complete),
        Phase::Receive => (Service::Platform, Command::Receive { amount: s.points + s.card }),
        Phase::RecordSale => (Service::Product, Command::RecordSale { product, qty }),
        Phase::RefundCard => (Service::Payment, Command::Refund),
        Phase::CancelOrder => (Service::Order, Command::Cancel),
        Phase::ReleaseStock => (Service::Product, Command::Release { product, qty }),
        Phase::RecordRejected => (Service::Order, Command::RecordRejected { req: s.req }),
        Phase::IssueCoupon => {
            (Service::Order, Command::IssueCoupon { user: s.req.user, discount: s.apology })
        }
        Phase::Done => return Next::Ignore,
    };
    Next::Send(svc, cmd)
}

fn pay(s: &Saga) -> Command {
    Command::Pay { user: s.req.user, card: s.card, points: s.points, attempt: s.attempt }
}

fn kind(phase: Phase) -> Option<CmdKind> {
    Some(match phase {
        Phase::Reserve => CmdKind::Reserve,
        Phase::Create => CmdKind::Create,
        Phase::Pay => CmdKind::Pay,
        Phase::Deduct => CmdKind::Deduct,
        Phase::Confirm => CmdKind::Confirm,
        Phase::Complete => CmdKind::Complete,
        Phase::Receive => CmdKind::Receive,
        Phase::RecordSale => CmdKind::RecordSale,
        Phase::RefundCard => CmdKind::Refund,
        Phase::CancelOrder => CmdKind::Cancel,
        Phase::ReleaseStock => CmdKind::Release,
        Phase::RecordRejected => CmdKind::RecordRejected,
        Phase::IssueCoupon => CmdKind::IssueCoupon,
        Phase::Done => return None,
    })
}

/// The saga after its current step answered `result`.
fn advance(mut s: Saga, result: CmdResult) -> Saga {
    let fail = |mut s: Saga, why, phase| {
        s.why = Some(why);
        s.phase = phase;
        s
    };
    s.phase = match (s.phase, result) {
        (Phase::Reserve, CmdResult::Reserved { price }) => {
            s.price = price;
            Phase::Create
        }
        (Phase::Reserve, _) => return fail(s, Refusal::OutOfStock, Phase::RecordRejected),
        (Phase::Create, CmdResult::Created { points, card }) => {
            (s.points, s.card, s.saved) = (points, card, true);
            Phase::Pay
        }
        (Phase::Create, _) => {
            s.saved = true;
            return fail(s, Refusal::CouponUnusable, Phase::ReleaseStock);
        }
        (Phase::Pay, CmdResult::Paid) => Phase::Deduct,
        (Phase::Pay, _) => return fail(s, Refusal::CardDeclined, Phase::CancelOrder),
        (Phase::Deduct, CmdResult::Ok) => Phase::Confirm,
        (Phase::Deduct, _) => return fail(s, Refusal::PointsShort, Phase::RefundCard),
        (Phase::Confirm, _) => Phase::Complete,
        (Phase::Complete, _) => Phase::Receive,
        (Phase::Receive, _) => Phase::RecordSale,
        (Phase::RecordSale, _) => Phase::Done,
        (Phase::RefundCard, _) => Phase::CancelOrder,
        (Phase::CancelOrder, _) => Phase::ReleaseStock,
        (Phase::ReleaseStock, _) if s.saved => s.end(),
        (Phase::ReleaseStock, _) => Phase::RecordRejected,
        (Phase::RecordRejected, _) => s.end(),
        (Phase::IssueCoupon, _) => Phase::Done,
        (Phase::Done, _) => Phase::Done,
    };
    s
}

/// A service answered a command.
pub fn on_done(
    t: &SagaTables,
    order: OrderId,
    cmd: CmdKind,
    result: CmdResult,
    tx: &mut impl Tx,
) -> Next {
    let Some(&s) = t.sagas.get(&order) else { return Next::Ignore };
    if kind(s.phase) != Some(cmd) {
        return Next::Ignore;
    }
    if let (Phase::Pay, CmdResult::Declined { attempt }) = (s.phase, result) {
        if attempt < s.attempt {
            // About an attempt the user already paid again after.
            return Next::Ignore;
        }
    }
    if matches!((s.phase, result), (Phase::Pay, CmdResult::Declined { .. })) && s.pay_again > 0 {
        // §2.5 UX retry: the user is shown the decline and pays again; the
        // reservations stay held meanwhile.
        let s = Saga { pay_again: s.pay_again - 1, attempt: s.attempt + 1, ..s };
        tx.write(Write::Saga(SagaWrite::Put { order, saga: s }));
        return Next::PayAgain(Service::Payment, pay(&s));
    }
    put(order, advance(s, result), tx)
}

/// Whether the saga is compensating (or recording a refusal).
pub fn compensating(t: &SagaTables, order: OrderId) -> bool {
    t.sagas.get(&order).is_some_and(|s| {
        matches!(
            s.phase,
            Phase::RefundCard | Phase::CancelOrder | Phase::ReleaseStock | Phase::RecordRejected
        )
    })
}

/// Move past the current compensation without its answer: the synchronous
/// cancel of §2.5 calls each cancel once and returns whatever happened.
pub fn skip(t: &SagaTables, order: OrderId, tx: &mut impl Tx) -> Next {
    let Some(&s) = t.sagas.get(&order) else { return Next::Ignore };
    put(order, advance(s, CmdResult::Ok), tx)
}

/// Whether a silent step may be given up (and compensated) rather than
/// retried for ever: the steps whose effect can be undone.
pub fn may_give_up(t: &SagaTables, order: OrderId) -> bool {
    t.sagas.get(&order).is_some_and(|s| matches!(s.phase, Phase::Reserve | Phase::Pay))
}

/// Give up the current (silent) step: compensate as if it had failed,
/// including its own effect, which may have happened behind the silence.
pub fn give_up(t: &SagaTables, order: OrderId, tx: &mut impl Tx) -> Next {
    let Some(&s) = t.sagas.get(&order) else { return Next::Ignore };
    let phase = match s.phase {
        Phase::Reserve => Phase::ReleaseStock,
        Phase::Pay => Phase::RefundCard,
        _ => return Next::Ignore,
    };
    put(order, Saga { why: Some(Refusal::Unavailable), phase, ..s }, tx)
}
