//! The invariants of DESIGN §5 and what a violation says.
//!
//! [`Checker`] keeps, per order, a ledger of the effects actually committed
//! (stock held, points held, states) and, per step, checks only the orders,
//! products and users that step touched.

mod checker;

pub use checker::{Checker, EndState, StateView};

use serde::{Deserialize, Serialize};

use crate::ids::{OrderId, ProductId, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Invariant {
    StockConservation,
    NoDoubleCharge,
    MoneyConservation,
    ConfirmedIsComplete,
    LegalTransitions,
    EventualConsistency,
    NoStuckSaga,
}

/// When an invariant is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    EveryStep,
    AtQuiescence,
}

impl Invariant {
    pub const ALL: [Invariant; 7] = [
        Invariant::StockConservation,
        Invariant::NoDoubleCharge,
        Invariant::MoneyConservation,
        Invariant::ConfirmedIsComplete,
        Invariant::LegalTransitions,
        Invariant::EventualConsistency,
        Invariant::NoStuckSaga,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::StockConservation => "stock-conservation",
            Invariant::NoDoubleCharge => "no-double-charge",
            Invariant::MoneyConservation => "money-conservation",
            Invariant::ConfirmedIsComplete => "confirmed-is-complete",
            Invariant::LegalTransitions => "legal-transitions",
            Invariant::EventualConsistency => "eventual-consistency",
            Invariant::NoStuckSaga => "no-stuck-saga",
        }
    }

    /// The number in DESIGN §5.
    pub fn number(self) -> u8 {
        match self {
            Invariant::StockConservation => 1,
            Invariant::NoDoubleCharge => 2,
            Invariant::MoneyConservation => 3,
            Invariant::ConfirmedIsComplete => 5,
            Invariant::LegalTransitions => 6,
            Invariant::EventualConsistency => 7,
            Invariant::NoStuckSaga => 10,
        }
    }

    pub fn parse(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == name)
    }

    pub fn when(self) -> When {
        match self {
            Invariant::EventualConsistency | Invariant::NoStuckSaga => When::AtQuiescence,
            _ => When::EveryStep,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Invariant::StockConservation => {
                "per product, initial stock = available + held by orders; no order holds more \
                 than it ordered or less than nothing"
            }
            Invariant::NoDoubleCharge => "per order, points deducted at most once",
            Invariant::MoneyConservation => {
                "per user, balance + points held by orders = initial balance"
            }
            Invariant::ConfirmedIsComplete => {
                "a confirmed order has its stock and its points applied"
            }
            Invariant::LegalTransitions => {
                "orders and payments move only along their state machines"
            }
            Invariant::EventualConsistency => {
                "after healing, every order is terminal: confirmed with every effect applied \
                 once, or cancelled/rejected with every effect undone"
            }
            Invariant::NoStuckSaga => {
                "after healing, no payment pending, outboxes drained, every consumer caught up"
            }
        }
    }
}

/// Something a violation is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Entity {
    Order(OrderId),
    Product(ProductId),
    User(UserId),
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entity::Order(o) => write!(f, "order {o}"),
            Entity::Product(p) => write!(f, "product {p}"),
            Entity::User(u) => write!(f, "user {u}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub entities: Vec<Entity>,
    pub detail: String,
}
