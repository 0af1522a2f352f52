//! A workload: the users, products, coupons and submissions one seed runs.
//! The harness draws it from the seed's workload stream; the services and
//! the checker only read it.

use serde::{Deserialize, Serialize};

use crate::client::Arrival;
use crate::ids::UserId;
use crate::product::Product;

/// A coupon as issued before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct IssuedCoupon {
    pub user: UserId,
    pub discount: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Initial points balance per user.
    pub balances: Vec<u64>,
    /// Price and initial stock per product.
    pub products: Vec<Product>,
    pub coupons: Vec<IssuedCoupon>,
    /// Submissions in arrival order; submission `i` has id `i`.
    pub arrivals: Vec<Arrival>,
}

impl Workload {
    /// What a request costs if it is taken, by the price list and the
    /// coupons as issued: (amount, points, card). The invariant checker's
    /// oracle, written from the report's rule (price × quantity less the
    /// coupon's discount, points first up to the amount, the rest to the
    /// card) rather than taken from the order row, so that a service that
    /// prices wrongly is caught rather than believed.
    pub fn amounts(&self, r: &crate::message::Request) -> (i64, i64, i64) {
        let price = self.products.get(r.product.index()).map_or(0, |p| p.price);
        let discount = r.coupon.and_then(|c| self.coupons.get(c.index())).map_or(0, |c| c.discount);
        let amount = (price * r.qty as u64).saturating_sub(discount) as i64;
        let points = (r.points as i64).min(amount);
        (amount, points, amount - points)
    }
}
