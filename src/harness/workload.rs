//! Draw a seed's workload from its workload stream. Only this stream is used,
//! so seed N has the same users, products, orders and arrival times under
//! every strategy, bug and fault profile.

use domain::client::Arrival;
use domain::product::Product;
use domain::{OrderId, PlaceOrder, ProductId, UserId, Workload};
use sim::seed::{Purpose, Stream};

use crate::scenario::WorkloadSpec;

pub fn draw(spec: &WorkloadSpec, seed: u64) -> Workload {
    let mut s = Stream::new(seed, Purpose::Workload);
    let balances = (0..spec.users).map(|_| s.range(spec.balance.0, spec.balance.1)).collect();
    let products = (0..spec.products)
        .map(|_| Product {
            price: s.range(spec.price.0, spec.price.1),
            stock: s.range(spec.stock.0, spec.stock.1),
        })
        .collect();
    let mut at_us = 0;
    let orders = (0..spec.orders)
        .map(|i| {
            at_us += s.range(spec.gap_us.0, spec.gap_us.1);
            let order = PlaceOrder {
                order: OrderId(i as u32),
                user: UserId(s.range(0, spec.users - 1) as u32),
                product: ProductId(s.range(0, spec.products - 1) as u32),
                qty: s.range(spec.quantity.0, spec.quantity.1) as u32,
            };
            Arrival { at_us, order }
        })
        .collect();
    Workload { balances, products, orders }
}
