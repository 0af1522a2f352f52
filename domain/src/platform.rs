//! The data platform (§3.1 "send the order to the data platform"): an
//! external sink fed from the broker. It records each order when it is
//! created and marks it when it is confirmed, and must take each
//! confirmation in exactly once, which its inbox makes true under
//! at-least-once delivery.
//!
//! The two events come on different topics, so a confirmation can arrive
//! before the creation it belongs to. Such an early event cannot be handled
//! yet: it is retried (and dead-lettered, and recovered) until the order
//! exists, never dropped.

use serde::{Deserialize, Serialize};

use crate::ids::{IdMap, OrderId};
use crate::message::{CmdResult, Command, Event};
use crate::ports::Tx;
use crate::safety::Safety;
use crate::tables::Write;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlatformTables {
    /// Orders known, and how many times each was taken in as confirmed.
    pub orders: IdMap<OrderId, u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PlatformWrite {
    Record { order: OrderId },
    Receive { order: OrderId, amount: u64 },
}

impl PlatformTables {
    pub fn apply(&mut self, w: &PlatformWrite) {
        match *w {
            PlatformWrite::Record { order } => {
                self.orders.get_or_insert_with(order, u32::default);
            }
            PlatformWrite::Receive { order, .. } => {
                *self.orders.get_or_insert_with(order, u32::default) += 1
            }
        }
    }
}

/// What became of an event at the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taken {
    Done,
    /// It belongs to an order the platform has not seen yet.
    Early,
}

/// Take an event in. `recovery`: it comes from the dead-letter topic, where
/// an early confirmation cannot wait for its creation (which may sit behind
/// it in the same partition): it is taken in with the order's record.
pub fn on_event(
    t: &PlatformTables,
    ev: &Event,
    safety: &Safety,
    recovery: bool,
    tx: &mut impl Tx,
) -> Taken {
    match *ev {
        Event::OrderCreated { order, .. } => {
            tx.write(Write::Platform(PlatformWrite::Record { order }))
        }
        Event::OrderConfirmed { order, amount, .. } if t.orders.contains_key(&order) => {
            tx.write(Write::Platform(PlatformWrite::Receive { order, amount }))
        }
        Event::OrderConfirmed { order, amount, .. } if recovery && safety.park_early_events => {
            tx.write(Write::Platform(PlatformWrite::Record { order }));
            tx.write(Write::Platform(PlatformWrite::Receive { order, amount }));
        }
        // The planted bug takes the early event as handled: it is lost.
        Event::OrderConfirmed { .. } if safety.park_early_events => return Taken::Early,
        _ => {}
    }
    Taken::Done
}

/// Take a confirmed order in, when the orchestrator sends it; a repeat is
/// taken in once.
pub fn on_command(
    t: &PlatformTables,
    order: OrderId,
    cmd: &Command,
    tx: &mut impl Tx,
) -> CmdResult {
    let Command::Receive { amount } = *cmd else { panic!("the data platform cannot {cmd:?}") };
    if t.orders.get(&order).is_none_or(|n| *n == 0) {
        tx.write(Write::Platform(PlatformWrite::Receive { order, amount }));
    }
    CmdResult::Ok
}
