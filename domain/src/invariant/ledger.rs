//! What the checker knows of one order: learnt from committed writes only.

use crate::ids::{CouponId, OrderId, ProductId, UserId};
use crate::invariant::Entity;
use crate::message::Request;
use crate::order::{Order, OrderState};
use crate::payment::PaymentState;

#[derive(Clone, Copy, Debug, Default)]
pub struct Ledger {
    /// The request's hash.
    pub hash: u64,
    /// When a client first sent the order's key (`None`: no client did).
    pub arrived_us: Option<u64>,
    /// The request the order was made for, as the workload sent it (not as
    /// any service recorded it), and what the price list says it costs:
    /// (amount, points, card) if it is taken.
    pub req: Option<Request>,
    pub expected: (i64, i64, i64),
    pub product: ProductId,
    pub qty: i64,
    /// From the order row, once Order saved it.
    pub row: Option<Order>,
    /// What the payment was created for: (points, card). Under two-phase
    /// commit the card is charged before the order row exists.
    pub due: Option<(i64, i64)>,
    /// Units of stock held: deducted minus restored.
    pub stock_held: i64,
    /// Points held: deducted minus refunded.
    pub points_held: i64,
    pub points_deducts: u32,
    /// Card money captured at the PG: charged minus refunded.
    pub card_held: i64,
    pub charges: u32,
    /// The coupon this order is using.
    pub coupon: Option<CouponId>,
    pub platform: u32,
    pub sales: u32,
    /// What the outcome's reasons rest on: stock was held at some point, a
    /// card was declined, points fell short, the coupon was ever used.
    pub held_stock_ever: bool,
    pub declined: bool,
    pub points_short: bool,
    pub points_ever: bool,
    pub coupon_ever: bool,
    /// Apology coupons issued for this order.
    pub apologies: u32,
    pub state: Option<OrderState>,
    pub payment: Option<PaymentState>,
}

impl Ledger {
    pub fn user(&self) -> Option<UserId> {
        self.req.map(|r| r.user).or(self.row.map(|r| r.user))
    }

    /// What a violation about this order names: the order, its product and,
    /// once known, its user.
    pub fn entities(&self, order: OrderId) -> Vec<Entity> {
        let mut ents = vec![Entity::Order(order), Entity::Product(self.product)];
        ents.extend(self.user().map(Entity::User));
        ents
    }

    /// The order's amounts once it is taken, from the price list: (points,
    /// card). `None` while nothing says it was taken, and for an order
    /// rejected before any payment was created for it.
    pub fn split(&self) -> Option<(i64, i64)> {
        let rejected = self.row.is_some_and(|r| r.state == OrderState::Rejected);
        let taken = (self.row.is_some() && !rejected) || self.due.is_some();
        let (_, points, card) = self.expected;
        taken.then_some((points, card))
    }
}
