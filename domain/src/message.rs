//! What travels between the services: the client's RPC and the saga's events
//! (§2.4.1 of the design report).

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, OrderId, ProductId, UserId};

/// An order as the client submits it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PlaceOrder {
    pub order: OrderId,
    pub user: UserId,
    pub product: ProductId,
    pub qty: u32,
}

/// The choreography saga's events. The success flow is
/// `StockDeducted → OrderCreated → PaymentCreated → BalanceDeducted`; the
/// failure flow is `BalanceFailed → PaymentCancelled → OrderCancelled` (the
/// report's payment, order and stock rollback events), undoing in reverse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Event {
    StockDeducted { order: OrderId, user: UserId, product: ProductId, qty: u32, amount: u64 },
    StockRejected { order: OrderId, user: UserId, product: ProductId, qty: u32 },
    OrderCreated { order: OrderId, user: UserId, amount: u64 },
    PaymentCreated { order: OrderId, user: UserId, amount: u64 },
    BalanceDeducted { order: OrderId, user: UserId, amount: u64 },
    BalanceFailed { order: OrderId, user: UserId, amount: u64 },
    PaymentCancelled { order: OrderId },
    OrderCancelled { order: OrderId, product: ProductId, qty: u32 },
}

/// A topic of the broker: one per kind of event, as in the report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Topic {
    StockDeducted,
    StockRejected,
    OrderCreated,
    PaymentCreated,
    BalanceDeducted,
    BalanceFailed,
    PaymentCancelled,
    OrderCancelled,
}

impl Topic {
    pub const ALL: [Topic; 8] = [
        Topic::StockDeducted,
        Topic::StockRejected,
        Topic::OrderCreated,
        Topic::PaymentCreated,
        Topic::BalanceDeducted,
        Topic::BalanceFailed,
        Topic::PaymentCancelled,
        Topic::OrderCancelled,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::StockDeducted => "stock-deducted",
            Topic::StockRejected => "stock-rejected",
            Topic::OrderCreated => "order-created",
            Topic::PaymentCreated => "payment-created",
            Topic::BalanceDeducted => "balance-deducted",
            Topic::BalanceFailed => "balance-failed",
            Topic::PaymentCancelled => "payment-cancelled",
            Topic::OrderCancelled => "order-cancelled",
        }
    }
}

impl Event {
    pub fn topic(&self) -> Topic {
        match self {
            Event::StockDeducted { .. } => Topic::StockDeducted,
            Event::StockRejected { .. } => Topic::StockRejected,
            Event::OrderCreated { .. } => Topic::OrderCreated,
            Event::PaymentCreated { .. } => Topic::PaymentCreated,
            Event::BalanceDeducted { .. } => Topic::BalanceDeducted,
            Event::BalanceFailed { .. } => Topic::BalanceFailed,
            Event::PaymentCancelled { .. } => Topic::PaymentCancelled,
            Event::OrderCancelled { .. } => Topic::OrderCancelled,
        }
    }

    pub fn order(&self) -> OrderId {
        match *self {
            Event::StockDeducted { order, .. }
            | Event::StockRejected { order, .. }
            | Event::OrderCreated { order, .. }
            | Event::PaymentCreated { order, .. }
            | Event::BalanceDeducted { order, .. }
            | Event::BalanceFailed { order, .. }
            | Event::PaymentCancelled { order }
            | Event::OrderCancelled { order, .. } => order,
        }
    }

    /// Every copy of this event has this id.
    pub fn id(&self) -> EventId {
        EventId(self.order().0 as u64 * 16 + self.topic() as u64)
    }

    /// The partition key: all of an order's events share a partition.
    pub fn key(&self) -> u64 {
        self.order().0 as u64
    }
}

/// Everything a node can receive.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Msg {
    /// Client → Product: place an order (idempotent by order id).
    Place(PlaceOrder),
    /// Product → client: the order was taken (stock held) or refused.
    Placed { order: OrderId, accepted: bool },
    /// A saga event, carried by the broker.
    Event(Event),
}
