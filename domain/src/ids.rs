//! Identifiers. Orders, users and products are numbered densely from zero by
//! the workload, so tables and ledgers can index by them.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
        )]
        pub struct $name(pub u32);

        impl $name {
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

id!(
    /// An order, as the client numbered it.
    OrderId
);
id!(
    /// A user (the holder of a points balance).
    UserId
);
id!(
    /// A product (price and stock).
    ProductId
);

id!(
    /// A coupon, issued to one user.
    CouponId
);

/// A client's `Idempotency-Key`: every retry of one request carries the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RequestKey(pub u64);

/// The idempotency key Payment sends to the payment gateway for one attempt
/// at an order's charge; the refund of that charge names the same key. A
/// "pay again" after a decline is a new attempt, under a new key, since the
/// PG answers a known key with its first answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PgKey(pub u64);

impl PgKey {
    pub fn of(order: OrderId) -> PgKey {
        PgKey::attempt(order, 0)
    }

    pub fn attempt(order: OrderId, attempt: u32) -> PgKey {
        PgKey((attempt as u64) << 32 | order.0 as u64)
    }
}

/// An event's identity: the id its producer gave the outbox row (or the
/// in-memory record) it was published from. Every copy of that row has it,
/// so a consumer's inbox recognises a repeat; a handler that ran twice and
/// staged two rows would give two ids, as a real outbox does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub u64);
