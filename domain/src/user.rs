//! The User service: points balances. It deducts an order's points once its
//! card is charged, or reports that the balance is short, which starts the
//! saga's failure flow (§2.4.1, failure step 1).
//!
//! A deduction is plain arithmetic with no per-order record: only the inbox
//! stands between a redelivered `PaymentCreated` and a second deduction, which
//! is exactly the report's reason for the inbox.

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, UserId};
use crate::message::Event;
use crate::ports::Tx;
use crate::tables::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserTables {
    /// Points per user. Invariant: never negative.
    pub balances: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserWrite {
    Deduct { user: UserId, order: OrderId, amount: u64 },
}

impl UserTables {
    pub fn apply(&mut self, w: &UserWrite) {
        match *w {
            UserWrite::Deduct { user, amount, .. } => {
                let b = &mut self.balances[user.index()];
                *b = b.checked_sub(amount).expect("deduction checked the balance");
            }
        }
    }
}

/// Consume an event.
pub fn on_event(t: &UserTables, ev: &Event, tx: &mut impl Tx) {
    if let Event::PaymentCreated { order, user, points } = *ev {
        if t.balances[user.index()] >= points {
            tx.write(Write::User(UserWrite::Deduct { user, order, amount: points }));
            tx.publish(Event::BalanceDeducted { order, user, points });
        } else {
            tx.publish(Event::BalanceFailed { order, user, points });
        }
    }
}
