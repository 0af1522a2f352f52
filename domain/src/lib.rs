//! The order system of the design report, split into services, and what must
//! hold of it. Nothing here knows it is simulated: services read their own
//! tables and record writes and events through the [`ports`] they own.
//!
//! Map:
//! - [`ids`], [`message`]: identifiers, the client's RPC and the saga events.
//! - [`product`], [`order`], [`payment`], [`user`]: each service's tables,
//!   writes and handlers; [`tables`]: the sum of them and the inbox.
//! - [`client`]: submission and retry with the same order id.
//! - [`ports`]: the transaction and client ports adapters implement.
//! - [`safety`]: the safety switches and the planted bugs that flip them.
//! - [`strategy`]: the coordination strategies.
//! - [`workload`]: users, products and orders of one run.
//! - [`invariant`]: the invariants and the incremental checker.
//!
//! Architecture invariant: this crate depends on std and serde only; no
//! clock, no randomness, no I/O, and no hash-map iteration.

pub mod client;
pub mod ids;
pub mod invariant;
pub mod message;
pub mod order;
pub mod payment;
pub mod ports;
pub mod product;
pub mod safety;
pub mod strategy;
pub mod tables;
pub mod user;
pub mod workload;

pub use ids::{EventId, OrderId, ProductId, UserId};
pub use invariant::{Checker, EndState, Entity, Invariant, StateView, Violation};
pub use message::{Event, Msg, PlaceOrder, Topic};
pub use safety::{Bug, Safety};
pub use strategy::Strategy;
pub use tables::{Consumed, Service, Tables, Write};
pub use workload::Workload;
