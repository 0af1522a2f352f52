//! The Product service: prices, stock and sales records. It is where an order
//! enters the choreography (§2.4.1 step 1: validate stock, deduct it): it
//! numbers the order, records the client's idempotency key with it, and
//! restores stock when the saga rolls back. It also records product sales
//! once an order is confirmed (§3.1).

use serde::{Deserialize, Serialize};

use crate::entry::{self, Admit, EntryTables, EntryWrite};
use crate::ids::{IdMap, OrderId, ProductId, RequestKey};
use crate::message::{CmdResult, Command, Event, Refusal, Request, Response};
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
    /// Released before it was ever held.
    Void,
}

/// What Product did for one order; compensation checks it, so restoring
/// twice restores once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    pub product: ProductId,
    pub qty: u32,
    pub state: ReservationState,
    /// Its sale is recorded.
    pub sold: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProductTables {
    pub products: Vec<Product>,
    /// Units sold per product (confirmed orders).
    pub sales: Vec<u64>,
    pub reservations: IdMap<OrderId, Reservation>,
}

impl ProductTables {
    pub fn new(products: Vec<Product>) -> ProductTables {
        let sales = vec![0; products.len()];
        ProductTables { products, sales, ..Default::default() }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ProductWrite {
    /// An order holds stock.
    Deduct {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    /// An order refused for lack of stock.
    Reject {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    Restore {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    /// A release that came before its reservation: remember it, so the late
    /// reservation is refused.
    Void {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    Sale {
        order: OrderId,
        product: ProductId,
        qty: u32,
    },
    /// An order holds stock, written as the stock its handler read minus
    /// the quantity (`SET stock = $read - $qty`): the planted stale-read
    /// update, which loses a concurrent deduction.
    SetStock {
        order: OrderId,
        product: ProductId,
        qty: u32,
        stock: u64,
    },
}

impl ProductTables {
    pub fn apply(&mut self, w: &ProductWrite) {
        let mut res = |order, product, qty, state| {
            self.reservations.insert(order, Reservation { product, qty, state, sold: false });
        };
        match *w {
            ProductWrite::Deduct { order, product, qty } => {
                res(order, product, qty, ReservationState::Held);
                let p = &mut self.products[product.index()];
                p.stock = p.stock.checked_sub(qty as u64).expect("deduction checked the stock");
            }
            ProductWrite::SetStock { order, product, qty, stock } => {
                res(order, product, qty, ReservationState::Held);
                self.products[product.index()].stock = stock;
            }
            ProductWrite::Reject { order, product, qty } => {
                res(order, product, qty, ReservationState::Rejected)
            }
            ProductWrite::Void { order, product, qty } => {
                res(order, product, qty, ReservationState::Void)
            }
            ProductWrite::Restore { order, product, qty } => {
                self.products[product.index()].stock += qty as u64;
                if let Some(r) = self.reservations.get_mut(&order) {
                    r.state = ReservationState::Restored;
                }
            }
            ProductWrite::Sale { order, product, qty } => {
                self.sales[product.index()] += qty as u64;
                if let Some(r) = self.reservations.get_mut(&order) {
                    r.sold = true;
                }
            }
        }
    }

    /// Hold stock for a new order, or refuse it. Returns the price.
    /// `guarded`: the deduction is a guarded decrement, checked against the
    /// stock as it stands at commit; otherwise (the planted bug) it writes
    /// the stock it read minus the quantity.
    pub fn reserve(
        &self,
        order: OrderId,
        product: ProductId,
        qty: u32,
        guarded: bool,
        tx: &mut impl Tx,
    ) -> Option<u64> {
        let p = self.products[product.index()];
        if p.stock >= qty as u64 {
            let stock = p.stock - qty as u64;
            tx.write(Write::Product(match guarded {
                true => ProductWrite::Deduct { order, product, qty },
                false => ProductWrite::SetStock { order, product, qty, stock },
            }));
            Some(p.price)
        } else {
            tx.write(Write::Product(ProductWrite::Reject { order, product, qty }));
            None
        }
    }
}

/// Place an order (the choreography's entry): answer a known key from the
/// entry record, otherwise number the order and hold its stock, or refuse it.
pub fn place(
    t: &ProductTables,
    e: &EntryTables,
    key: Option<RequestKey>,
    req: &Request,
    safety: &Safety,
    tx: &mut impl Tx,
) -> Response {
    let order = match entry::admit(e, key, req, safety) {
        Admit::Known(r) => return r,
        Admit::Running(order) => return Response::Accepted { order },
        Admit::New(order) => order,
    };
    tx.write(Write::Entry(entry::begin(order, key, req)));
    let guarded = safety.guarded_stock;
    let response = match t.reserve(order, req.product, req.qty, guarded, tx) {
        Some(price) => {
            tx.publish(Event::StockDeducted { order, key, req: *req, price });
            Response::Accepted { order }
        }
        None => {
            tx.publish(Event::StockRejected { order, key, req: *req });
            Response::Refused { order, why: Refusal::OutOfStock }
        }
    };
    tx.write(Write::Entry(EntryWrite::Answer { order, key, response }));
    response
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

/// Take a step the orchestrator asks for. Every command is idempotent by the
/// reservation's state, so a retried command answers as the first did.
pub fn on_command(
    t: &ProductTables,
    order: OrderId,
    cmd: &Command,
    safety: &Safety,
    tx: &mut impl Tx,
) -> CmdResult {
    let res = t.reservations.get(&order);
    let state = res.map(|r| r.state);
    match *cmd {
        Command::Reserve { product, qty } => match state {
            None => match t.reserve(order, product, qty, safety.guarded_stock, tx) {
                Some(price) => CmdResult::Reserved { price },
                None => CmdResult::OutOfStock,
            },
            Some(ReservationState::Held) => {
                CmdResult::Reserved { price: t.products[product.index()].price }
            }
            // Refused, or released before it arrived: a late reservation
            // must not take stock the saga has already given up.
            Some(_) => CmdResult::OutOfStock,
        },
        Command::Release { product, qty } => {
            let restore = Write::Product(ProductWrite::Restore { order, product, qty });
            match state {
                Some(ReservationState::Held) => tx.write(restore),
                // The planted bug: a repeated release gives the stock back again.
                Some(ReservationState::Restored) if !safety.idempotent_compensation => {
                    tx.write(restore)
                }
                // The release overtook its reservation: remember it, unless
                // the planted bug forgets.
                None if safety.void_early_release => {
                    tx.write(Write::Product(ProductWrite::Void { order, product, qty }))
                }
                _ => {}
            }
            CmdResult::Ok
        }
        Command::RecordSale { product, qty } => {
            if res.is_some_and(|r| !r.sold) {
                tx.write(Write::Product(ProductWrite::Sale { order, product, qty }));
            }
            CmdResult::Ok
        }
        ref other => panic!("product cannot {other:?}"),
    }
}
