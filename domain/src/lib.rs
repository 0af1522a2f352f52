//! The order system of the design report, split into services, and what must
//! hold of it. Nothing here knows it is simulated: services read their own
//! tables and record writes and events through the [`ports`] they own.
//!
//! Map:
//! - [`ids`], [`message`]: identifiers, requests, RPCs and saga events.
//! - [`product`], [`order`] (with coupons), [`payment`], [`user`]: each
//!   service's tables, writes and handlers; [`pg`]: the external payment
//!   gateway; [`platform`]: the external data platform; [`tables`]: the sum
//!   of them, the inbox, and event dispatch.
//! - [`entry`]: where orders are numbered and keys durably recorded;
//!   [`gateway`]: the API gateway's idempotency-key layer; [`client`]:
//!   submission and retry with the same key.
//! - [`orchestrator`]: the orchestration strategy's saga log and steps;
//!   [`monolith`]: the one-database baseline; [`two_phase`]: XA-style
//!   prepare/commit with row locks.
//! - [`node`]: a service node as both worlds run it: dispatch of messages,
//!   records and timers to the handlers, Payment's gateway calls, the
//!   coordinators' steps with timeouts, retries and giving up; through the
//!   [`node::Host`] port, which the simulation and the live deployment
//!   implement.
//! - [`ports`]: the transaction, client and gateway ports adapters implement.
//! - [`safety`]: the safety switches and the planted bugs that flip them.
//! - [`strategy`]: the coordination strategies.
//! - [`workload`]: users, products, coupons and submissions of one run.
//! - [`invariant`]: the invariants and the incremental checker; [`meter`]:
//!   what a run measured beyond pass or fail (inconsistency windows,
//!   exposure, compensations, refunds, coupons, revenue).
//!
//! Architecture invariant: this crate depends on std and serde only; no
//! clock, no randomness, no I/O, and no hash-map iteration.

pub mod client;
pub mod commit_check;
pub mod entry;
pub mod gateway;
pub mod ids;
pub mod invariant;
pub mod message;
pub mod meter;
pub mod monolith;
pub mod node;
pub mod orchestrator;
pub mod order;
pub mod payment;
pub mod pg;
pub mod platform;
pub mod ports;
pub mod product;
pub mod safety;
pub mod strategy;
pub mod tables;
pub mod two_phase;
pub mod user;
pub mod workload;

pub use ids::{CouponId, EventId, OrderId, PgKey, ProductId, RequestKey, UserId};
pub use invariant::{Checker, EndState, Entity, Invariant, StateView, Violation};
pub use message::{Event, Msg, Request, Response, Topic};
pub use safety::{Bug, Safety};
pub use strategy::Strategy;
pub use tables::{Consumed, Service, Store, Tables, Write};
pub use workload::Workload;
