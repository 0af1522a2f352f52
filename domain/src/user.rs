//! The User service: points balances. It deducts an order's points once its
//! card is charged, or reports that the balance is short, which starts the
//! saga's failure flow (§2.4.1, failure step 1).
//!
//! In the choreography a deduction answers an event, and only the inbox
//! stands between a redelivered `PaymentCreated` and a second deduction,
//! which is exactly the report's reason for the inbox. Under the
//! orchestration a deduction answers a command that may be retried, so it
//! checks the per-order record first.

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, OrderId, UserId};
use crate::message::{CmdResult, Command, Event};
use crate::ports::Tx;
use crate::tables::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserTables {
    /// Points per user. Invariant: never negative.
    pub balances: Vec<u64>,
    /// What was decided for each order: points deducted, or `None` when the
    /// balance was short.
    pub decided: IdMap<OrderId, Option<u64>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UserWrite {
    Deduct {
        user: UserId,
        order: OrderId,
        amount: u64,
    },
    /// The balance was short for this order.
    Short {
        user: UserId,
        order: OrderId,
    },
    /// Give an order's points back.
    Refund {
        user: UserId,
        order: OrderId,
        amount: u64,
    },
}

impl UserTables {
    pub fn apply(&mut self, w: &UserWrite) {
        match *w {
            UserWrite::Deduct { user, order, amount } => {
                let b = &mut self.balances[user.index()];
                *b = b.checked_sub(amount).expect("deduction checked the balance");
                self.decided.insert(order, Some(amount));
            }
            UserWrite::Short { order, .. } => drop(self.decided.insert(order, None)),
            UserWrite::Refund { user, order, amount } => {
                self.balances[user.index()] += amount;
                self.decided.insert(order, None);
            }
        }
    }

    fn deduct(&self, order: OrderId, user: UserId, points: u64, tx: &mut impl Tx) -> bool {
        if self.balances[user.index()] >= points {
            tx.write(Write::User(UserWrite::Deduct { user, order, amount: points }));
            true
        } else {
            tx.write(Write::User(UserWrite::Short { user, order }));
            false
        }
    }
}

/// Consume an event.
pub fn on_event(t: &UserTables, ev: &Event, tx: &mut impl Tx) {
    if let Event::PaymentCreated { order, user, points } = *ev {
        if t.deduct(order, user, points, tx) {
            tx.publish(Event::BalanceDeducted { order, user, points });
        } else {
            tx.publish(Event::BalanceFailed { order, user, points });
        }
    }
}

/// Take a step the orchestrator asks for; a repeated deduction answers as
/// the first.
pub fn on_command(t: &UserTables, order: OrderId, cmd: &Command, tx: &mut impl Tx) -> CmdResult {
    let Command::Deduct { user, points } = *cmd else { panic!("user cannot {cmd:?}") };
    let deducted = match t.decided.get(&order) {
        Some(d) => d.is_some(),
        None => t.deduct(order, user, points, tx),
    };
    if deducted {
        CmdResult::Ok
    } else {
        CmdResult::Short
    }
}
