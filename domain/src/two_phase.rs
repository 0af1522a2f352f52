//! Two-phase commit (§2.3 (3)): an XA-style coordinator prepares the
//! change at Product, Order and User — each validates, locks the rows it
//! touches and stages the change durably — then charges the card, logs its
//! decision, and has every participant commit (or abort) and release its
//! locks.
//!
//! The price of atomicity is in the locks: a prepared participant holds its
//! rows until the decision comes, across the card charge, so orders for a
//! hot product queue behind each other; and if the coordinator crashes
//! between the phases, the participants stay blocked, rows locked, until it
//! recovers and resends its decision.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{self, EntryTables};
use crate::ids::{CouponId, OrderId, ProductId, RequestKey, UserId};
use crate::message::{CmdKind, CmdResult, Command, Refusal, Request};
use crate::order::{self, Order, OrderWrite};
use crate::ports::Tx;
use crate::product::ProductWrite;
use crate::safety::Safety;
use crate::tables::{Service, Store, Tables, Write};
use crate::user::UserWrite;

/// A change a participant has prepared and holds locks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Intent {
    Stock { product: ProductId, qty: u32 },
    Order { row: Order },
    Points { user: UserId, points: u64 },
}

/// A row a prepared change holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Lock {
    Product(ProductId),
    Coupon(CouponId),
    User(UserId),
}

impl Intent {
    fn lock(&self) -> Option<Lock> {
        match *self {
            Intent::Stock { product, .. } => Some(Lock::Product(product)),
            Intent::Order { row } => row.coupon.map(Lock::Coupon),
            Intent::Points { user, .. } => Some(Lock::User(user)),
        }
    }
}

/// Whether another order's prepared change now holds the row `intent`
/// would lock: the lock taken at commit, which a handler that read before
/// another instance prepared must not take as well.
pub fn lock_taken(now: &Store, order: OrderId, intent: &Intent) -> bool {
    let Some(lock) = intent.lock() else { return false };
    now.prepared.iter().any(|(o, i)| *o != order && i.lock() == Some(lock))
}

/// Phase one at a participant: vote yes (with what the coordinator needs),
/// no, or "busy" while another prepared change holds the row.
pub fn prepare(s: &Store, order: OrderId, cmd: &Command, tx: &mut impl Tx) -> CmdResult {
    let intent = match (*cmd, &s.tables) {
        (Command::PrepareStock { product, qty }, Tables::Product(t)) => {
            if s.prepared.contains_key(&order) || t.reservations.contains_key(&order) {
                return CmdResult::Reserved { price: t.products[product.index()].price };
            }
            if t.products[product.index()].stock < qty as u64 {
                return CmdResult::OutOfStock;
            }
            Intent::Stock { product, qty }
        }
        (Command::PrepareOrder { req, price }, Tables::Order(t)) => {
            if let Some(Intent::Order { row }) = s.prepared.get(&order) {
                return CmdResult::Created { points: row.points, card: row.card };
            }
            if let Some(o) = t.orders.get(&order) {
                return CmdResult::Created { points: o.points, card: o.card };
            }
            match order::price(t, &req, price) {
                Some(row) => Intent::Order { row },
                None => return CmdResult::CouponUnusable,
            }
        }
        (Command::PreparePoints { user, points }, Tables::User(t)) => {
            if s.prepared.contains_key(&order) || t.decided.contains_key(&order) {
                return CmdResult::Ok;
            }
            if t.balances[user.index()] < points {
                return CmdResult::Short;
            }
            Intent::Points { user, points }
        }
        (cmd, _) => panic!("{:?} cannot {cmd:?}", s.service()),
    };
    let lock = intent.lock();
    if lock.is_some() && s.prepared.values().any(|i| i.lock() == lock) {
        return CmdResult::Busy;
    }
    tx.write(Write::Prepare { order, intent });
    match intent {
        Intent::Stock { product, .. } => match &s.tables {
            Tables::Product(t) => CmdResult::Reserved { price: t.products[product.index()].price },
            _ => unreachable!("stock is prepared at product"),
        },
        Intent::Order { row } => CmdResult::Created { points: row.points, card: row.card },
        Intent::Points { .. } => CmdResult::Ok,
    }
}

/// Phase two at a participant: apply the staged change (commit) or drop it
/// (abort), and release its locks. A repeated decision changes nothing.
pub fn decide(s: &Store, order: OrderId, commit: bool, tx: &mut impl Tx) -> CmdResult {
    let Some(&intent) = s.prepared.get(&order) else { return CmdResult::Ok };
    if commit {
        match intent {
            Intent::Stock { product, qty } => {
                tx.write(Write::Product(ProductWrite::Deduct { order, product, qty }))
            }
            Intent::Order { row } => {
                tx.write(Write::Order(OrderWrite::Create { order, row }));
                if let Some(coupon) = row.coupon {
                    tx.write(Write::Order(OrderWrite::UseCoupon { coupon, order }));
                }
            }
            Intent::Points { user, points } => {
                tx.write(Write::User(UserWrite::Deduct { user, order, amount: points }))
            }
        }
    }
    tx.write(Write::Resolve { order });
    CmdResult::Ok
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Step {
    PrepareStock,
    PrepareOrder,
    PreparePoints,
    Pay,
    /// The decision is commit from here on.
    CommitStock,
    CommitOrder,
    CommitPoints,
    /// Every participant has committed: the order is confirmed.
    ConfirmOrder,
    CompletePay,
    Receive,
    RecordSale,
    /// The decision is abort from here on.
    RefundCard,
    AbortStock,
    AbortOrder,
    AbortPoints,
    RecordRejected,
    Done,
}

/// One distributed transaction in the coordinator's log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Xa {
    pub req: Request,
    pub key: Option<RequestKey>,
    pub price: u64,
    pub points: u64,
    pub card: u64,
    pub step: Step,
    pub why: Option<Refusal>,
    /// "Busy" answers so far at the current step, for the trace: the
    /// wait itself is timed, from `busy_since_us`.
    pub busy: u32,
    /// When the first of them came: the lock wait is measured from here,
    /// in time, not in answers, because under contention each retry waits
    /// its turn at the coordinator far longer than the retry interval.
    pub busy_since_us: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XaTables {
    pub txs: BTreeMap<OrderId, Xa>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum XaWrite {
    Put { order: OrderId, xa: Xa },
}

impl XaTables {
    pub fn apply(&mut self, w: &XaWrite) {
        let XaWrite::Put { order, xa } = *w;
        self.txs.insert(order, xa);
    }

    pub fn unfinished(&self) -> Vec<OrderId> {
        self.txs.iter().filter(|(_, x)| x.step != Step::Done).map(|(o, _)| *o).collect()
    }
}

/// What the coordinator does next.
pub use crate::orchestrator::Next;

/// A request reached the coordinator.
pub fn place(
    e: &EntryTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> (OrderId, Next) {
    let order = match entry::open(e, key, req, safety, tx) {
        Ok(order) => order,
        Err((order, answer)) => return (order, Next::Finish(answer)),
    };
    let xa = Xa {
        req: *req,
        key,
        price: 0,
        points: 0,
        card: 0,
        step: Step::PrepareStock,
        why: None,
        busy: 0,
        busy_since_us: None,
    };
    (order, put(order, xa, tx))
}

fn put(order: OrderId, xa: Xa, tx: &mut impl Tx) -> Next {
    tx.write(Write::Xa(XaWrite::Put { order, xa }));
    match xa.step {
        Step::Done => Next::Finish(entry::close(order, xa.key, xa.why, tx)),
        _ => command(&xa),
    }
}

pub fn command(x: &Xa) -> Next {
    let Request { user, product, qty, .. } = x.req;
    let (svc, cmd) = match x.step {
        Step::PrepareStock => (Service::Product, Command::PrepareStock { product, qty }),
        Step::PrepareOrder => {
            (Service::Order, Command::PrepareOrder { req: x.req, price: x.price })
        }
        Step::PreparePoints => (Service::User, Command::PreparePoints { user, points: x.points }),
        Step::Pay => {
            (Service::Payment, Command::Pay { user, card: x.card, points: x.points, attempt: 0 })
        }
        Step::CommitStock => (Service::Product, Command::CommitTx),
        Step::CommitOrder => (Service::Order, Command::CommitTx),
        Step::CommitPoints => (Service::User, Command::CommitTx),
        Step::ConfirmOrder => (Service::Order, Command::Confirm),
        Step::CompletePay => (Service::Payment, Command::Complete),
        Step::Receive => (Service::Platform, Command::Receive { amount: x.points + x.card }),
        Step::RecordSale => (Service::Product, Command::RecordSale { product, qty }),
        Step::RefundCard => (Service::Payment, Command::Refund),
        Step::AbortStock => (Service::Product, Command::AbortTx),
        Step::AbortOrder => (Service::Order, Command::AbortTx),
        Step::AbortPoints => (Service::User, Command::AbortTx),
        Step::RecordRejected => (Service::Order, Command::RecordRejected { req: x.req }),
        Step::Done => return Next::Ignore,
    };
    Next::Send(svc, cmd)
}

fn kind(step: Step) -> Option<CmdKind> {
    Some(match step {
        Step::PrepareStock => CmdKind::PrepareStock,
        Step::PrepareOrder => CmdKind::PrepareOrder,
        Step::PreparePoints => CmdKind::PreparePoints,
        Step::Pay => CmdKind::Pay,
        Step::CommitStock | Step::CommitPoints | Step::CommitOrder => CmdKind::CommitTx,
        Step::ConfirmOrder => CmdKind::Confirm,
        Step::CompletePay => CmdKind::Complete,
        Step::Receive => CmdKind::Receive,
        Step::RecordSale => CmdKind::RecordSale,
        Step::RefundCard => CmdKind::Refund,
        Step::AbortStock | Step::AbortOrder | Step::AbortPoints => CmdKind::AbortTx,
        Step::RecordRejected => CmdKind::RecordRejected,
        Step::Done => return None,
    })
}

fn abort(mut x: Xa, why: Refusal, from: Step) -> Xa {
    x.why = Some(why);
    x.step = from;
    x
}

fn advance(mut x: Xa, result: CmdResult) -> Xa {
    x.busy = 0;
    x.busy_since_us = None;
    x.step = match (x.step, result) {
        (Step::PrepareStock, CmdResult::Reserved { price }) => {
            x.price = price;
            Step::PrepareOrder
        }
        (Step::PrepareStock, _) => return abort(x, Refusal::OutOfStock, Step::AbortStock),
        (Step::PrepareOrder, CmdResult::Created { points, card }) => {
            (x.points, x.card) = (points, card);
            Step::PreparePoints
        }
        (Step::PrepareOrder, _) => return abort(x, Refusal::CouponUnusable, Step::AbortStock),
        (Step::PreparePoints, CmdResult::Ok) => Step::Pay,
        (Step::PreparePoints, _) => return abort(x, Refusal::PointsShort, Step::AbortStock),
        (Step::Pay, CmdResult::Paid) => Step::CommitStock,
        (Step::Pay, _) => return abort(x, Refusal::CardDeclined, Step::AbortStock),
        (Step::CommitStock, _) => Step::CommitOrder,
        (Step::CommitOrder, _) => Step::CommitPoints,
        (Step::CommitPoints, _) => Step::ConfirmOrder,
        (Step::ConfirmOrder, _) => Step::CompletePay,
        (Step::CompletePay, _) => Step::Receive,
        (Step::Receive, _) => Step::RecordSale,
        (Step::RecordSale, _) => Step::Done,
        (Step::RefundCard, _) => Step::AbortStock,
        (Step::AbortStock, _) => Step::AbortOrder,
        (Step::AbortOrder, _) => Step::AbortPoints,
        (Step::AbortPoints, _) => Step::RecordRejected,
        (Step::RecordRejected, _) => Step::Done,
        (Step::Done, _) => Step::Done,
    };
    x
}

/// Participant `from` answered. Several steps send the same command to
/// different participants, so an answer counts only from the participant
/// the current step asked. A "busy" vote keeps the step (and counts the
/// wait); once the step has waited `lock_wait_max_us` since its first busy
/// vote (at `now_us`), the transaction gives up and aborts.
pub fn on_done(
    t: &XaTables,
    order: OrderId,
    from: Service,
    cmd: CmdKind,
    result: CmdResult,
    (now_us, lock_wait_max_us): (u64, u64),
    tx: &mut impl Tx,
) -> Next {
    let Some(&x) = t.txs.get(&order) else { return Next::Ignore };
    let asked = matches!(command(&x), Next::Send(svc, _) if svc == from);
    if kind(x.step) != Some(cmd) || !asked {
        return Next::Ignore;
    }
    if result == CmdResult::Busy {
        let since = x.busy_since_us.unwrap_or(now_us);
        if now_us - since >= lock_wait_max_us {
            return put(order, abort(x, Refusal::Unavailable, Step::AbortStock), tx);
        }
        put(order, Xa { busy: x.busy + 1, busy_since_us: Some(since), ..x }, tx);
        return Next::Wait;
    }
    put(order, advance(x, result), tx)
}

/// The card charge stayed silent too long: abort, refunding whatever went
/// through behind the silence.
pub fn give_up(t: &XaTables, order: OrderId, tx: &mut impl Tx) -> Next {
    match t.txs.get(&order) {
        Some(&x) if x.step == Step::Pay => {
            put(order, abort(x, Refusal::Unavailable, Step::RefundCard), tx)
        }
        _ => Next::Ignore,
    }
}

pub fn may_give_up(t: &XaTables, order: OrderId) -> bool {
    t.txs.get(&order).is_some_and(|x| x.step == Step::Pay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::TxBuf;

    fn waiting_on_stock(busy: u32, busy_since_us: Option<u64>) -> XaTables {
        let req =
            Request { user: UserId(1), product: ProductId(2), qty: 1, coupon: None, points: 0 };
        let x = Xa {
            req,
            key: None,
            price: 0,
            points: 0,
            card: 0,
            step: Step::PrepareStock,
            why: None,
            busy,
            busy_since_us,
        };
        XaTables { txs: BTreeMap::from([(OrderId(7), x)]) }
    }

    /// The step the busy answer leaves the transaction at.
    fn busy_answer(t: &XaTables, now_us: u64, max_us: u64) -> Xa {
        let mut tx = TxBuf::default();
        let (order, cmd) = (OrderId(7), CmdKind::PrepareStock);
        on_done(t, order, Service::Product, cmd, CmdResult::Busy, (now_us, max_us), &mut tx);
        match tx.writes.as_slice() {
            [Write::Xa(XaWrite::Put { xa, .. })] => *xa,
            other => panic!("one write to the log: {other:?}"),
        }
    }

    /// The lock wait is measured in time from the first busy answer, not
    /// in answers: a few slow retries still abort once it has run out,
    /// and many quick ones do not abort before.
    #[test]
    fn a_lock_wait_ends_after_its_time_however_many_answers_it_took() {
        let first = busy_answer(&waiting_on_stock(0, None), 1_000, 5_000);
        assert_eq!(
            (first.step, first.busy, first.busy_since_us),
            (Step::PrepareStock, 1, Some(1_000))
        );
        // Two slow answers: the wait is over at 5 ms after the first.
        let slow = busy_answer(&waiting_on_stock(1, Some(1_000)), 6_000, 5_000);
        assert_eq!(slow.step, Step::AbortStock, "waited 5 ms in two answers");
        assert_eq!(slow.why, Some(Refusal::Unavailable));
        // A thousand quick answers inside the wait keep waiting.
        let quick = busy_answer(&waiting_on_stock(1_000, Some(1_000)), 5_999, 5_000);
        assert_eq!((quick.step, quick.busy), (Step::PrepareStock, 1_001));
    }
}
