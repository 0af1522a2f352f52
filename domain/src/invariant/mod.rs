//! The invariants of DESIGN §5 and what a violation says.
//!
//! [`Checker`] keeps, per order, a ledger of the effects actually committed
//! (stock, points, card, coupon, side effects, states) and, per step, checks
//! only the orders, products and users that step touched.

mod checker;
pub mod ledger;

pub use checker::{Checker, EndState, StateView};

use serde::{Deserialize, Serialize};

use crate::ids::{CouponId, OrderId, ProductId, RequestKey, UserId};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Invariant {
    StockConservation,
    NoDoubleCharge,
    MoneyConservation,
    CouponSingleUse,
    ConfirmedIsComplete,
    LegalTransitions,
    EventualConsistency,
    ExactlyOnceSideEffects,
    IdempotentResponses,
    NoStuckSaga,
    AnswerMatchesOutcome,
}

/// When an invariant is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    EveryStep,
    AtQuiescence,
    Both,
}

impl Invariant {
    pub const ALL: [Invariant; 11] = [
        Invariant::StockConservation,
        Invariant::NoDoubleCharge,
        Invariant::MoneyConservation,
        Invariant::CouponSingleUse,
        Invariant::ConfirmedIsComplete,
        Invariant::LegalTransitions,
        Invariant::EventualConsistency,
        Invariant::ExactlyOnceSideEffects,
        Invariant::IdempotentResponses,
        Invariant::NoStuckSaga,
        Invariant::AnswerMatchesOutcome,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Invariant::StockConservation => "stock-conservation",
            Invariant::NoDoubleCharge => "no-double-charge",
            Invariant::MoneyConservation => "money-conservation",
            Invariant::CouponSingleUse => "coupon-single-use",
            Invariant::ConfirmedIsComplete => "confirmed-is-complete",
            Invariant::LegalTransitions => "legal-transitions",
            Invariant::EventualConsistency => "eventual-consistency",
            Invariant::ExactlyOnceSideEffects => "exactly-once-side-effects",
            Invariant::IdempotentResponses => "idempotent-responses",
            Invariant::NoStuckSaga => "no-stuck-saga",
            Invariant::AnswerMatchesOutcome => "answer-matches-outcome",
        }
    }

    /// The number in DESIGN §5.
    pub fn number(self) -> u8 {
        self as u8 + 1
    }

    pub fn parse(name: &str) -> Option<Invariant> {
        Invariant::ALL.into_iter().find(|i| i.name() == name)
    }

    pub fn when(self) -> When {
        match self {
            Invariant::EventualConsistency
            | Invariant::NoStuckSaga
            | Invariant::AnswerMatchesOutcome => When::AtQuiescence,
            Invariant::ExactlyOnceSideEffects | Invariant::IdempotentResponses => When::Both,
            _ => When::EveryStep,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Invariant::StockConservation => {
                "per product, initial stock = available + held by orders; no order holds more \
                 than it ordered or less than nothing"
            }
            Invariant::NoDoubleCharge => {
                "per order, points deducted at most once and the card charged at most once, \
                 never for more than its card amount"
            }
            Invariant::MoneyConservation => {
                "per user, balance + points held by orders = initial balance; no refund of \
                 money never taken"
            }
            Invariant::CouponSingleUse => "a coupon is applied to at most one live order",
            Invariant::ConfirmedIsComplete => {
                "a confirmed order has its stock, card charge and points all applied"
            }
            Invariant::LegalTransitions => {
                "orders and payments move only along their state machines"
            }
            Invariant::EventualConsistency => {
                "within run.heal_budget_ms of the faults healing, every request answered and every \
                 order terminal: confirmed with every effect applied once, or cancelled/rejected \
                 with every effect undone; nothing may stay pending longer"
            }
            Invariant::ExactlyOnceSideEffects => {
                "the data platform receives each confirmed order once; sales records equal \
                 confirmed quantities"
            }
            Invariant::IdempotentResponses => {
                "one idempotency key, one order and one answer; the key reused with another \
                 payload is refused with no effect"
            }
            Invariant::AnswerMatchesOutcome => {
                "what the client was told is what happened: an answer names the order its key \
                 made; where the strategy answers once the order is decided, accepted means \
                 confirmed and a refusal means not confirmed, with the true reason (no stock \
                 held, a declined card, points short, the coupon never used)"
            }
            Invariant::NoStuckSaga => {
                "within run.heal_budget_ms of the faults healing, no payment charging or \
                 refunding, outboxes drained, every consumer and dead-letter recovery caught up \
                 (the recovery pass takes up what nothing drives every \
                 orchestration.sweep_every_ms, so that long is all a stuck step may add)"
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
    Coupon(CouponId),
    Key(RequestKey),
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Entity::Order(o) => write!(f, "order {o}"),
            Entity::Product(p) => write!(f, "product {p}"),
            Entity::User(u) => write!(f, "user {u}"),
            Entity::Coupon(c) => write!(f, "coupon {c}"),
            Entity::Key(k) => write!(f, "key {:016x}", k.0),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: Invariant,
    pub entities: Vec<Entity>,
    pub detail: String,
}
