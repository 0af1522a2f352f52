//! A workload: the users, products and orders one seed runs. The harness
//! draws it from the seed's workload stream; the services and the checker
//! only read it.

use serde::{Deserialize, Serialize};

use crate::client::Arrival;
use crate::product::Product;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workload {
    /// Initial points balance per user.
    pub balances: Vec<u64>,
    /// Price and initial stock per product.
    pub products: Vec<Product>,
    /// Orders in arrival order; order `i` has id `i`.
    pub orders: Vec<Arrival>,
}
