//! The monolith of §2 (the current `OrderFacade`): every table in one
//! database, and the order taken in one ACID transaction — stock, coupon,
//! order, points and a pending payment — then, once the external payment
//! gateway has answered, a second transaction that confirms the order with
//! its side effects, or undoes it all. The baseline the split system is
//! measured against: only the card charge, outside our database, can be
//! left hanging, and Payment's usual recovery covers it.

use serde::{Deserialize, Serialize};

use crate::entry::{self, EntryTables};
use crate::ids::{OrderId, RequestKey};
use crate::message::{PgOp, Refusal, Request, Response};
use crate::order::{self, Order, OrderState, OrderTables, OrderWrite};
use crate::payment::{Payment, PaymentState, PaymentTables, PaymentWrite, PgCall};
use crate::platform::{PlatformTables, PlatformWrite};
use crate::ports::Tx;
use crate::product::{ProductTables, ProductWrite};
use crate::safety::Safety;
use crate::tables::Write;
use crate::user::{UserTables, UserWrite};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonolithTables {
    pub product: ProductTables,
    pub order: OrderTables,
    pub payment: PaymentTables,
    pub user: UserTables,
    pub platform: PlatformTables,
}

/// What taking a request came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Taken {
    /// Answer now.
    Answer(Response),
    /// The order waits for its card charge.
    Charge(OrderId),
}

fn refuse(
    order: OrderId,
    req: &Request,
    why: Refusal,
    key: Option<RequestKey>,
    tx: &mut impl Tx,
) -> Taken {
    tx.write(Write::Product(ProductWrite::Reject { order, product: req.product, qty: req.qty }));
    tx.write(Write::Order(OrderWrite::Create { order, row: order::rejected(req) }));
    Taken::Answer(entry::close(order, key, Some(why), tx))
}

/// Take a request in one transaction.
pub fn place(
    m: &MonolithTables,
    e: &EntryTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> (OrderId, Taken) {
    let order = match entry::open(e, key, req, safety, tx) {
        Ok(order) => order,
        Err((order, answer)) => return (order, Taken::Answer(answer)),
    };
    let Request { user, product, qty, .. } = *req;
    let p = m.product.products[product.index()];
    if p.stock < qty as u64 {
        return (order, refuse(order, req, Refusal::OutOfStock, key, tx));
    }
    let Some(row) = order::price(&m.order, req, p.price) else {
        return (order, refuse(order, req, Refusal::CouponUnusable, key, tx));
    };
    let Order { coupon, points, card, .. } = row;
    if m.user.balances[user.index()] < points {
        return (order, refuse(order, req, Refusal::PointsShort, key, tx));
    }
    tx.write(Write::Product(ProductWrite::Deduct { order, product, qty }));
    tx.write(Write::Order(OrderWrite::Create { order, row }));
    if let Some(c) = coupon {
        tx.write(Write::Order(OrderWrite::UseCoupon { coupon: c, order }));
    }
    tx.write(Write::User(UserWrite::Deduct { user, order, amount: points }));
    let payment =
        Payment { user, card, points, state: PaymentState::Charging, cancel: false, attempt: 0 };
    tx.write(Write::Payment(PaymentWrite::Create { order, row: payment }));
    if card > 0 {
        return (order, Taken::Charge(order));
    }
    tx.write(Write::Payment(PaymentWrite::SetState { order, state: PaymentState::Charged }));
    (order, Taken::Answer(confirm(order, &row, key, tx)))
}

/// The second transaction, after the card was charged: confirm with every
/// side effect (§3.1), all in the one database.
fn confirm(order: OrderId, o: &Order, key: Option<RequestKey>, tx: &mut impl Tx) -> Response {
    tx.write(Write::Payment(PaymentWrite::SetState { order, state: PaymentState::Completed }));
    tx.write(Write::Order(OrderWrite::SetState { order, state: OrderState::Confirmed }));
    tx.write(Write::Platform(PlatformWrite::Receive { order, amount: o.amount }));
    tx.write(Write::Product(ProductWrite::Sale { order, product: o.product, qty: o.qty }));
    entry::close(order, key, None, tx)
}

/// The card charge settled (the payment's own state already written):
/// confirm, or undo everything the first transaction did.
pub fn settle(
    m: &MonolithTables,
    e: &EntryTables,
    order: OrderId,
    paid: bool,
    tx: &mut impl Tx,
) -> Response {
    let o = m.order.orders[&order];
    // A key makes one order: at most one entry matches, in any order.
    let key = e.keys.iter().find(|(_, v)| v.1 == order).map(|(k, _)| *k); // deterministic: unique
    if paid {
        return confirm(order, &o, key, tx);
    }
    tx.write(Write::Order(OrderWrite::SetState { order, state: OrderState::Cancelled }));
    if let Some(c) = o.coupon {
        tx.write(Write::Order(OrderWrite::RestoreCoupon { coupon: c, order }));
    }
    tx.write(Write::Product(ProductWrite::Restore { order, product: o.product, qty: o.qty }));
    tx.write(Write::User(UserWrite::Refund { user: o.user, order, amount: o.points }));
    entry::close(order, key, Some(Refusal::CardDeclined), tx)
}

/// The card charge to make for a new order.
pub fn charge(order: OrderId) -> PgCall {
    PgCall { order, op: PgOp::Charge }
}
