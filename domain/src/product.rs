//! The Product service: prices, stock and sales records. It is where an order
//! enters the choreography (§2.4.1 step 1: validate stock, deduct it): it
//! numbers the order, records the client's idempotency key with it, and
//! restores stock when the saga rolls back. It also records product sales
//! once an order is confirmed (§3.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, ProductId, RequestKey};
use crate::message::{Event, Refusal, Request, Response};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub price: u64,
    /// Invariant: never negative (deduction checks it first).
    pub stock: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationState {
    Held,
    Rejected,
    Restored,
}

/// What Product did for one order; compensation checks it, so restoring
/// twice restores once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub product: ProductId,
    pub qty: u32,
    pub state: ReservationState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductTables {
    pub products: Vec<Product>,
    /// Units sold per product (confirmed orders).
    pub sales: Vec<u64>,
    pub reservations: BTreeMap<OrderId, Reservation>,
    /// Idempotency keys seen with orders: key → (request hash, answer). The
    /// durable backstop behind the gateway's cache, written in the same
    /// transaction as the order.
    pub keys: BTreeMap<RequestKey, (u64, Response)>,
    /// The next order number.
    pub next_order: u32,
}

impl ProductTables {
    pub fn new(products: Vec<Product>) -> ProductTables {
        let sales = vec![0; products.len()];
        ProductTables { products, sales, ..Default::default() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductWrite {
    /// A new order holds stock. `key` and `hash` identify the request.
    Deduct {
        order: OrderId,
        key: Option<RequestKey>,
        hash: u64,
        product: ProductId,
        qty: u32,
    },
    /// A new order refused for lack of stock.
    Reject {
        order: OrderId,
        key: Option<RequestKey>,
        hash: u64,
        product: ProductId,
        qty: u32,
    },
    Restore {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    Sale {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
}

impl ProductTables {
    pub fn apply(&mut self, w: &ProductWrite) {
        let res = |product, qty, state| Reservation { product, qty, state };
        match *w {
            ProductWrite::Deduct { order, key, hash, product, qty } => {
                let p = &mut self.products[product.index()];
                p.stock = p.stock.checked_sub(qty as u64).expect("deduction checked the stock");
                self.reservations.insert(order, res(product, qty, ReservationState::Held));
                self.new_order(order, key, hash, Response::Accepted { order });
            }
            ProductWrite::Reject { order, key, hash, product, qty } => {
                self.reservations.insert(order, res(product, qty, ReservationState::Rejected));
                let why = Refusal::OutOfStock;
                self.new_order(order, key, hash, Response::Refused { order, why });
            }
            ProductWrite::Restore { order, product, qty } => {
                self.products[product.index()].stock += qty as u64;
                if let Some(r) = self.reservations.get_mut(&order) {
                    r.state = ReservationState::Restored;
                }
            }
            ProductWrite::Sale { product, qty, .. } => self.sales[product.index()] += qty as u64,
        }
    }

    fn new_order(&mut self, order: OrderId, key: Option<RequestKey>, hash: u64, r: Response) {
        assert_eq!(order.0, self.next_order, "orders are numbered in sequence");
        self.next_order += 1;
        if let Some(k) = key {
            self.keys.insert(k, (hash, r));
        }
    }
}

/// Place an order: answer a known key from the record, otherwise number the
/// order and hold its stock, or refuse it.
pub fn place(
    t: &ProductTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> Response {
    let hash = req.hash();
    if let Some(&(first, answer)) = key.and_then(|k| t.keys.get(&k)) {
        return if first == hash || !safety.key_payload_check {
            answer
        } else {
            Response::KeyConflict
        };
    }
    let order = OrderId(t.next_order);
    let (product, qty) = (req.product, req.qty);
    let p = t.products[product.index()];
    if p.stock >= qty as u64 {
        tx.write(Write::Product(ProductWrite::Deduct { order, key, hash, product, qty }));
        tx.publish(Event::StockDeducted { order, key, req: *req, price: p.price });
        Response::Accepted { order }
    } else {
        tx.write(Write::Product(ProductWrite::Reject { order, key, hash, product, qty }));
        tx.publish(Event::StockRejected { order, key, req: *req });
        Response::Refused { order, why: Refusal::OutOfStock }
    }
}

/// Consume an event: restore stock when the saga rolls back (§2.4.1,
/// failure step 8), record sales when the order is confirmed.
pub fn on_event(t: &ProductTables, ev: &Event, tx: &mut impl Tx) {
    match *ev {
        Event::OrderCancelled { order, product, qty }
        | Event::OrderRejected { order, product, qty } => {
            let held = t.reservations.get(&order).map(|r| r.state) == Some(ReservationState::Held);
            if held {
                tx.write(Write::Product(ProductWrite::Restore { order, product, qty }));
            }
        }
        Event::OrderConfirmed { order, product, qty, .. } => {
            tx.write(Write::Product(ProductWrite::Sale { order, product, qty }));
        }
        _ => {}
    }
}
