//! The Order service: orders and the coupons applied to them. Coupons live in
//! Order's database (see ARCHITECTURE.md): the Order transaction of §3.1
//! validates the coupon, uses it and saves the order in one local commit, so
//! a coupon cannot be used by two orders.

use serde::{Deserialize, Serialize};

use crate::ids::{CouponId, IdMap, OrderId, ProductId, UserId};
use crate::message::{CmdResult, Command, Event, Request};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OrderState {
    Pending,
    Confirmed,
    Cancelled,
    Rejected,
}

impl OrderState {
    pub fn is_terminal(self) -> bool {
        self != OrderState::Pending
    }

    pub fn name(self) -> &'static str {
        match self {
            OrderState::Pending => "pending",
            OrderState::Confirmed => "confirmed",
            OrderState::Cancelled => "cancelled",
            OrderState::Rejected => "rejected",
        }
    }

    /// The name of a state that may be absent (no row yet).
    pub fn name_of(state: Option<OrderState>) -> &'static str {
        state.map_or("absent", OrderState::name)
    }

    /// The state machine: pending to confirmed or cancelled; rejected is
    /// where a refused order starts and stays. Nothing leaves a terminal state.
    pub fn may_become(from: Option<OrderState>, to: OrderState) -> bool {
        use OrderState::*;
        matches!(
            (from, to),
            (None, Pending)
                | (None, Rejected)
                | (Some(Pending), Confirmed)
                | (Some(Pending), Cancelled)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Order {
    pub user: UserId,
    pub product: ProductId,
    pub qty: u32,
    pub coupon: Option<CouponId>,
    /// Price less the coupon's discount.
    pub amount: u64,
    /// The part paid in points; the rest is charged to the card.
    pub points: u64,
    pub card: u64,
    pub state: OrderState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CouponState {
    Issued,
    Used,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coupon {
    pub user: UserId,
    pub discount: u64,
    pub state: CouponState,
    /// The order using it. Invariant: `Some` exactly when `Used`.
    pub order: Option<OrderId>,
}

/// Orders by how they ended: per run, or summed over runs. The reports
/// print it as a run's `outcomes`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub confirmed: u64,
    pub cancelled: u64,
    pub rejected: u64,
    pub unfinished: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.confirmed += o.confirmed;
        self.cancelled += o.cancelled;
        self.rejected += o.rejected;
        self.unfinished += o.unfinished;
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderTables {
    pub orders: IdMap<OrderId, Order>,
    pub coupons: Vec<Coupon>,
    /// The apology coupon issued for each order that earned one.
    pub apologies: IdMap<OrderId, CouponId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderWrite {
    Create {
        order: OrderId,
        row: Order,
    },
    SetState {
        order: OrderId,
        state: OrderState,
    },
    UseCoupon {
        coupon: CouponId,
        order: OrderId,
    },
    /// Give a coupon back: the order that used it was cancelled.
    RestoreCoupon {
        coupon: CouponId,
        order: OrderId,
    },
    /// A new coupon, issued in apology for `order`'s failure.
    IssueCoupon {
        order: OrderId,
        user: UserId,
        discount: u64,
    },
}

impl OrderTables {
    pub fn apply(&mut self, w: &OrderWrite) {
        match *w {
            OrderWrite::Create { order, row } => {
                self.orders.insert(order, row);
            }
            OrderWrite::SetState { order, state } => {
                self.orders.get_mut(&order).expect("state is set on an existing order").state =
                    state;
            }
            OrderWrite::UseCoupon { coupon, order } => {
                let c = &mut self.coupons[coupon.index()];
                c.state = CouponState::Used;
                c.order = Some(order);
            }
            OrderWrite::RestoreCoupon { coupon, .. } => {
                let c = &mut self.coupons[coupon.index()];
                c.state = CouponState::Issued;
                c.order = None;
            }
            OrderWrite::IssueCoupon { order, user, discount } => {
                self.apologies.insert(order, CouponId(self.coupons.len() as u32));
                self.coupons.push(Coupon {
                    user,
                    discount,
                    state: CouponState::Issued,
                    order: None,
                });
            }
        }
    }

    /// How the orders stand: in each final state, and how many of the
    /// `numbered` orders have none yet (pending, or never saved).
    pub fn tally(&self, numbered: u32) -> Tally {
        let mut t = Tally::default();
        for row in self.orders.values() {
            match row.state {
                OrderState::Confirmed => t.confirmed += 1,
                OrderState::Cancelled => t.cancelled += 1,
                OrderState::Rejected => t.rejected += 1,
                OrderState::Pending => {}
            }
        }
        let ended = t.confirmed + t.cancelled + t.rejected;
        t.unfinished = (numbered as u64).saturating_sub(ended);
        t
    }

    /// Whether `user` may use `coupon` now.
    fn usable(&self, coupon: CouponId, user: UserId) -> bool {
        self.coupons
            .get(coupon.index())
            .is_some_and(|c| c.user == user && c.state == CouponState::Issued)
    }
}

fn set(order: OrderId, state: OrderState) -> Write {
    Write::Order(OrderWrite::SetState { order, state })
}

/// The order row a request makes, priced: the coupon (if any) must belong
/// to the user and be unused; the amount is the price less its discount,
/// split into the points asked for (at most the amount) and the card. `None`
/// if the coupon is not usable.
pub fn price(t: &OrderTables, req: &Request, price: u64) -> Option<Order> {
    let Request { user, product, qty, coupon, points } = *req;
    let discount = match coupon {
        Some(c) if t.usable(c, user) => t.coupons[c.index()].discount,
        Some(_) => return None,
        None => 0,
    };
    let amount = (price * qty as u64).saturating_sub(discount);
    let points = points.min(amount);
    let card = amount - points;
    Some(Order { user, product, qty, coupon, amount, points, card, state: OrderState::Pending })
}

/// The row of a refused order.
pub fn rejected(req: &Request) -> Order {
    let Request { user, product, qty, .. } = *req;
    let (coupon, amount, points, card) = (None, 0, 0, 0);
    Order { user, product, qty, coupon, amount, points, card, state: OrderState::Rejected }
}

/// The Order transaction of §3.1 for an order whose stock is held: validate
/// the coupon, use it, save the order. Returns the order's points and card
/// amounts, or `None` if the coupon was not usable and the order was saved
/// as rejected. With the planted check-then-act bug the coupon is only
/// validated here, and used by a later transaction.
fn create(
    t: &OrderTables,
    order: OrderId,
    req: &Request,
    price_each: u64,
    safety: &Safety,
    tx: &mut impl Tx,
) -> Option<(u64, u64)> {
    let Some(row) = price(t, req, price_each) else {
        reject(order, req, tx);
        return None;
    };
    tx.write(Write::Order(OrderWrite::Create { order, row }));
    if let Some(c) = row.coupon {
        if safety.coupon_atomic {
            tx.write(Write::Order(OrderWrite::UseCoupon { coupon: c, order }));
        } else {
            tx.publish(Event::CouponApply { order, coupon: c });
        }
    }
    Some((row.points, row.card))
}

fn reject(order: OrderId, req: &Request, tx: &mut impl Tx) {
    tx.write(Write::Order(OrderWrite::Create { order, row: rejected(req) }));
}

/// Cancel a pending order and give its coupon back.
fn cancel(t: &OrderTables, order: OrderId, o: &Order, tx: &mut impl Tx) {
    tx.write(set(order, OrderState::Cancelled));
    if let Some(c) = o.coupon.filter(|c| t.coupons[c.index()].order == Some(order)) {
        tx.write(Write::Order(OrderWrite::RestoreCoupon { coupon: c, order }));
    }
}

/// Take a step the orchestrator asks for; idempotent by the order's state.
pub fn on_command(
    t: &OrderTables,
    order: OrderId,
    cmd: &Command,
    safety: &Safety,
    tx: &mut impl Tx,
) -> CmdResult {
    let row = t.orders.get(&order);
    let state = row.map(|o| o.state);
    match *cmd {
        Command::Create { req, price } => match row {
            None => match create(t, order, &req, price, safety, tx) {
                Some((points, card)) => CmdResult::Created { points, card },
                None => CmdResult::CouponUnusable,
            },
            Some(o) if o.state == OrderState::Rejected => CmdResult::CouponUnusable,
            Some(o) => CmdResult::Created { points: o.points, card: o.card },
        },
        Command::RecordRejected { req } => {
            if row.is_none() {
                reject(order, &req, tx);
            }
            CmdResult::Ok
        }
        Command::Confirm => {
            if state == Some(OrderState::Pending) {
                tx.write(set(order, OrderState::Confirmed));
            }
            CmdResult::Ok
        }
        Command::IssueCoupon { user, discount } => {
            if !t.apologies.contains_key(&order) {
                tx.write(Write::Order(OrderWrite::IssueCoupon { order, user, discount }));
            }
            CmdResult::Ok
        }
        Command::Cancel => {
            if let Some(o) = row.filter(|o| o.state == OrderState::Pending) {
                cancel(t, order, o, tx);
            }
            CmdResult::Ok
        }
        ref other => panic!("order cannot {other:?}"),
    }
}

/// Consume an event.
pub fn on_event(t: &OrderTables, ev: &Event, safety: &Safety, tx: &mut impl Tx) {
    let row = t.orders.get(&ev.order());
    let state = row.map(|o| o.state);
    match *ev {
        Event::StockDeducted { order, req, price, .. } if state.is_none() => {
            match create(t, order, &req, price, safety, tx) {
                Some((points, card)) => {
                    tx.publish(Event::OrderCreated { order, user: req.user, card, points })
                }
                None => {
                    tx.publish(Event::OrderRejected { order, product: req.product, qty: req.qty })
                }
            }
        }
        Event::StockRejected { order, req, .. } if state.is_none() => reject(order, &req, tx),
        Event::CouponApply { order, coupon } => {
            tx.write(Write::Order(OrderWrite::UseCoupon { coupon, order }));
        }
        Event::BalanceDeducted { order, .. } if state == Some(OrderState::Pending) => {
            let o = row.expect("a pending order exists");
            tx.write(set(order, OrderState::Confirmed));
            tx.publish(Event::OrderConfirmed {
                order,
                product: o.product,
                qty: o.qty,
                amount: o.amount,
            });
        }
        Event::PaymentFailed { order } | Event::PaymentCancelled { order }
            if state == Some(OrderState::Pending) =>
        {
            let o = row.expect("a pending order exists");
            cancel(t, order, o, tx);
            tx.publish(Event::OrderCancelled { order, product: o.product, qty: o.qty });
        }
        _ => {}
    }
}
