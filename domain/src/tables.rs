//! Each service's tables, as one sum type so a simulated database (or any
//! other store) can hold any service's; and the service dispatch: which topics
//! a service consumes and how it handles an event, behind its inbox.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::ids::EventId;
use crate::message::{Event, Topic};
use crate::order::{OrderTables, OrderWrite};
use crate::payment::{PaymentTables, PaymentWrite};
use crate::ports::Tx;
use crate::product::{ProductTables, ProductWrite};
use crate::safety::Safety;
use crate::user::{UserTables, UserWrite};
use crate::{order, payment, product, user};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Service {
    Product,
    Order,
    Payment,
    User,
}

impl Service {
    pub const ALL: [Service; 4] =
        [Service::Product, Service::Order, Service::Payment, Service::User];

    pub fn name(self) -> &'static str {
        match self {
            Service::Product => "product",
            Service::Order => "order",
            Service::Payment => "payment",
            Service::User => "user",
        }
    }

    /// The topics this service consumes in the choreography saga.
    pub fn subscriptions(self) -> &'static [Topic] {
        match self {
            Service::Product => &[Topic::OrderCancelled],
            Service::Order => &[
                Topic::StockDeducted,
                Topic::StockRejected,
                Topic::BalanceDeducted,
                Topic::PaymentCancelled,
            ],
            Service::Payment => {
                &[Topic::OrderCreated, Topic::BalanceDeducted, Topic::BalanceFailed]
            }
            Service::User => &[Topic::PaymentCreated],
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tables {
    Product(ProductTables),
    Order(OrderTables),
    Payment(PaymentTables),
    User(UserTables),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Write {
    Product(ProductWrite),
    Order(OrderWrite),
    Payment(PaymentWrite),
    User(UserWrite),
    /// Record an event as processed in the service's inbox.
    Inbox(EventId),
}

/// What consuming one event came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumed {
    Handled,
    /// The inbox had seen this event: nothing was done.
    Duplicate,
}

impl Tables {
    pub fn empty(service: Service) -> Tables {
        match service {
            Service::Product => Tables::Product(ProductTables::default()),
            Service::Order => Tables::Order(OrderTables::default()),
            Service::Payment => Tables::Payment(PaymentTables::default()),
            Service::User => Tables::User(UserTables::default()),
        }
    }

    pub fn service(&self) -> Service {
        match self {
            Tables::Product(_) => Service::Product,
            Tables::Order(_) => Service::Order,
            Tables::Payment(_) => Service::Payment,
            Tables::User(_) => Service::User,
        }
    }

    fn inbox(&self) -> &BTreeSet<EventId> {
        match self {
            Tables::Product(t) => &t.inbox,
            Tables::Order(t) => &t.inbox,
            Tables::Payment(t) => &t.inbox,
            Tables::User(t) => &t.inbox,
        }
    }

    /// Apply one committed write. A write for another service's tables is a
    /// wiring bug.
    pub fn apply(&mut self, w: &Write) {
        match (self, w) {
            (Tables::Product(t), Write::Product(w)) => t.apply(w),
            (Tables::Order(t), Write::Order(w)) => t.apply(w),
            (Tables::Payment(t), Write::Payment(w)) => t.apply(w),
            (Tables::User(t), Write::User(w)) => t.apply(w),
            (Tables::Product(t), Write::Inbox(id)) => drop(t.inbox.insert(*id)),
            (Tables::Order(t), Write::Inbox(id)) => drop(t.inbox.insert(*id)),
            (Tables::Payment(t), Write::Inbox(id)) => drop(t.inbox.insert(*id)),
            (Tables::User(t), Write::Inbox(id)) => drop(t.inbox.insert(*id)),
            (t, w) => panic!("write {w:?} does not belong to {:?}", t.service()),
        }
    }

    /// Consume an event: skip it if the inbox has seen it, otherwise handle
    /// it and record it in the inbox within the same transaction.
    pub fn consume(&self, ev: &Event, safety: &Safety, tx: &mut impl Tx) -> Consumed {
        if safety.inbox {
            if self.inbox().contains(&ev.id()) {
                return Consumed::Duplicate;
            }
            tx.write(Write::Inbox(ev.id()));
        }
        match self {
            Tables::Product(t) => product::on_event(t, ev, safety, tx),
            Tables::Order(t) => order::on_event(t, ev, tx),
            Tables::Payment(t) => payment::on_event(t, ev, tx),
            Tables::User(t) => user::on_event(t, ev, tx),
        }
        Consumed::Handled
    }
}
