//! The ports the services need, owned here so that the services never name
//! what implements them. The simulation's adapters live in the harness; a live
//! deployment would plug in PostgreSQL, Kafka and a real clock the same way.
//!
//! A handler takes its input, reads its service's committed tables, and
//! records its writes and outgoing events into one [`Tx`]; the adapter commits
//! them together (the outbox pattern: state and events in one local
//! transaction).

use crate::message::{Event, Msg};
use crate::tables::Write;

/// One local transaction being built.
pub trait Tx {
    fn write(&mut self, write: Write);
    /// Record an event to publish; with the outbox on, it is committed with
    /// the writes.
    fn publish(&mut self, event: Event);
}

/// The plain recorder of a transaction, which adapters commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TxBuf {
    pub writes: Vec<Write>,
    pub events: Vec<Event>,
}

impl TxBuf {
    pub fn clear(&mut self) {
        self.writes.clear();
        self.events.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.events.is_empty()
    }
}

impl Tx for TxBuf {
    fn write(&mut self, write: Write) {
        self.writes.push(write);
    }
    fn publish(&mut self, event: Event) {
        self.events.push(event);
    }
}

/// What a client needs: to call the system, to wait, and a little randomness
/// for retry jitter.
pub trait ClientPort {
    fn now_us(&self) -> u64;
    fn send(&mut self, msg: Msg);
    fn set_timer(&mut self, delay_us: u64, tag: u64);
    /// Uniform in `0..=max_us`.
    fn jitter_us(&mut self, max_us: u64) -> u64;
}
