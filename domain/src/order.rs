//! The Order service: the order record and its state machine. It creates the
//! order once stock is held, confirms it once the balance is deducted, and
//! cancels it (publishing the stock rollback) when payment is cancelled.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId, ProductId, UserId};
use crate::message::Event;
use crate::ports::Tx;
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
    pub amount: u64,
    pub state: OrderState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderTables {
    pub orders: BTreeMap<OrderId, Order>,
    pub inbox: BTreeSet<EventId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OrderWrite {
    Create { order: OrderId, row: Order },
    SetState { order: OrderId, state: OrderState },
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
        }
    }
}

fn set(order: OrderId, state: OrderState) -> Write {
    Write::Order(OrderWrite::SetState { order, state })
}

/// Consume an event.
pub fn on_event(t: &OrderTables, ev: &Event, tx: &mut impl Tx) {
    let state = t.orders.get(&ev.order()).map(|o| o.state);
    match *ev {
        Event::StockDeducted { order, user, product, qty, amount } if state.is_none() => {
            let row = Order { user, product, qty, amount, state: OrderState::Pending };
            tx.write(Write::Order(OrderWrite::Create { order, row }));
            tx.publish(Event::OrderCreated { order, user, amount });
        }
        Event::StockRejected { order, user, product, qty } if state.is_none() => {
            let row = Order { user, product, qty, amount: 0, state: OrderState::Rejected };
            tx.write(Write::Order(OrderWrite::Create { order, row }));
        }
        Event::BalanceDeducted { order, .. } if state == Some(OrderState::Pending) => {
            tx.write(set(order, OrderState::Confirmed));
        }
        Event::PaymentCancelled { order } if state == Some(OrderState::Pending) => {
            let o = t.orders[&order];
            tx.write(set(order, OrderState::Cancelled));
            tx.publish(Event::OrderCancelled { order, product: o.product, qty: o.qty });
        }
        _ => {}
    }
}
