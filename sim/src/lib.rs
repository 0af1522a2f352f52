//! sagasim's deterministic kernel. It knows nothing of orders: it runs any
//! [`App`] on simulated nodes, a network, a broker and databases, under one
//! seed.
//!
//! Map:
//! - [`seed`]: one ChaCha stream per purpose, derived from the run's seed;
//!   [`dist`]: integer-only distributions on them.
//! - [`queue`]: the event queue (time, seeded tie-break, sequence);
//!   [`pct`]: the scheduling strategies (seeded tie-break, PCT).
//! - [`node`]: node identity, up/down, incarnations.
//! - [`net`]: latency, loss, duplication, reordering, partitions.
//! - [`db`]: per-service database with all-or-nothing commits and an outbox;
//!   [`cache`]: a Redis-like cache with TTL that a restart empties.
//! - [`broker`]: Kafka-like topics, partitions, consumer groups, offsets.
//! - [`relay`] and [`consumer`]: the producer and consumer sides of the
//!   broker, as steps on the nodes.
//! - [`fault`]: fault decisions as data, and the scheduled-fault draw.
//! - [`trace`]: the digest over every step, and optional readable lines.
//! - [`world`]: all state of one run and the events that change it;
//!   [`cx`]: what a node's code and an invariant check see of it.
//! - [`app`]: the trait a harness implements to run on the kernel.
//! - [`sim`]: the handle that drives a run through its fault and heal phases.
//!
//! Architecture invariant: no wall clock, no threads, no unseeded randomness
//! and no iteration over randomly-seeded hash maps anywhere in this crate.

pub mod app;
pub mod broker;
pub mod cache;
pub mod consumer;
pub mod cx;
pub mod db;
pub mod deadline;
pub mod dist;
pub mod fault;
pub mod net;
pub mod node;
pub mod pct;
pub mod queue;
pub mod relay;
pub mod seed;
pub mod sim;
pub mod trace;
pub mod world;

pub use app::{App, AppDb, Handled, Record};
pub use broker::{StreamId, TopicId};
pub use cx::{CommitFailed, Cx, View};
pub use db::Database;
pub use fault::{Fault, FaultRecord, ScheduleOptions};
pub use node::{NodeId, Role};
pub use pct::Schedule;
pub use sim::{End, Outcome, Phases, Sim};
pub use trace::{TraceKind, TraceRecord};
pub use world::{decision_key, Divergence, Follow, KernelOptions};
