//! The Payment service: one payment per order, created when the order is,
//! completed when the balance is deducted, cancelled (publishing the order
//! rollback) when it is not.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId, UserId};
use crate::message::Event;
use crate::ports::Tx;
use crate::tables::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PaymentState {
    Pending,
    Completed,
    Cancelled,
}

impl PaymentState {
    pub fn is_terminal(self) -> bool {
        self != PaymentState::Pending
    }

    pub fn name(self) -> &'static str {
        match self {
            PaymentState::Pending => "pending",
            PaymentState::Completed => "completed",
            PaymentState::Cancelled => "cancelled",
        }
    }

    pub fn may_become(from: Option<PaymentState>, to: PaymentState) -> bool {
        use PaymentState::*;
        matches!(
            (from, to),
            (None, Pending) | (Some(Pending), Completed) | (Some(Pending), Cancelled)
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Payment {
    pub user: UserId,
    pub amount: u64,
    pub state: PaymentState,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentTables {
    pub payments: BTreeMap<OrderId, Payment>,
    pub inbox: BTreeSet<EventId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PaymentWrite {
    Create { order: OrderId, row: Payment },
    SetState { order: OrderId, state: PaymentState },
}

impl PaymentTables {
    pub fn apply(&mut self, w: &PaymentWrite) {
        match *w {
            PaymentWrite::Create { order, row } => {
                self.payments.insert(order, row);
            }
            PaymentWrite::SetState { order, state } => {
                let p = self.payments.get_mut(&order).expect("state is set on an existing payment");
                p.state = state;
            }
        }
    }
}

fn set(order: OrderId, state: PaymentState) -> Write {
    Write::Payment(PaymentWrite::SetState { order, state })
}

/// Consume an event.
pub fn on_event(t: &PaymentTables, ev: &Event, tx: &mut impl Tx) {
    let state = t.payments.get(&ev.order()).map(|p| p.state);
    match *ev {
        Event::OrderCreated { order, user, amount } if state.is_none() => {
            let row = Payment { user, amount, state: PaymentState::Pending };
            tx.write(Write::Payment(PaymentWrite::Create { order, row }));
            tx.publish(Event::PaymentCreated { order, user, amount });
        }
        Event::BalanceDeducted { order, .. } if state == Some(PaymentState::Pending) => {
            tx.write(set(order, PaymentState::Completed));
        }
        Event::BalanceFailed { order, .. } if state == Some(PaymentState::Pending) => {
            tx.write(set(order, PaymentState::Cancelled));
            tx.publish(Event::PaymentCancelled { order });
        }
        _ => {}
    }
}
