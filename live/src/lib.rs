//! The live world: the domain's services deployed for real, as processes
//! on tokio against PostgreSQL, Redis and NATS JetStream, talking HTTP.
//!
//! Map:
//! - [`deploy`]: the processes of a strategy, and the deployment every
//!   process reads (names, ports, settings);
//! - [`pg`]: schemas, migrations, the writing connection (commits with
//!   outbox, inbox, journal and fence), tables read back into the domain's
//!   store;
//! - [`error`]: what went wrong, and where.
//!
//! Architecture invariant: this crate adapts the domain's ports and adds no
//! handler, saga step, compensation or invariant of its own; it never
//! depends on the simulation kernel.

pub mod check;
pub mod consumer;
pub mod deploy;
pub mod driver;
pub mod error;
pub mod fleet;
pub mod gateway;
pub mod http;
pub mod nats;
pub mod nemesis;
pub mod node;
pub mod pg;
pub mod process;
pub mod redis;
pub mod relay;
pub mod run;
pub mod service;
pub mod system;
pub mod trace;
pub mod up;

pub use error::{Error, Result};
