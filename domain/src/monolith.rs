//! The monolith of §2 (the current `OrderFacade`): every table in one
//! database, and the order taken in one ACID transaction — stock, coupon,
//! order, points and a pending payment — then, once the external payment
//! gateway has answered, a second transaction that confirms the order with
//! its side effects, or undoes it all. The baseline the split system is
//! measured against: only the card charge, outside our database, can be
//! left hanging, and Payment's usual recovery covers it.

use serde::{Deserialize, Serialize};

use crate::entry::{self, Admit, EntryTables, EntryWrite};
use crate::ids::OrderId;
use crate::message::{PgOp, Refusal, Request, Response};
use crate::order::{Order, OrderState, OrderTables, OrderWrite};
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
    key: Option<crate::ids::RequestKey>,
    tx: &mut impl Tx,
) -> Taken {
    let Request { user, product, qty, .. } = *req;
    tx.write(Write::Product(ProductWrite::Reject { order, product, qty }));
    let row = Order {
        user,
        product,
        qty,
        coupon: None,
        amount: 0,
        points: 0,
        card: 0,
        state: OrderState::Rejected,
    };
    tx.write(Write::Order(OrderWrite::Create { order, row }));
    let response = Response::Refused { order, why };
    tx.write(Write::Entry(EntryWrite::Answer { order, key, response }));
    Taken::Answer(response)
}

/// Take a request in one transaction.
pub fn place(
    m: &MonolithTables,
    e: &EntryTables,
    key: Option<crate::ids::RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> (OrderId, Taken) {
    let order = match entry::admit(e, key, req, safety) {
        Admit::Known(r) => return (OrderId(e.next_order), Taken::Answer(r)),
        Admit::Running(order) => return (order, Taken::Answer(Response::InProgress)),
        Admit::New(order) => order,
    };
    tx.write(Write::Entry(entry::begin(order, key, req)));
    let Request { user, product, qty, coupon, points } = *req;
    let p = m.product.products[product.index()];
    if p.stock < qty as u64 {
        return (order, refuse(order, req, Refusal::OutOfStock, key, tx));
    }
    let discount = match coupon.map(|c| (c, m.order.coupons.get(c.index()))) {
        None => 0,
        Some((_, Some(c))) if c.user == user && c.order.is_none() => c.discount,
        Some(_) => return (order, refuse(order, req, Refusal::CouponUnusable, key, tx)),
    };
    let amount = (p.price * qty as u64).saturating_sub(discount);
    let points = points.min(amount);
    let card = amount - points;
    if m.user.balances[user.index()] < points {
        return (order, refuse(order, req, Refusal::PointsShort, key, tx));
    }
    tx.write(Write::Product(ProductWrite::Deduct { order, product, qty }));
    let row =
        Order { user, product, qty, coupon, amount, points, card, state: OrderState::Pending };
    tx.write(Write::Order(OrderWrite::Create { order, row }));
    if let Some(c) = coupon {
        tx.write(Write::Order(OrderWrite::UseCoupon { coupon: c, order }));
    }
    tx.write(Write::User(UserWrite::Deduct { user, order, amount: points }));
    let row = Payment { user, card, points, state: PaymentState::Charging, cancel: false };
    tx.write(Write::Payment(PaymentWrite::Create { order, row }));
    if card > 0 {
        return (order, Taken::Charge(order));
    }
    tx.write(Write::Payment(PaymentWrite::SetState { order, state: PaymentState::Charged }));
    (order, Taken::Answer(confirm(m, order, &row_of(req, amount, points, card), key, tx)))
}

fn row_of(req: &Request, amount: u64, points: u64, card: u64) -> Order {
    let Request { user, product, qty, coupon, .. } = *req;
    Order { user, product, qty, coupon, amount, points, card, state: OrderState::Pending }
}

/// The second transaction, after the card was charged: confirm with every
/// side effect (§3.1), all in the one database.
fn confirm(
    m: &MonolithTables,
    order: OrderId,
    o: &Order,
    key: Option<crate::ids::RequestKey>,
    tx: &mut impl Tx,
) -> Response {
    let _ = m;
    tx.write(Write::Payment(PaymentWrite::SetState { order, state: PaymentState::Completed }));
    tx.write(Write::Order(OrderWrite::SetState { order, state: OrderState::Confirmed }));
    tx.write(Write::Platform(PlatformWrite::Receive { order, amount: o.amount }));
    tx.write(Write::Product(ProductWrite::Sale { order, product: o.product, qty: o.qty }));
    let response = Response::Accepted { order };
    tx.write(Write::Entry(EntryWrite::Answer { order, key, response }));
    response
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
    let key = e.keys.iter().find(|(_, v)| v.1 == order).map(|(k, _)| *k);
    if paid {
        return confirm(m, order, &o, key, tx);
    }
    tx.write(Write::Order(OrderWrite::SetState { order, state: OrderState::Cancelled }));
    if let Some(c) = o.coupon {
        tx.write(Write::Order(OrderWrite::RestoreCoupon { coupon: c, order }));
    }
    tx.write(Write::Product(ProductWrite::Restore { order, product: o.product, qty: o.qty }));
    tx.write(Write::User(UserWrite::Refund { user: o.user, order, amount: o.points }));
    let response = Response::Refused { order, why: Refusal::CardDeclined };
    tx.write(Write::Entry(EntryWrite::Answer { order, key, response }));
    response
}

/// The card charge to make for a new order.
pub fn charge(order: OrderId) -> PgCall {
    PgCall { order, op: PgOp::Charge }
}
