//! The Product service: prices and stock. It takes the client's order first
//! (§2.4.1 step 1: validate stock, deduct it) and restores stock when the
//! saga rolls back.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId, ProductId};
use crate::message::{Event, PlaceOrder};
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

/// What Product did for one order: it makes placing an order idempotent by
/// order id, and compensation idempotent by state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub product: ProductId,
    pub qty: u32,
    pub state: ReservationState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductTables {
    pub products: Vec<Product>,
    pub reservations: BTreeMap<OrderId, Reservation>,
    pub inbox: BTreeSet<EventId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductWrite {
    Deduct { order: OrderId, product: ProductId, qty: u32 },
    Reject { order: OrderId, product: ProductId, qty: u32 },
    Restore { order: OrderId, product: ProductId, qty: u32 },
}

impl ProductTables {
    pub fn apply(&mut self, w: &ProductWrite) {
        match *w {
            ProductWrite::Deduct { order, product, qty } => {
                let p = &mut self.products[product.index()];
                p.stock = p.stock.checked_sub(qty as u64).expect("deduction checked the stock");
                let state = ReservationState::Held;
                self.reservations.insert(order, Reservation { product, qty, state });
            }
            ProductWrite::Reject { order, product, qty } => {
                let state = ReservationState::Rejected;
                self.reservations.insert(order, Reservation { product, qty, state });
            }
            ProductWrite::Restore { order, product, qty } => {
                self.products[product.index()].stock += qty as u64;
                if let Some(r) = self.reservations.get_mut(&order) {
                    r.state = ReservationState::Restored;
                }
            }
        }
    }
}

/// Place an order: hold its stock, or refuse it. A retry of an order already
/// decided gets the same answer and changes nothing. Returns whether the order
/// was accepted.
pub fn place(t: &ProductTables, req: &PlaceOrder, tx: &mut impl Tx) -> bool {
    if let Some(r) = t.reservations.get(&req.order) {
        return r.state != ReservationState::Rejected;
    }
    let PlaceOrder { order, user, product, qty } = *req;
    let p = t.products[product.index()];
    if p.stock >= qty as u64 {
        tx.write(Write::Product(ProductWrite::Deduct { order, product, qty }));
        let amount = p.price * qty as u64;
        tx.publish(Event::StockDeducted { order, user, product, qty, amount });
        true
    } else {
        tx.write(Write::Product(ProductWrite::Reject { order, product, qty }));
        tx.publish(Event::StockRejected { order, user, product, qty });
        false
    }
}

/// Consume an event (the stock rollback of §2.4.1, failure step 8).
pub fn on_event(t: &ProductTables, ev: &Event, safety: &Safety, tx: &mut impl Tx) {
    if let Event::OrderCancelled { order, product, qty } = *ev {
        let held = t.reservations.get(&order).map(|r| r.state) == Some(ReservationState::Held);
        if held || !safety.idempotent_compensation {
            tx.write(Write::Product(ProductWrite::Restore { order, product, qty }));
        }
    }
}
