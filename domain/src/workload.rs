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
